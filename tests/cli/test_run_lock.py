"""Issue 26, deliverable 2: one writer per output directory (core.runlock, taken by cli.guarded).

A second writer into a locked directory is refused in one line naming the holder (pid, command); a
lock whose holder died is taken over (the kernel dropped the flock; the recorded pid is dead); the
lock file and a folder the lock itself created are gone afterwards. The must-show case: two real
trainings into one --out, one runs, the other is refused, and the run left is one run's.
"""

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
from deepepi.core.runlock import LOCK_NAME, RunLockedError, hold
from hostile import assert_refused, run

ROOT = Path(__file__).resolve().parents[2]
SMOKE = REPO_CONFIGS / "smoke.json"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
    [str(ROOT), str(ROOT / "tests" / "helpers"), os.environ.get("PYTHONPATH", "")])}
HOLDER = ("import sys, time; from deepepi.core.runlock import hold\n"
          "with hold(sys.argv[1], 'deepepi evaluate -o x'):\n"
          "    print('held', flush=True); time.sleep(60)\n")


@pytest.fixture
def holder(tmp_path: Path):  # noqa: ANN201
    """Another process holding the lock of tmp_path/out."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "out")], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys, holder) -> None:  # noqa: ANN001
    with pytest.raises(RunLockedError, match=rf"pid {holder.pid}, deepepi evaluate -o x"):
        with hold(tmp_path / "out", "deepepi train"):
            pass
    line = assert_refused(run(capsys, "data", "synth", "-o", tmp_path / "out", "--users", 2, "--events", 3),
                          f"pid {holder.pid}", "deepepi evaluate -o x", "another deepepi is writing")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [LOCK_NAME], line  # nothing written


def test_the_lock_of_a_dead_holder_is_taken_over(tmp_path, holder) -> None:  # noqa: ANN001
    holder.send_signal(signal.SIGKILL)  # kill -9: no clean-up ran, the lock file stays
    holder.wait()
    assert (tmp_path / "out" / LOCK_NAME).read_text().startswith(f"{holder.pid} ")
    with hold(tmp_path / "out", "deepepi train"):
        assert (tmp_path / "out" / LOCK_NAME).read_text() == f"{os.getpid()} deepepi train\n"
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_the_lock_is_reentrant_and_leaves_no_trace(tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "new" / "out"
    with hold(out, "deepepi train"), hold(out, "deepepi train"):  # the CLI, then train() itself
        assert (out / LOCK_NAME).is_file()
    assert not (tmp_path / "new").exists()  # the folders the lock created, removed again (empty)


@pytest.mark.torch
def test_two_trainings_into_one_out(tmp_path, capsys) -> None:  # noqa: ANN001
    from deepepi.data.synth import synthesize

    csv = synthesize(tmp_path / "data", users=3, events=40, seed=4).csv_path
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "deepepi", "train", "--config", str(SMOKE), "--framework",
                              "pytorch", "--data", str(csv), "--out", str(out), "--epochs", "2", "--seed", "1",
                              "--quiet"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / LOCK_NAME).exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    line = assert_refused(run(capsys, "train", "--config", SMOKE, "--framework", "pytorch", "--data", csv,
                              "--out", out, "--epochs", 1, "--seed", 2), f"pid {first.pid}", "deepepi train")
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["seed"] == config["randomSeed"] == 1, line  # the first run's, every file
    assert [h["epoch"] for h in history] == [1, 2] and metrics["epochs_run"] == 2
    assert not (out / LOCK_NAME).exists() and not (out / "resume").exists()
