"""`deepepi verify --mode trained` on real (tiny) trained models: two seeds pass, damaged models fail.

PyTorch trains configs/smoke.json twice (seeds 1 and 2) on one synthetic dataset; both are scored
on another synthetic dataset none of them saw, through their ONNX exports, as a user would. Both
datasets use the generator's separable mix (onnx_helpers.SEPARABLE_MIX), so the tiny models learn.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from deepepi.core.config import REPO_CONFIGS
from onnx_helpers import SEPARABLE_MIX, learning_smoke

pytestmark = [pytest.mark.torch, pytest.mark.slow]
SMOKE = REPO_CONFIGS / "smoke.json"
# The damaged model's seizure-logit shift: far enough that its window FPR rises by more than the
# widest seed-to-seed spread (SEED_MARGINS), while it still predicts both classes.
DAMAGE = 5.0


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    from deepepi.data.synth import synthesize
    from deepepi.export.onnx_file import export_run
    from deepepi.train.run import train

    root = tmp_path_factory.mktemp("trained")
    csv = synthesize(root / "train_data", users=4, events=60, seed=0, mix=SEPARABLE_MIX).csv_path
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for seed in (1, 2):
            run = train(learning_smoke(), data=csv, framework="pytorch", out=root / f"seed{seed}", seed=seed,
                        quiet=True).run_dir
            out[f"seed{seed}"] = export_run(run).path
    finally:
        torch.set_num_threads(before)
    out["held_out"] = synthesize(root / "held_out", users=3, events=40, seed=99, mix=SEPARABLE_MIX).csv_path
    return out


def _shifted(onnx_path: Path, dest: Path, shift: float) -> Path:
    """A copy of the run behind ``onnx_path`` whose last layer's seizure bias is moved by ``shift``."""
    from deepepi.export.onnx_file import export_run
    from deepepi.models.torch_checkpoint import load_checkpoint, save_checkpoint
    from deepepi.models.torch_weights import export_weights, import_weights

    run = shutil.copytree(onnx_path.parent, dest)
    model, spec, payload = load_checkpoint(run / "model.pt")
    weights = export_weights(model, spec)
    weights["logits/bias"] = weights["logits/bias"] + np.array([0.0, shift], dtype=np.float32)
    import_weights(model, spec, weights)
    save_checkpoint(run / "model.pt", model, spec, payload["config"])
    return export_run(run).path


def _verify(a: Path, b: Path, data: Path, mode: str):  # noqa: ANN202 - deepepi.verify.report.Report
    from deepepi.verify.runner import verify

    return verify(a, b, data=data, config=SMOKE, mode=mode, min_agreement=0.0)


def _failed(report) -> set[str]:  # noqa: ANN001
    return {c.name for c in report.checks if c.status == "FAIL"}


def test_two_seeds_pass_trained_mode(runs: dict[str, Path]) -> None:
    report = _verify(runs["seed1"], runs["seed2"], runs["held_out"], "trained")
    stat = next(c for c in report.checks if c.name == "TPR / FPR difference vs seed spread")
    assert report.passed, report.table()
    assert stat.figures["events"] == 40 and not stat.figures["beyond_margin"]
    for rate, interval in stat.figures["intervals"].items():
        assert interval["low"] <= interval["diff"] <= interval["high"], rate


def test_model_with_shifted_last_bias_fails_trained_mode(runs: dict[str, Path], tmp_path: Path) -> None:
    damaged = _shifted(runs["seed2"], tmp_path / "damaged", DAMAGE)  # fires far more often
    report = _verify(runs["seed1"], damaged, runs["held_out"], "trained")
    stat = next(c for c in report.checks if c.name == "TPR / FPR difference vs seed spread")
    assert stat.status == "FAIL" and "window_fpr" in stat.figures["beyond_margin"], report.table()
    assert stat.figures["intervals"]["window_fpr"]["high"] < -stat.figures["margins"]["window_fpr"]
    assert _failed(report) == {"TPR / FPR difference vs seed spread"}  # not a one-class model: the spread catches it
    assert not report.passed


@pytest.mark.parametrize("mode", ["trained", "lockstep"])
def test_two_models_that_never_fire_fail(runs: dict[str, Path], tmp_path: Path, mode: str) -> None:
    a = _shifted(runs["seed1"], tmp_path / "a", -50.0)
    b = _shifted(runs["seed2"], tmp_path / "b", -50.0)
    report = _verify(a, b, runs["held_out"], mode)
    agree = next(c for c in report.checks if c.name == "argmax agreement")
    assert agree.figures["agreement"] == 1.0  # they agree perfectly, and that proves nothing
    assert {"predicts both classes A", "predicts both classes B"} <= _failed(report), report.table()
    assert "never fires" in next(c.detail for c in report.checks if c.name == "predicts both classes A")


def test_margin_option_sets_the_margins(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`--margin RATE=X` replaces that rate's margin: the damaged pair that fails by default passes
    when every margin is 1 (no difference of rates can lie beyond it), and the report records them."""
    import json

    from onnx_helpers import cli

    damaged = _shifted(runs["seed2"], tmp_path / "damaged", DAMAGE)
    margins = [arg for rate in ("window_tpr", "window_fpr", "event_tpr", "event_fpr")
               for arg in ("--margin", f"{rate}=1")]
    code, out, _ = cli(capsys, "verify", runs["seed1"], damaged, "--mode", "trained", "--data", runs["held_out"],
                       "--config", SMOKE, "--report", tmp_path / "r.json", *margins)
    assert code == 0, out
    stat = next(c for c in json.loads((tmp_path / "r.json").read_text())["checks"]
                if c["name"] == "TPR / FPR difference vs seed spread")
    assert stat["status"] == "PASS" and stat["figures"]["margins"] == dict.fromkeys(stat["figures"]["margins"], 1.0)
