"""`deepepi train` as a process: SIGKILL then --resume, Ctrl-C (exit 130), refusing to overwrite a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepepi.core.config import REPO_CONFIGS

pytestmark = pytest.mark.slow  # every test here trains in a child process

SMOKE = REPO_CONFIGS / "smoke.json"
EPOCHS = 5
CLI = [sys.executable, "-c", "from deepepi.cli import main; main()"]
# One intra-op thread: far faster than two on a shared 2-core CI machine, and the same thread
# count in every process keeps torch's float reductions, hence the histories, comparable.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cmd(csv: Path, out: Path, framework: str, *extra: str) -> list[str]:
    return [*CLI, "train", "--config", str(SMOKE), "--data", str(csv), "--framework", framework,
            "--out", str(out), "--epochs", str(EPOCHS), "--quiet", *extra]


def _torch_epoch(out: Path) -> int:
    import torch

    path = out / "resume" / "state.pt"
    return int(torch.load(path, weights_only=True)["epoch"]) if path.exists() else 0


def _keras_epoch(out: Path) -> int:
    path = out / "resume" / "keras_state.json"
    return int(json.loads(path.read_text())["epoch"]) if path.exists() else 0


def _start_and_signal(cmd: list[str], saved_epoch, sig: signal.Signals) -> tuple[subprocess.Popen, int]:  # noqa: ANN001
    """Start training, wait for the first epoch's resume checkpoint, send ``sig``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 180
    epoch = 0
    while epoch < 1:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no resume checkpoint within 180 s"
        time.sleep(0.02)
        epoch = saved_epoch()
    proc.send_signal(sig)
    return proc, epoch


def _history(out: Path) -> list[dict]:
    return json.loads((out / "history.json").read_text())


def _kill_and_resume(csv: Path, out: Path, framework: str, saved_epoch) -> list[dict]:  # noqa: ANN001
    proc, _ = _start_and_signal(_cmd(csv, out, framework), lambda: saved_epoch(out), signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = saved_epoch(out)
    before = _history(out)[:done]
    assert 1 <= done < EPOCHS, "the run finished before it could be killed"
    resumed = subprocess.run(_cmd(csv, out, framework, "--resume"), capture_output=True, text=True,
                             timeout=300, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    after = _history(out)
    assert [h["epoch"] for h in after] == list(range(1, EPOCHS + 1))
    assert after[:done] == before  # the epochs before the kill are kept as they were
    assert not (out / "resume").exists() and (out / "metrics.json").is_file()
    assert f"resumed after epoch {done}" in (out / "train.log").read_text()
    return after


@pytest.mark.torch
def test_torch_resume_after_sigkill_equals_uninterrupted_run(csv_path: Path, tmp_path: Path) -> None:
    import torch

    from deepepi.core.config import load_config
    from deepepi.train.run import train

    after = _kill_and_resume(csv_path, tmp_path / "killed", "pytorch", _torch_epoch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        straight = train(load_config(SMOKE), data=csv_path, framework="pytorch", out=tmp_path / "straight",
                         epochs=EPOCHS, quiet=True)
    finally:
        torch.set_num_threads(threads)
    assert after == straight.history  # RNG, optimiser and scheduler states all resumed exactly


@pytest.mark.tf
def test_keras_resume_after_sigkill(csv_path: Path, tmp_path: Path) -> None:
    _kill_and_resume(csv_path, tmp_path / "killed", "tensorflow", _keras_epoch)


@pytest.mark.torch
def test_ctrl_c_saves_and_says_how_to_resume(csv_path: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    proc, _ = _start_and_signal(_cmd(csv_path, out, "pytorch"), lambda: _torch_epoch(out), signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "interrupted after epoch" in lines[0] and "--resume" in lines[0], err
    assert _torch_epoch(out) >= 1
    from deepepi.cli import main

    with pytest.raises(SystemExit) as exit_info:  # refused before any data or framework is touched
        main(["train", "--config", str(SMOKE), "--data", str(csv_path), "--out", str(out)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"deepepi: error: {out}: holds an unfinished run; continue it with --resume, or choose another --out"]
