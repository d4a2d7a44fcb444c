"""`deepepi train --kfold K --together`: K runs in one process equal the same K runs trained alone.

The batched engine (one vmapped step for all models, CUDA's default) is held to the lone trainer's
steps in float64 on CPU; the interleaved engine (CPU's default) writes the very files of the
one-process-per-fold path, also after an interrupted run is resumed.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepepi.core.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.json"
HELPERS = ROOT / "tests" / "helpers"


def _tiny_model_config(dropout: float):  # noqa: ANN202 - Config
    return load_config(SMOKE).with_overrides(
        framework="pytorch", modelType="pytorch", nLayers=3, filters=[4, 4, 8], strides=[1, 2, 2],
        denseWidths=[8], denseDropout=dropout, batchSize=16)


@pytest.mark.torch
def test_batched_steps_equal_lone_steps_float64() -> None:
    """K = 3 models on 3 training sets of different sizes (so the epochs' partial last batches fall
    on different steps and step alone), 20 steps: weights and BatchNorm statistics within 1e-6."""
    import torch

    from deepepi.models import registry
    from deepepi.models.torch_weights import export_weights
    from deepepi.train.batches import BatchStream
    from deepepi.train.torch_stacked import train_steps_together
    from deepepi.train.torch_lockstep import lockstep_model, train_steps

    cfg = _tiny_model_config(0.0)
    spec = registry.spec_from_config(cfg)
    rng = np.random.default_rng(0)
    xs, ys, streams, models = [], [], [], []
    for k, n in enumerate((70, 81, 90)):  # 16-sample batches: 5, 6 and 6 steps per epoch, last ones partial
        xs.append(1 + 0.3 * rng.standard_normal((n, spec.window)))
        ys.append((rng.random(n) < 0.4).astype(np.int64))
        streams.append(BatchStream(n, 16, 42 + k))
        torch.manual_seed(k)
        models.append(lockstep_model(spec, export_weights(registry.build(spec, "pytorch"), spec), "float64"))
    alone = copy.deepcopy(models)
    start = [m.state_dict() for m in copy.deepcopy(models)]
    train_steps_together(models, cfg.model, xs, ys, streams, 0, 20)
    for k in range(3):
        train_steps(alone[k], cfg.model, xs[k], ys[k], streams[k], 0, 20)
    for k in range(3):
        a, b = alone[k].state_dict(), models[k].state_dict()
        moved = max(float((a[n].double() - start[k][n].double()).abs().max()) for n in a)
        gap = max(float((a[n].double() - b[n].double()).abs().max()) for n in a)
        assert moved > 1e-3, "the models did not train"
        assert gap < 1e-6, f"model {k}: together differs from alone by {gap:.3g}"


def _cli(args: list[str], fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    head = [sys.executable, str(HELPERS / "fault_runner.py"), fault] if fault else [sys.executable, "-m", "deepepi"]
    return subprocess.run([*head, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.torch
@pytest.mark.slow
def test_together_equals_one_process_per_fold_after_an_interrupt(csv_path: Path, tmp_path: Path) -> None:
    """--kfold 2 --together, interrupted by SIGINT as fold-0's epoch 2 is recorded (both folds then
    hold their epoch-1 checkpoint), then --resume: the files equal those of --kfold 2 one fold per
    process (the lone trainer's own steps, in one process)."""
    cfg = json.loads(SMOKE.read_text())
    cfg["modelConfig"].update(framework="pytorch", modelType="pytorch", epochs=2)
    config = tmp_path / "smoke_pt.json"
    config.write_text(json.dumps(cfg))
    base = ["train", "--config", str(config), "--data", str(csv_path), "--kfold", "2"]
    alone = _cli([*base, "--out", str(tmp_path / "alone")])
    assert alone.returncode == 0, alone.stderr
    cut = _cli([*base, "--together", "--out", str(tmp_path / "together")], fault="sigint-after-epoch:2")
    assert cut.returncode == 130, cut.stderr
    assert "--together --resume" in cut.stderr
    assert not (tmp_path / "together" / "kfold_summary.json").exists()
    resumed = _cli([*base, "--together", "--resume", "--out", str(tmp_path / "together")])
    assert resumed.returncode == 0, resumed.stderr
    for name in ("kfold_summary.json", "fold-0/history.json", "fold-1/history.json", "fold-0/metrics.json",
                 "fold-1/metrics.json", "fold-0/weights.npz", "fold-1/weights.npz", "fold-1/threshold.json"):
        assert (tmp_path / "alone" / name).read_bytes() == (tmp_path / "together" / name).read_bytes(), name
    log = (tmp_path / "together" / "fold-1" / "train.log").read_text()
    assert "together: interleaved steps" in log and "resumed after epoch 1" in log


BENCH = ROOT / "bench" / "train_many.py"
BLOCKED = ("imblearn", "click", "matplotlib", "tensorflow", "keras", "onnx", "onnxruntime", "timescoring")


@pytest.mark.torch
def test_train_many_bench_runs_from_source_without_the_optional_packages(tmp_path: Path) -> None:
    """The prepared GPU script's code path (``--smoke``: a tiny model on CPU), as the GPU machine runs it."""
    run = (f"import runpy, sys\nsys.modules.update(dict.fromkeys({BLOCKED!r}))\n"
           f"sys.argv = [{str(BENCH)!r}, '--smoke', '--device', 'cpu']\n"
           f"runpy.run_path({str(BENCH)!r}, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith("| fp32 | 16 |")]
    assert [int(r[3]) for r in rows] == [1, 2]
    assert all(float(r[4].replace(",", "")) > 0 and float(r[5].replace(",", "")) > 0 for r in rows)


def test_together_refuses_tensorflow_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from deepepi.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(SMOKE), "--kfold", "2", "--together", "--out", "unused"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(err) == 1 and "--together trains PyTorch runs" in err[0] and "tensorflow" in err[0]


@pytest.mark.parametrize("argv, needle", [(["--together"], "--together needs --kfold"),
                                          (["--kfold", "2", "--seeds", "1,x"], "--seeds 1,x"),
                                          (["--kfold", "2", "--seeds", "1,1"], "distinct seeds"),
                                          (["--kfold", "2", "--seeds", "1,2", "--seed", "3"], "give one of them")])
def test_together_and_seeds_flag_errors(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    from deepepi.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(SMOKE), *argv, "--out", "unused"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and needle in err[0], err
