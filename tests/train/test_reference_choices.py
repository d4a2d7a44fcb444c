"""docs/MIGRATING.md's CHOICE rows against the code: each row's values restore the reference's behaviour.

The guide's one table of behavioural differences is parsed; every row is REF-BUG or CHOICE, every
CHOICE row names `modelConfig.key` = `value` pairs, and for each key a check below sets the values
and asserts what the reference did (and that the start-of-training notice for it goes away). The
notices themselves: one line each, from `deepepi train` only, in train.log, once.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable

import pytest

from deepepi.core.config import REPO_CONFIGS, from_dict
from deepepi.models.registry import spec_from_config
from deepepi.train.reference_notes import PREFIX, notices
from deepepi.train.selection import EarlyStop

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "MIGRATING.md"
HEADER = "| reference behaviour | what deepepi does | effect on results | kind |"
_PAIR = re.compile(r"`modelConfig\.(\w+)` = (`[^`]+`|totalTrainingSteps / evalEverySteps, rounded up)")
# A reference-shaped config: none of deepepi's own keys, nothing the CHOICE rows name.
REFERENCE_LIKE = {"modelConfig": {"framework": "pytorch", "nLayers": 14, "useLrSchedule": True,
                                  "totalTrainingSteps": 100000, "evalEverySteps": 5000,
                                  "earlyStoppingPatience": 6}}


def difference_rows() -> list[list[str]]:
    lines = GUIDE.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def choice_values() -> dict[str, Any]:
    """{key: value} over every CHOICE row; the early-stopping formula stays a string."""
    out: dict[str, Any] = {}
    for row in difference_rows():
        if row[-1].startswith("CHOICE"):
            pairs = _PAIR.findall(row[-1])
            assert pairs, f"CHOICE row without `modelConfig.key` = `value`: {row[0]}"
            for key, value in pairs:
                out[key] = json.loads(value.strip("`")) if value.startswith("`") else value
    return out


def _notices(raw: dict[str, Any]) -> list[str]:
    cfg = from_dict(raw, source="test", warn=False)
    return notices(cfg, spec_from_config(cfg), cfg.given)


def _with(raw: dict[str, Any], **model: Any) -> dict[str, Any]:
    return {**raw, "modelConfig": {**raw["modelConfig"], **model}}


def test_every_row_is_ref_bug_or_choice() -> None:
    rows = difference_rows()
    assert len(rows) >= 20
    assert all(r[-1].startswith(("REF-BUG: ", "CHOICE: ")) for r in rows), [r[0] for r in rows]


def _check_selection(values: dict[str, Any]) -> None:
    tf = {"modelConfig": {"framework": "tensorflow"}}
    assert any("modelSelectionMetric not set" in n for n in _notices(tf))
    chosen = {k: values[k] for k in ("modelSelectionMetric", "saveBestMinSensitivity")}
    assert not any("modelSelectionMetric" in n for n in _notices(_with(tf, **chosen)))
    # The training half (the epoch kept is history.json's val_loss minimum) is test_val_loss_choice_*.


def _check_n_layers(values: dict[str, Any]) -> None:
    cfg = from_dict({"modelConfig": {"nLayers": 10}}, warn=False)
    assert any("nLayers=10" in n for n in notices(cfg, spec_from_config(cfg), cfg.given))
    restored = from_dict({"modelConfig": {"nLayers": values["nLayers"]}}, warn=False)
    spec = spec_from_config(restored)
    assert len(spec.filters) == len(spec.strides) == 14
    assert sum(1 for layer in spec.weighted_layers() if layer.kind == "conv") == 14
    assert spec.expected_counts().trainable == 97362
    assert not any("nLayers" in n for n in notices(restored, spec, restored.given))


def _check_patience(values: dict[str, Any]) -> None:
    assert values["earlyStoppingPatience"].startswith("totalTrainingSteps / evalEverySteps")
    m = REFERENCE_LIKE["modelConfig"]
    evaluations = math.ceil(m["totalTrainingSteps"] / m["evalEverySteps"])
    assert any("earlyStoppingPatience=6" in n for n in _notices(REFERENCE_LIKE))
    restored = _with(REFERENCE_LIKE, earlyStoppingPatience=evaluations)
    assert not any("earlyStoppingPatience" in n for n in _notices(restored))
    stop = EarlyStop(evaluations)  # val_loss never improves after the first: the worst case
    assert not any(stop.update(1.0 + i) for i in range(evaluations))


def _check_pytorch_default(key: str) -> Callable[[dict[str, Any]], None]:
    def check(values: dict[str, Any]) -> None:
        assert any(f"{key} not set" in n for n in _notices(REFERENCE_LIKE))
        restored = _with(REFERENCE_LIKE, **{key: values[key]})
        assert from_dict(restored, warn=False).model[key] == values[key]
        assert not any(f"{key} not set" in n for n in _notices(restored))
    return check


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "modelSelectionMetric": _check_selection, "saveBestMinSensitivity": _check_selection,
    "nLayers": _check_n_layers, "earlyStoppingPatience": _check_patience,
    **{k: _check_pytorch_default(k) for k in ("useAdamW", "weightDecay", "lrPeak", "mainSteps")},
}


def test_every_choice_key_has_a_check() -> None:
    assert set(choice_values()) == set(CHECKS)


@pytest.mark.parametrize("key", sorted(CHECKS))
def test_choice_values_restore_the_reference(key: str) -> None:
    CHECKS[key](choice_values())


def test_shipped_configs_print_no_notice() -> None:
    """`deepepi pipeline` trains these: their behaviour and output must not change."""
    for name in ("nnConfig_deep.json", "nnConfig_deep_pytorch.json", "smoke.json"):
        raw = json.loads((REPO_CONFIGS / name).read_text(encoding="utf-8"))
        assert _notices(raw) == [], name
        assert _notices(_with(raw, framework="pytorch")) == [], name


def test_set_keys_survive_overrides() -> None:
    cfg = from_dict({"modelConfig": {"nLayers": 10}}, warn=False).with_overrides(epochs=2)
    assert "modelConfig.nLayers" in cfg.given and "modelConfig.epochs" in cfg.given
    assert "modelConfig.modelSelectionMetric" not in cfg.given


def test_notices_are_one_line_each() -> None:
    lines = _notices({"modelConfig": {"framework": "pytorch", "nLayers": 10, "useLrSchedule": True,
                                      "earlyStoppingPatience": 2}})
    assert len(lines) == len(set(lines)) >= 5
    assert all(line.startswith(PREFIX) and "\n" not in line and "to match)" in line for line in lines)


def test_other_commands_print_no_notice(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = tmp_path / "ref.json"
    config.write_text(json.dumps({"modelConfig": {"framework": "tensorflow", "nLayers": 10}}))
    env = {**os.environ, "PYTHONPATH": str(GUIDE.parents[1])}
    result = subprocess.run([sys.executable, "-m", "deepepi", "config", "show", str(config)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert PREFIX not in result.stdout + result.stderr


@pytest.mark.torch
def test_val_loss_choice_keeps_the_val_loss_minimum(csv_path: Path, tmp_path: Path) -> None:
    """Train with the CHOICE values: the epoch kept is history.json's val_loss minimum (first on ties), as
    the reference's TensorFlow ModelCheckpoint(save_best_only) keeps; the notices go to train.log once."""
    import torch

    from deepepi.runs import layout as art
    from deepepi.train.run import train

    raw = json.loads((REPO_CONFIGS / "smoke.json").read_text(encoding="utf-8"))
    model = {k: v for k, v in raw["modelConfig"].items() if k not in ("modelSelectionMetric", "saveBestMinSensitivity",
                                                                       "saveBestMaxFpr", "useAdamW")}
    model.update({"framework": "pytorch", "epochs": 4, "earlyStoppingPatience": 10})
    values = choice_values()
    model.update({k: values[k] for k in ("modelSelectionMetric", "saveBestMinSensitivity")})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(from_dict({**raw, "modelConfig": model}, source="ref.json", warn=False), data=csv_path,
                       out=tmp_path / "run", quiet=True)
    finally:
        torch.set_num_threads(threads)
    history = json.loads((tmp_path / "run" / art.HISTORY).read_text())
    losses = [h["val_loss"] for h in history]
    assert result.best_epoch == history[losses.index(min(losses))]["epoch"]
    log = (tmp_path / "run" / art.LOG).read_text().splitlines()
    assert [line for line in log if line.startswith(PREFIX)] == [
        PREFIX + 'useAdamW not set: the reference\'s PyTorch trainer uses true; deepepi uses false '
        '(set "useAdamW": true to match)']
