"""Step mode (useLrSchedule true): --epochs as passes of the batch stream, --steps, refusals, the plan's
duration estimate and the `evaluation k/N (steps a-b)` labels, in both frameworks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from onnx_helpers import refused

from cli_tree import run_deepepi
from deepepi.cli import main
from deepepi.core.config import REPO_CONFIGS, from_dict, load_config
from deepepi.core.errors import ConfigError
from deepepi.train import progress
from deepepi.train.plan import Origin, Plan
from deepepi.train.run import _resume_config, resolve_config, steps_from_epochs

SMOKE = REPO_CONFIGS / "smoke.json"
REFERENCE_PT = REPO_CONFIGS / "nnConfig_deep_pytorch.json"
LABELS = np.r_[np.zeros(85), np.ones(10)].astype(np.int64)  # batch 10: 10 shuffled steps per pass


def _model(**keys) -> dict:  # noqa: ANN003
    return from_dict({"modelConfig": {"batchSize": 10, **keys}}, warn=False).model


def _step_config(tmp_path: Path, source: Path = SMOKE, **keys) -> Path:  # noqa: ANN003
    """``source`` switched to step mode (as the issue's reference PyTorch config), with ``keys`` set."""
    raw = json.loads(source.read_text())
    raw["modelConfig"].update({"useLrSchedule": True, **keys})
    path = tmp_path / f"step_{source.name}"
    path.write_text(json.dumps(raw))
    return path


# ----- plan and labels (no framework) --------------------------------------------------------------

def test_step_labels_name_evaluations_and_their_steps_epoch_labels_stay() -> None:
    step = Plan.from_config(_model(useLrSchedule=True, totalTrainingSteps=47, evalEverySteps=15), LABELS, seed=1)
    assert [step.label(k) for k in (1, 4)] == ["evaluation 1/4 (steps 1-15)", "evaluation 4/4 (steps 46-47)"]
    big = Plan.from_config(_model(useLrSchedule=True, totalTrainingSteps=100000, evalEverySteps=5000), LABELS, 1)
    assert big.label(3) == "evaluation 3/20 (steps 10,001-15,000)"
    epoch = Plan.from_config(_model(epochs=20), LABELS, seed=1)
    assert epoch.label(3) == "epoch 3/20"
    record = {"epoch": 3, "loss": 0.41, "accuracy": 0.83, "sensitivity": 0.77, "far": 0.12, "val_loss": 0.5,
              "val_accuracy": 0.8, "val_sensitivity": 0.7, "val_far": 0.1, "lr": 1e-3}
    assert progress.summary_line(record, 20, 4.2, True).startswith("epoch 3/20 loss 0.4100 ")
    line = progress.summary_line(record, 20, 4.2, False, label=big.label(3))
    assert line.startswith("evaluation 3/20 (steps 10,001-15,000) loss 0.4100 acc 0.830 ")


def test_eval_interval_is_capped_at_the_total_and_the_plan_line_says_so() -> None:
    plan = Plan.from_config(_model(useLrSchedule=True, totalTrainingSteps=20, evalEverySteps=5000), LABELS, 1)
    assert plan.every == 20 and plan.periods == 1 and plan.bounds(0) == (0, 20)
    text = plan.describe(Origin(100000, passes=2, per_pass=10))
    assert text == ("step mode: --epochs 2 = 2 passes of 10 steps = 20 steps (config totalTrainingSteps "
                    "100,000), validation every 20 steps (evalEverySteps 5,000 capped at the total; "
                    "1 evaluation), shuffled batches")
    assert plan.describe(Origin(100000)).startswith("step mode: --steps 20 (config totalTrainingSteps 100,000), ")


def test_epochs_become_passes_in_step_mode_and_stay_epochs_in_epoch_mode() -> None:
    step = from_dict({"modelConfig": {"batchSize": 10, "useLrSchedule": True, "totalTrainingSteps": 100000}},
                     warn=False)
    cfg = resolve_config(step, framework=None, epochs=3, seed=None)
    cfg, origin = steps_from_epochs(cfg, LABELS, epochs=3, steps=None, config_total=100000)
    assert cfg.model["totalTrainingSteps"] == 30 and origin == Origin(100000, passes=3, per_pass=10)
    epoch = from_dict({"modelConfig": {"batchSize": 10, "epochs": 7}}, warn=False)
    same, none = steps_from_epochs(resolve_config(epoch, framework=None, epochs=3, seed=None), LABELS,
                                   epochs=3, steps=None, config_total=50000)
    assert none is None and same.model["epochs"] == 3 and same.model["totalTrainingSteps"] == 50000


def test_resume_keeps_the_recorded_total_unless_a_flag_overrides_it(tmp_path: Path) -> None:
    saved = {"config": from_dict({"modelConfig": {"useLrSchedule": True, "totalTrainingSteps": 28}},
                                 warn=False).to_dict()}
    keep = _resume_config(saved, tmp_path, framework=None, seed=None, epochs=None)
    assert keep.model["totalTrainingSteps"] == 28
    assert _resume_config(saved, tmp_path, framework=None, seed=None, epochs=None,
                          steps=40).model["totalTrainingSteps"] == 40
    saved_epochs = {"config": from_dict({"modelConfig": {}}, warn=False).to_dict()}
    with pytest.raises(ConfigError, match="useLrSchedule"):
        _resume_config(saved_epochs, tmp_path, framework=None, seed=None, epochs=None, steps=40)


def test_duration_reads_like_a_person_would_say_it() -> None:
    assert [progress.duration(s) for s in (3.14, 42, 190, 7500, 3 * 86400 + 4 * 3600 + 5)] == [
        "3.1 s", "42 s", "3 min 10 s", "2 h 05 min", "3 d 4 h"]


def test_pace_times_five_steps_after_a_warm_up_then_updates_after_the_first_evaluation() -> None:
    plan = Plan.from_config(_model(useLrSchedule=True, totalTrainingSteps=47, evalEverySteps=15), LABELS, 1)
    now = [0.0]
    lines: list[str] = []
    pace = progress.Pace(plan, 0, lines.append, clock=lambda: now[0])
    steps = [10.0] + [1.0] * 14 + [3.0 + 1.0]  # warm-up step; 14 steady; evaluation (3 s) + next step
    for k, seconds in enumerate(steps, start=1):
        now[0] += seconds
        pace.step()
        if k == 5:
            assert lines == []
        if k == 6:
            assert lines == ["plan: estimated 47 s of training for 47 steps (5 steps at 1 s; "
                             "validation not included)"]
    assert lines[1] == "estimate after evaluation 1: 41 s left for 3 more evaluations (32 steps)"
    for _ in range(40):
        pace.step()
    assert len(lines) == 2


# ----- refusals: one line, exit 2 ------------------------------------------------------------------

def _refused(args: list[str], capsys: pytest.CaptureFixture) -> str:
    return refused(capsys, "train", *args)


def test_steps_on_an_epoch_mode_config_is_refused_naming_use_lr_schedule(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = _refused(["--config", str(SMOKE), "--steps", "10", "--out", str(tmp_path / "run")], capsys)
    assert "--steps 10" in line and "useLrSchedule" in line and str(SMOKE) in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("mode", ["step", "epoch"])
def test_epochs_and_steps_together_are_refused(mode: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = _step_config(tmp_path) if mode == "step" else SMOKE
    line = _refused(["--config", str(config), "--epochs", "2", "--steps", "10", "--out", str(tmp_path / "run")],
                    capsys)
    assert "--epochs 2 and --steps 10" in line and "give one of them" in line
    assert not (tmp_path / "run").exists()


def test_kfold_refuses_epochs_on_a_step_mode_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = _refused(["--config", str(_step_config(tmp_path)), "--kfold", "2", "--epochs", "1",
                     "--out", str(tmp_path / "k")], capsys)
    assert "--kfold" in line and "--steps" in line


# ----- real runs -----------------------------------------------------------------------------------

def _stdout_order(stdout: str, *patterns: str) -> list[int]:
    """Line numbers of the first line matching each pattern (all must match)."""
    lines = stdout.splitlines()
    found = []
    for pattern in patterns:
        hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert hits, (pattern, stdout)
        found.append(hits[0])
    return found


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["step", "epoch"])
def test_reference_pytorch_config_with_epochs_1_is_one_pass_with_an_estimate_first(
        mode: str, csv_path: Path, tmp_path: Path) -> None:
    """The issue's command: the reference config, --epochs 1, small data: one pass, plan and estimate
    before the first evaluation's line (step mode: totalTrainingSteps 100000 becomes one pass)."""
    config = _step_config(tmp_path, REFERENCE_PT, totalTrainingSteps=100000) if mode == "step" else REFERENCE_PT
    out = tmp_path / "run"
    done = run_deepepi("train", "--config", str(config), "--data", str(csv_path), "--epochs", "1",
                       "--out", str(out), env=None, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    first = r"^evaluation 1/1 \(steps 1-\d+\) loss " if mode == "step" else r"^epoch 1/1 loss "
    plan, estimate, evaluation = _stdout_order(done.stdout, r"^plan: (step|epoch) mode: ",
                                               r"^plan: estimated .* \(5 steps at [0-9.e-]+ s; ", first)
    assert plan < estimate < evaluation
    recorded = json.loads((out / "config.json").read_text())["modelConfig"]
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1]
    if mode == "step":
        per_pass = int(re.search(r"--epochs 1 = 1 pass of (\d+) steps = \1 steps \(config totalTrainingSteps "
                                 r"100,000\)", done.stdout).group(1))
        assert recorded["totalTrainingSteps"] == per_pass and f"seed 42, {per_pass} steps) ->" in done.stdout
        assert f"evaluation 1/1 (steps 1-{per_pass}) loss " in done.stdout
        assert "(evalEverySteps 5,000 capped at the total; 1 evaluation)" in done.stdout
    else:
        assert "seed 42, 1 epochs) ->" in done.stdout and "epoch mode: 1 epochs of " in done.stdout
    assert "plan: estimated" in (out / "train.log").read_text()


@pytest.mark.torch
def test_torch_steps_override_labels_evaluations_and_updates_the_estimate(csv_path: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        main(["train", "--config", str(_step_config(tmp_path, evalEverySteps=3)), "--data", str(csv_path),
              "--framework", "pytorch", "--steps", "7", "--out", str(tmp_path / "run")])
    except SystemExit as exit_info:
        assert exit_info.code in (0, None)
    finally:
        torch.set_num_threads(threads)
    _assert_step_run(capsys.readouterr().out, tmp_path / "run")


@pytest.mark.tf
def test_keras_steps_override_labels_evaluations_and_updates_the_estimate(csv_path: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    try:
        main(["train", "--config", str(_step_config(tmp_path, evalEverySteps=3)), "--data", str(csv_path),
              "--framework", "tensorflow", "--steps", "7", "--out", str(tmp_path / "run")])
    except SystemExit as exit_info:
        assert exit_info.code in (0, None)
    _assert_step_run(capsys.readouterr().out, tmp_path / "run")


def _assert_step_run(stdout: str, run: Path) -> None:
    """--steps 7, validation every 3: three evaluations labelled by their steps, history keys unchanged."""
    assert "plan: step mode: --steps 7 (config totalTrainingSteps 50,000), validation every 3 steps " \
           "(3 evaluations)" in stdout
    order = _stdout_order(stdout, r"^plan: estimated .* for 7 steps \(2 steps at ",
                          r"^evaluation 1/3 \(steps 1-3\) loss ",
                          r"^estimate after evaluation 1: .* left for 2 more evaluations \(4 steps\)$",
                          r"^evaluation 2/3 \(steps 4-6\) loss ", r"^evaluation 3/3 \(steps 7-7\) loss ")
    assert order == sorted(order)
    assert not re.search(r"^epoch \d", stdout, re.M)
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3] and "steps" not in history[0]
    assert json.loads((run / "config.json").read_text())["modelConfig"]["totalTrainingSteps"] == 7
    assert load_config(run / "config.json").model["useLrSchedule"] is True
