"""Quiet everywhere: unless --verbose, stderr holds only deepepi's own lines (``deepepi: ...``).

Covers the places the start-up hook alone did not reach: the k-fold fold processes (TensorFlow's
absl start-up lines, raw Python warnings once per fold), a user's own TF_CPP_MIN_LOG_LEVEL=2 (which let
TensorFlow's runtime error lines through), torchrun's ranks (each warning once per rank), and config
warnings printed by commands they do not concern.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli_tree import CHECKOUT, checkout_env, run_deepepi

REFERENCE_TORCH_CLASS = "user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch"


def _config(tmp_path: Path, name: str, **model: object) -> Path:
    """The smoke config with an unsupported key, validationProp 0 and an unused window: three config
    warnings of different kinds (each command shows only the kinds it acts on)."""
    raw = json.loads((CHECKOUT / "configs" / "smoke.json").read_text())
    raw["debug"] = True
    raw["dataProcessing"].update(validationProp=0, window=500)
    raw["modelConfig"].update(model)
    path = tmp_path / name
    path.write_text(json.dumps(raw))
    return path


def _only_deepepi_lines(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert all(line.startswith("deepepi: ") for line in lines), stderr
    assert len(lines) == len(set(lines)), f"a line repeated:\n{stderr}"
    return lines


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("log_level", [None, "2"], ids=["level-unset", "level-2"])
def test_kfold_quiet_prints_only_deepepi_lines(log_level: str | None, csv_path: Path, tmp_path: Path) -> None:
    # A PyTorch reference class name built in TensorFlow: every fold process (and the parent) warns.
    config = _config(tmp_path, "kfold.json", framework="tensorflow", modelType="tensorflow",
                     modelClass=REFERENCE_TORCH_CLASS)
    env = checkout_env(CUDA_VISIBLE_DEVICES="", **({} if log_level is None else {"TF_CPP_MIN_LOG_LEVEL": log_level}))
    # no --quiet: k-fold always prints one line per fold (issue 26 refuses --quiet there as doing nothing)
    result = run_deepepi("train", "--kfold", "2", "--config", str(config), "--data", str(csv_path),
                         "--epochs", "1", "--out", str(tmp_path / "run"), env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = _only_deepepi_lines(result.stderr)
    assert sum("reference class" in line for line in lines) == 1, result.stderr
    assert sum("validationProp=0" in line for line in lines) == 1, result.stderr
    assert (tmp_path / "run" / "kfold_summary.json").exists()


@pytest.mark.torch
@pytest.mark.slow
def test_torchrun_warns_once_per_job(csv_path: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "ddp.json", framework="pytorch", modelType="pytorch", batchSize=128,
                     denseDropout=0.0)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "deepepi", "train", "--config", str(config), "--data", str(csv_path), "--epochs", "1",
           "--quiet", "--out", str(tmp_path / "run")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                            env=checkout_env(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES=""))
    assert result.returncode == 0, result.stderr[-3000:]
    warned = [line for line in result.stderr.splitlines() if line.startswith("deepepi: warning: ")]
    assert sum("unsupported config key(s): debug" in line for line in warned) == 1, result.stderr
    assert sum("validationProp=0" in line for line in warned) == 1, result.stderr


def test_data_commands_print_only_the_config_warnings_they_act_on(csv_path: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "data.json")
    events = sorted(str(p) for p in csv_path.parent.glob("*.json"))
    assert events, "the synthetic data set has no OSDB JSON files"
    flat = run_deepepi("data", "flatten", *events, "-o", str(tmp_path / "flat.csv"), "-c", str(config))
    assert flat.returncode == 0, flat.stderr
    lines = _only_deepepi_lines(flat.stderr)
    assert len(lines) == 1 and "unsupported config key(s): debug" in lines[0], flat.stderr
    # windows are cut at sampleFreq x bufferSeconds: the unused window key concerns `data windows`
    cut = run_deepepi("data", "windows", str(csv_path), "-o", str(tmp_path / "w.npz"), "-c", str(config))
    assert cut.returncode == 0, cut.stderr
    lines = _only_deepepi_lines(cut.stderr)
    assert any("dataProcessing.window=500 is not used" in line for line in lines), cut.stderr
    assert not any("validationProp" in line for line in lines), cut.stderr


@pytest.mark.torch
@pytest.mark.tf
def test_model_summary_prints_no_window_or_validation_warning(tmp_path: Path) -> None:
    config = _config(tmp_path, "model.json")
    result = run_deepepi("model", "summary", "-c", str(config), env=checkout_env(CUDA_VISIBLE_DEVICES=""))
    assert result.returncode == 0, result.stderr
    lines = _only_deepepi_lines(result.stderr)
    assert len(lines) == 1 and "unsupported config key(s): debug" in lines[0], result.stderr
