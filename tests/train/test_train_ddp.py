"""PyTorch data parallelism under torchrun (gloo on CPU): equivalence with one process, rank 0 alone
writes, resume after SIGKILL.

Tolerances. One step: the gradients DDP applies equal the one-process gradients of the same global
batch within 1e-5 (measured 5.3e-6, on the first conv kernel, whose gradients reach 0.25: float32
summation order); per-rank BatchNorm statistics miss by > 1e-3 (measured 0.25). A whole run
(one epoch, 6 Adam steps) is within 1e-3 (measured 2e-4) for every weight except the biases of layers followed by
BatchNorm: BatchNorm cancels them, so their gradient is pure rounding noise, which Adam's normalised
update turns into steps of up to lrStart each; they are held to 2 * lrStart * steps. Running means
follow those biases and share their bound.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deepepi.core.config import REPO_CONFIGS

pytestmark = [pytest.mark.torch, pytest.mark.slow]

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
BATCH = 128  # a few hundred training windows: a handful of steps per epoch
GAUGE = ("conv", "dense")  # layers whose bias BatchNorm cancels (every conv and hidden dense layer)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke config in PyTorch without dropout (dropout masks are drawn per rank)."""
    raw = json.loads((REPO_CONFIGS / "smoke.json").read_text())
    m = raw["modelConfig"]
    m.update(framework="pytorch", modelType="pytorch", batchSize=BATCH, denseDropout=0.0, convDropout=0.0)
    path = tmp_path_factory.mktemp("cfg") / "ddp.json"
    path.write_text(json.dumps(raw))
    return path


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and its ranks (it starts each rank in a session of its own, so they outlive it)."""
    for worker in _children(proc.pid) if proc.poll() is None else []:
        os.kill(worker, signal.SIGKILL)
    proc.kill()
    proc.communicate(timeout=60)


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run to the end; on timeout kill every rank too (no orphans left on the machine) and fail."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        pytest.fail(f"no result within {timeout} s: {' '.join(cmd)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _grads(out: Path, *, ranks: int, local_bn: bool = False) -> dict[str, np.ndarray]:
    worker = [str(HELPERS / "ddp_grad_worker.py"), str(out)] + (["--local-bn"] if local_bn else [])
    cmd = [*TORCHRUN[:-1], str(ranks), *worker] if ranks > 1 else [sys.executable, *worker]
    done = _run(cmd, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def test_one_step_gradients_equal_one_process_on_the_global_batch(tmp_path: Path) -> None:
    one = _grads(tmp_path / "one.npz", ranks=1)
    two = _grads(tmp_path / "two.npz", ranks=2)
    assert _max_diff(one, two) <= 1e-5
    assert max(float(np.abs(g).max()) for k, g in one.items() if k.startswith("grad/")) > 1e-3  # not all ~0
    local = _grads(tmp_path / "local.npz", ranks=2, local_bn=True)
    assert _max_diff(one, local) > 1e-3  # per-rank BatchNorm statistics would change the step


def _train_cmd(config: Path, csv: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return ["-m", "deepepi", "train", "--config", str(config), "--data", str(csv), "--out", str(out),
            "--epochs", str(epochs), "--quiet", *extra]


def _torchrun(config: Path, csv: Path, out: Path, epochs: int, *extra: str) -> subprocess.CompletedProcess:
    done = _run([*TORCHRUN, *_train_cmd(config, csv, out, epochs, *extra)], timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_processes_match_one_and_only_rank_0_writes(config: Path, csv_path: Path, tmp_path: Path) -> None:
    two = _torchrun(config, csv_path, tmp_path / "two", 1)
    one = _run([sys.executable, *_train_cmd(config, csv_path, tmp_path / "one", 1)], timeout=600)
    assert one.returncode == 0, one.stderr
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    # rank 1 printed and logged nothing: every line once, as from one process
    assert sum(line.startswith("epoch 1/1 ") for line in two.stdout.splitlines()) == 1
    log = (tmp_path / "two" / "train.log").read_text().splitlines()
    assert sum(line.startswith("torchrun: 2 processes (gloo)") for line in log) == 1
    assert sum(line.startswith("epoch 1/1 ") for line in log) == 1
    h2, h1 = (json.loads((tmp_path / d / "history.json").read_text())[0] for d in ("two", "one"))
    for key in ("loss", "val_loss"):
        assert h2[key] == pytest.approx(h1[key], rel=1e-4)
    a, b = (np.load(tmp_path / d / "weights.npz") for d in ("two", "one"))
    steps = int(re.search(r"^plan: epoch mode: 1 epochs of (\d+) steps", "\n".join(log), re.M).group(1))
    lr = float(json.loads(config.read_text())["modelConfig"]["lrStart"])
    for key in a.files:
        if a[key].dtype.kind != "f":
            continue
        layer, name = key.split("/")
        gauge = (name == "bias" and layer.startswith(GAUGE)) or name == "moving_mean"
        assert float(np.abs(a[key] - b[key]).max()) <= (2 * lr * steps if gauge else 1e-3), key


def test_a_rank_other_than_0_writes_nothing(config: Path, csv_path: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from deepepi.core.config import load_config
    from deepepi.train.run import train

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "1")  # a group of one: rank 1's code path without a process group
    result = train(load_config(config), data=csv_path, out=tmp_path / "run", epochs=1, quiet=True)
    assert len(result.history) == 1 and result.metrics == {}
    assert not (tmp_path / "run").exists()


def test_torchrun_with_tensorflow_is_refused_before_any_file(config: Path, csv_path: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from deepepi.core.config import load_config
    from deepepi.core.errors import ConfigError
    from deepepi.train.run import train

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="torchrun distributes PyTorch training only"):
        train(load_config(config), data=csv_path, out=tmp_path / "run", framework="tensorflow", epochs=1, quiet=True)
    assert not (tmp_path / "run").exists()


def _saved_epoch(out: Path) -> int:
    import torch

    path = out / "resume" / "state.pt"
    try:
        return int(torch.load(path, weights_only=True)["epoch"]) if path.exists() else 0
    except (EOFError, RuntimeError):  # replaced while read
        return 0


def test_resume_after_sigkill_under_two_processes(config: Path, csv_path: Path, tmp_path: Path) -> None:
    epochs, out = 3, tmp_path / "killed"
    proc = subprocess.Popen([*TORCHRUN, *_train_cmd(config, csv_path, out, epochs)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 300
    while _saved_epoch(out) < 1:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no resume checkpoint within 300 s"
        time.sleep(0.05)
    _kill(proc)
    done = _saved_epoch(out)
    assert 1 <= done < epochs, "the run finished before it could be killed"
    resumed = _torchrun(config, csv_path, out, epochs, "--resume")
    assert resumed.stdout.count("epoch ") >= epochs - done
    straight = _torchrun(config, csv_path, tmp_path / "straight", epochs)
    assert straight.returncode == 0
    assert f"resumed after epoch {done}" in (out / "train.log").read_text()
    history = json.loads((out / "history.json").read_text())
    assert history == json.loads((tmp_path / "straight" / "history.json").read_text())
    assert not (out / "resume").exists()
