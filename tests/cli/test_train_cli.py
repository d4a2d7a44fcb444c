"""`deepepi train` input errors: one line on stderr and exit code 2, before any framework is loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from onnx_helpers import refused

from deepepi.core.config import REPO_CONFIGS

SMOKE = REPO_CONFIGS / "smoke.json"


def _fails(args: list[str], capsys: pytest.CaptureFixture) -> str:
    return refused(capsys, "train", *args)


def test_config_with_bad_value_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = json.loads(SMOKE.read_text())
    raw["modelConfig"]["batchSize"] = "big"
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps(raw))
    line = _fails(["--config", str(cfg), "--out", str(tmp_path / "run")], capsys)
    assert str(cfg) in line and "modelConfig.batchSize" in line and '"big"' in line
    assert not (tmp_path / "run").exists()


def test_config_not_json_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = tmp_path / "broken.json"
    cfg.write_text("{ not json")
    assert "not valid JSON" in _fails(["--config", str(cfg), "--out", str(tmp_path / "run")], capsys)


def test_missing_data_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope.csv"
    line = _fails(["--config", str(SMOKE), "--data", str(missing), "--out", str(tmp_path / "run")], capsys)
    assert str(missing) in line and "not found" in line


def test_data_with_too_few_events_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from deepepi.data.synth import synthesize

    csv = synthesize(tmp_path / "data", users=2, events=6, seed=0).csv_path
    line = _fails(["--config", str(SMOKE), "--data", str(csv), "--out", str(tmp_path / "run")], capsys)
    assert "too few events" in line


def test_resume_without_a_run_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = _fails(["--config", str(SMOKE), "--out", str(tmp_path / "run"), "--resume"], capsys)
    assert "no resumable run here" in line


# Proves nothing unless the frameworks are installed (an absent one is never imported): runs in tox's cross env.
@pytest.mark.torch
@pytest.mark.tf
def test_train_modules_import_no_framework() -> None:
    code = ("import sys, deepepi.cli.train_cmd, deepepi.train.run, deepepi.data.dataset; "
            "bad = [m for m in ('torch', 'tensorflow', 'keras', 'tf2onnx') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("model_class,expected", [
    ("resnet50", "unknown model 'resnet50'; known models: amber [user_tools.nnTraining2.amberModel.AmberModel "
                 "(tensorflow)]; deepEpiCnn"),
    ("mylab.models.Custom", "opt in with allow_import=True (deepepi train --allow-import)"),
])
def test_unknown_model_class_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 model_class: str, expected: str) -> None:
    raw = json.loads(SMOKE.read_text())
    raw["modelConfig"]["modelClass"] = model_class
    cfg = tmp_path / "model.json"
    cfg.write_text(json.dumps(raw))
    line = _fails(["--config", str(cfg), "--out", str(tmp_path / "run")], capsys)
    assert f"{cfg}: modelConfig.modelClass: " in line and expected in line
    assert not (tmp_path / "run").exists()


def test_init_weights_of_another_architecture_is_one_line_exit_2(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    import numpy as np

    from deepepi.core.config import load_config
    from deepepi.data.synth import synthesize
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.models.weights import save_weights

    spec = ArchSpec.from_config(load_config(SMOKE))
    other = ArchSpec.from_dict({**spec.to_dict(), "dense_widths": [4]})
    weights = {k: np.zeros(shape, np.float32) for k, shape in other.weight_shapes().items()}
    save_weights(tmp_path / "w.npz", weights, other)
    csv = synthesize(tmp_path / "data", users=2, events=12, seed=0).csv_path
    line = _fails(["--config", str(SMOKE), "--data", str(csv), "--out", str(tmp_path / "run"),
                   "--init-weights", str(tmp_path / "w.npz")], capsys)
    assert "w.npz" in line and "dense" in line
