"""`deepepi prove-trainers` passes, dropout on, for every architecture, both modes and a shipped config.

Few steps each (CI cost): the mutation test (test_prove_mutations.py) shows what a failure looks like,
docs/PERFORMANCE.md records the full 50-step runs. Also: the command's key list covers every config
key, a key the proof cannot reproduce in both frameworks is refused in one line, and the command
writes its JSON report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepepi.core.config import REPO_CONFIGS, SCHEMA, load_config

STEPS = 3


def _step_mode(tmp: Path) -> Path:
    """smoke.json in step mode: three-phase schedule whose warm-up, main and cool-down all fall in the
    proof's steps, AdamW, balanced batches, dense dropout."""
    raw = json.loads((REPO_CONFIGS / "smoke.json").read_text())
    raw["modelConfig"].update(useLrSchedule=True, totalTrainingSteps=40, evalEverySteps=20, warmupSteps=1,
                              mainSteps=2, cooldownSteps=1, useAdamW=True, useBalancedBatches=True,
                              denseDropout=0.1)
    path = tmp / "smoke_step_mode.json"
    path.write_text(json.dumps(raw))
    return path


# configs/nnConfig_deep.json (the same network with Adam and shuffled batches) is left to
# test_lockstep_cross.py and the recorded 50-step run (docs/PERFORMANCE.md): CI cost.
CONFIGS = ["nnConfig_deep_pytorch.json", "smoke_speccnn.json", "smoke_amber.json", "step mode"]


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_unmodified_trainers_pass(name: str, csv_path: Path, tmp_path: Path) -> None:
    from deepepi.train.prove import prove

    config = _step_mode(tmp_path) if name == "step mode" else REPO_CONFIGS / name
    proof = prove(config, csv_path, steps=STEPS, held_out=64)
    assert proof.passed, proof.table()
    assert proof.dropout_on, proof.dropout
    assert proof.mode == ("step" if name == "step mode" else "epoch")
    assert [c.step for c in proof.checks] == [1, STEPS]
    assert proof.checks[-1].worst <= 1e-8, proof.table()  # measured <= 1e-9: far inside 1e-6
    assert proof.checks[-1].weight_change > 1e-4, proof.table()


def test_every_config_key_is_named() -> None:
    from deepepi.train.prove import KEY_COVERAGE, covered_keys

    assert set(SCHEMA["modelConfig"]) <= set(KEY_COVERAGE), set(SCHEMA["modelConfig"]) - set(KEY_COVERAGE)
    keys = covered_keys(load_config(REPO_CONFIGS / "nnConfig_deep_pytorch.json"))
    named = [k for group in keys.values() for k in group]
    assert len(named) == len(set(named))
    assert {f"modelConfig.{k}" for k in SCHEMA["modelConfig"]} <= set(named)
    assert {f"dataProcessing.{k}" for k in SCHEMA["dataProcessing"]} <= set(named)
    assert "modelConfig.denseDropout" in keys["proved"] and "modelConfig.weightDecay" in keys["proved"]
    assert "modelConfig.warmupSteps" in keys["unused by this config"]  # epoch mode
    assert {"dataProcessing.warnTime", "dataProcessing.alarmTime"} <= set(keys["shared"])  # the threshold rule's


@pytest.mark.parametrize("key, value, words", [
    ("precision", "bf16", "mixed precision"),
    ("compile", True, "torch.compile"),
])
def test_keys_it_cannot_reproduce_are_refused_in_one_line(capsys: pytest.CaptureFixture, tmp_path: Path, key: str,
                                                          value: object, words: str) -> None:
    from onnx_helpers import refused

    raw = json.loads((REPO_CONFIGS / "smoke.json").read_text())
    raw["modelConfig"][key] = value
    config = tmp_path / "c.json"
    config.write_text(json.dumps(raw))
    line = refused(capsys, "prove-trainers", "-c", config, "--data", tmp_path / "absent.csv")
    assert words in line and f"modelConfig.{key}" in line, line
