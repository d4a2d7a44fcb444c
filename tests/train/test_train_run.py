"""`deepepi.train.run.train` end to end on tiny synthetic data and configs/smoke.json, per framework.

Each framework trains once per module (3 epochs); the tests then read that run directory. A check whose
assertions are the same in both frameworks is one test parametrised over `framework`, each case carrying its
own framework marker (tf or torch: its tox environment).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from deepepi.core.config import REPO_CONFIGS, load_config
from deepepi.runs import layout as art
from deepepi.scoring.metrics import HISTORY_KEYS, cross_entropy, final_report
from deepepi.train.run import train
from deepepi.train.schedule import ThreePhase
from deepepi.train.selection import EarlyStop, Selector

SMOKE = REPO_CONFIGS / "smoke.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FRAMEWORKS = [pytest.param("tensorflow", marks=pytest.mark.tf), pytest.param("pytorch", marks=pytest.mark.torch)]


def _run(csv: Path, out: Path, framework: str, **overrides) -> Path:  # noqa: ANN003
    cfg = load_config(SMOKE)
    if overrides:
        cfg = cfg.with_overrides(**overrides)
    result = train(cfg, data=csv, framework=framework, out=out, quiet=True)
    assert result.run_dir == out
    return out


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for this module's torch runs: much faster on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def torch_run(csv_path: Path, tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    return _run(csv_path, tmp_path_factory.mktemp("torch") / "run", "pytorch")


@pytest.fixture(scope="module")
def keras_run(csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(csv_path, tmp_path_factory.mktemp("keras") / "run", "tensorflow")


def _history(run: Path) -> list[dict]:
    return json.loads((run / art.HISTORY).read_text())


def _check_common(run: Path, framework: str) -> dict:
    """Artefacts every run has, whatever the framework; returns metrics.json."""
    native = art.MODEL_FILES[framework]
    other = art.MODEL_FILES["tensorflow" if framework == "pytorch" else "pytorch"]
    for name in (native, art.WEIGHTS, art.HISTORY, art.METRICS, art.PLOT, art.CONFIG, art.LOG):
        assert (run / name).is_file(), name
    assert not (run / other).exists() and not (run / art.RESUME_DIR).exists()
    assert (run / art.PLOT).read_bytes()[:8] == PNG_MAGIC
    config = json.loads((run / art.CONFIG).read_text())
    assert config["modelConfig"]["framework"] == framework and config["randomSeed"] == 42
    hist = _history(run)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert all(tuple(h) == HISTORY_KEYS for h in hist)
    assert hist[-1]["loss"] < hist[0]["loss"]
    metrics = json.loads((run / art.METRICS).read_text())
    val_losses = [h["val_loss"] for h in hist]
    assert metrics["best_epoch"] == int(np.argmin(val_losses)) + 1  # gate off: lowest val_loss wins
    w = metrics["test"]["window"]
    assert w["tp"] + w["fp"] + w["tn"] + w["fn"] == metrics["test"]["windows"]
    assert "osd_baseline" in metrics["test"]
    log = (run / art.LOG).read_text()
    assert "validation: 0.25 of the training events" in log and log.rstrip().splitlines()[-1].startswith("done: ")
    return metrics


def _splits(csv: Path, run: Path):  # noqa: ANN202 - deepepi.data.dataset.Datasets
    from deepepi.core.config import from_dict
    from deepepi.data.dataset import prepare

    return prepare(from_dict(json.loads((run / art.CONFIG).read_text()), warn=False), csv)


def _log_probs(probs: np.ndarray) -> np.ndarray:
    """Log-probabilities are logits up to a per-row constant: same argmax, same cross-entropy."""
    return np.log(np.clip(probs, 1e-30, None))


def _assert_saved_model_is_selected(metrics: dict, csv: Path, run: Path, predict) -> None:  # noqa: ANN001
    """The saved model is the selected epoch's (its val loss is that epoch's; the last epoch's when no
    epoch passed the gate), the shared Selector replayed on history picks the same epoch, and the
    model reproduces metrics.json."""
    splits = _splits(csv, run)
    history = _history(run)
    replay = Selector.from_model_config(json.loads((run / art.CONFIG).read_text())["modelConfig"])
    for record in history:
        replay.update(record)
    assert replay.best_epoch == metrics["best_epoch"] and metrics["gate_met"] == replay.gate_met
    best = next(h for h in history if h["epoch"] == (metrics["best_epoch"] or history[-1]["epoch"]))
    assert cross_entropy(_log_probs(predict(splits.val.X)), splits.val.y) == pytest.approx(best["val_loss"],
                                                                                            rel=1e-4)
    report = final_report(splits.test.y, _log_probs(predict(splits.test.X)), splits.test.event_id)
    assert metrics["test_events"] == sorted(int(e) for e in set(splits.test.event_id))
    for level in ("window", "event"):  # argmax figures: the labelled extra beside the Decision's
        for key in ("tp", "fp", "tn", "fn"):
            assert report[level][key] == metrics["test"]["argmax"][level][key], (level, key)
    # the headline window counts are at the run's Decision (threshold.json's threshold, strict)
    t = metrics["test"]["decision"]["threshold"]
    positive = np.asarray(predict(splits.test.X))[:, 1] > t
    assert int((positive & (splits.test.y == 1)).sum()) == metrics["test"]["window"]["tp"]
    assert int((positive & (splits.test.y == 0)).sum()) == metrics["test"]["window"]["fp"]
    assert report["loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-4, abs=1e-6)


def _native_predict(run: Path, framework: str):  # noqa: ANN202 - windows -> probabilities
    """The run's saved native model (model.pt or model.keras) as a predict function."""
    if framework == "pytorch":
        from deepepi.models.torch_checkpoint import load_checkpoint
        from deepepi.models.torch_predict import predict_proba

        model = load_checkpoint(run / "model.pt")[0]
    else:
        from deepepi.models.keras_files import load_keras_model
        from deepepi.models.keras_predict import predict_proba

        model = load_keras_model(run / "model.keras")
    return lambda x: predict_proba(model, x)


@pytest.mark.torch
def test_torch_run_artefacts_and_learning(torch_run: Path, csv_path: Path) -> None:
    from deepepi.models.torch_checkpoint import load_checkpoint
    from deepepi.models.torch_predict import predict_proba
    from deepepi.models.torch_weights import export_weights
    from deepepi.models.weights import load_weights

    metrics = _check_common(torch_run, "pytorch")
    model, spec, payload = load_checkpoint(torch_run / "model.pt")
    assert payload["best_epoch"] == metrics["best_epoch"]
    assert payload["config"]["modelConfig"]["framework"] == "pytorch"
    weights, wspec = load_weights(torch_run / art.WEIGHTS)
    assert wspec == spec
    for key, value in export_weights(model, spec).items():
        np.testing.assert_array_equal(weights[key], value)
    _assert_saved_model_is_selected(metrics, csv_path, torch_run, lambda x: predict_proba(model, x))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_same_seed_same_history_bytes(framework: str, request: pytest.FixtureRequest, csv_path: Path,
                                      tmp_path: Path) -> None:
    """Op determinism + seeded shuffles: a repeat of the run in the same process is identical."""
    first = request.getfixturevalue("torch_run" if framework == "pytorch" else "keras_run")
    again = _run(csv_path, tmp_path / "again", framework)
    assert (again / art.HISTORY).read_bytes() == (first / art.HISTORY).read_bytes()


@pytest.mark.torch
def test_torch_run_starts_from_init_weights(torch_run: Path, csv_path: Path, tmp_path: Path,
                                           one_torch_thread: None) -> None:
    """--init-weights: the run starts from the given neutral weights (and records them), not its seed's."""
    from deepepi.models.weights import load_weights

    given, _ = load_weights(torch_run / art.INIT_WEIGHTS)
    shifted = {k: v + np.float32(0.01) if k.endswith("kernel") else v for k, v in given.items()}
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.models.weights import save_weights

    src = tmp_path / "start.npz"
    save_weights(src, shifted, ArchSpec.from_config(load_config(SMOKE)))
    result = train(load_config(SMOKE), data=csv_path, framework="pytorch", out=tmp_path / "run", epochs=1,
                   quiet=True, init_weights=src)
    recorded, _ = load_weights(result.run_dir / art.INIT_WEIGHTS)
    for key, value in shifted.items():
        np.testing.assert_array_equal(recorded[key], value)
    assert f"initial weights: {src}" in (result.run_dir / art.LOG).read_text()


# Also exercises min_fpr selection behind a sensitivity gate (either outcome is checked).
# Step mode (useLrSchedule): 17 steps, validated after steps 7, 14 and 17, on balanced batches; also
# min_fpr selection behind a sensitivity gate and early stopping with patience 1 (either outcome is
# checked against the shared rules).
SCHEDULE = dict(useLrSchedule=True, warmupSteps=5, mainSteps=20, cooldownSteps=10, lrPeak=0.004,
                lrMainEnd=0.001, totalTrainingSteps=17, evalEverySteps=7, useBalancedBatches=True,
                earlyStoppingPatience=1, modelSelectionMetric="min_fpr", saveBestMinSensitivity=0.2)


def _assert_schedule_followed(run: Path, csv: Path) -> None:
    """Step mode: one history record per evaluation (every 7 steps and after step 17), each with the
    rate of its last optimisation step per the shared schedule; early stopping as EarlyStop replays it."""
    cfg = load_config(SMOKE).with_overrides(**SCHEDULE)
    schedule = ThreePhase.from_model_config(cfg.model)
    history = _history(run)
    stops = [7, 14, 17][:len(history)]
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert [h["lr"] for h in history] == pytest.approx([schedule(s - 1) for s in stops], rel=1e-6)
    replay = EarlyStop(1)
    stopped = [replay.update(h["val_loss"]) for h in history]
    assert not any(stopped[:-1]) and (len(history) == 3 or stopped[-1])
    assert json.loads((run / art.METRICS).read_text())["stopped_early"] == stopped[-1]
    log = (run / art.LOG).read_text()
    assert "three-phase LR schedule (ReduceLROnPlateau off)" in log
    assert "step mode: 17 steps, validation every 7 steps (3 evaluations), balanced batches" in log


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_three_phase_schedule_sets_lr_per_step(framework: str, request: pytest.FixtureRequest, csv_path: Path,
                                               tmp_path: Path) -> None:
    if framework == "pytorch":
        request.getfixturevalue("one_torch_thread")
    run = _run(csv_path, tmp_path / "sched", framework, **SCHEDULE)
    _assert_schedule_followed(run, csv_path)
    predict = _native_predict(run, framework)
    metrics = json.loads((run / art.METRICS).read_text())
    _assert_saved_model_is_selected(metrics, csv_path, run, predict)


@pytest.mark.tf
def test_keras_run_artefacts_and_learning(keras_run: Path, csv_path: Path) -> None:
    from deepepi.models.keras_files import load_keras_model
    from deepepi.models.keras_predict import predict_proba
    from deepepi.models.keras_weights import export_weights
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.models.weights import load_weights

    metrics = _check_common(keras_run, "tensorflow")
    model = load_keras_model(keras_run / "model.keras")
    weights, spec = load_weights(keras_run / art.WEIGHTS)
    assert spec == ArchSpec.from_config(load_config(SMOKE))
    for key, value in export_weights(model, spec).items():
        np.testing.assert_array_equal(weights[key], value)
    _assert_saved_model_is_selected(metrics, csv_path, keras_run, lambda x: predict_proba(model, x))


@pytest.mark.tf
def test_keras_confusion_counters_match_numpy_counts() -> None:
    from deepepi.train.keras_trainer import COUNT_KINDS, ConfusionCount
    from deepepi.scoring.metrics import Counts, predicted_class

    rng = np.random.default_rng(3)
    y, logits = rng.integers(0, 2, 50), rng.standard_normal((50, 2)).astype(np.float32)
    got = {}
    for kind in COUNT_KINDS:
        counter = ConfusionCount(kind)
        counter.update_state(y[:20], logits[:20])  # accumulated over batches, like an epoch
        counter.update_state(y[20:], logits[20:])
        got[kind] = int(counter.result())
    assert Counts(**got) == Counts.from_labels(y, predicted_class(logits))


@pytest.mark.torch
@pytest.mark.tf
def test_history_keys_identical_between_frameworks(torch_run: Path, keras_run: Path) -> None:
    torch_hist, keras_hist = _history(torch_run), _history(keras_run)
    assert [list(h) for h in torch_hist] == [list(h) for h in keras_hist]
    assert list(torch_hist[0]) == list(HISTORY_KEYS)
    torch_metrics = json.loads((torch_run / art.METRICS).read_text())
    keras_metrics = json.loads((keras_run / art.METRICS).read_text())
    assert torch_metrics["test"]["windows"] == keras_metrics["test"]["windows"]  # same arrays to both
