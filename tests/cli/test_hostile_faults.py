"""Fault injection: kill -9 at the rename step, Ctrl-C before the first epoch, resume from the run
directory alone, and training on data that cannot work.

The faults are real signals sent by the process to itself at a chosen moment (tests/fault_runner.py).
Each case asserts the exit code, a one-line message, inputs unchanged, no half-written final file,
and that what is left behind is either cleaned by the next run or resumable by the printed command.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deepepi.core.config import REPO_CONFIGS
from deepepi.data.synth import synthesize
from deepepi.core.io import TEMP_PREFIX, remove_stale_temps, write_text
from hostile import assert_no_leftovers, assert_refused, assert_untouched, error_lines, fingerprint, run

ROOT = Path(__file__).resolve().parents[2]
RUNNER = [sys.executable, str(ROOT / "tests" / "helpers" / "fault_runner.py")]
SMOKE = REPO_CONFIGS / "smoke.json"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
    [str(ROOT), str(ROOT / "tests" / "helpers"), os.environ.get("PYTHONPATH", "")])}


def faulty(fault: str, *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUNNER, fault, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=ENV)


def temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f"{TEMP_PREFIX}*"))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return synthesize(tmp_path_factory.mktemp("data"), users=3, events=40, seed=4)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ----- temp files --------------------------------------------------------------------------------

def test_stale_temp_of_a_dead_process_is_removed_by_the_next_write(tmp_path) -> None:  # noqa: ANN001
    stale = tmp_path / f"{TEMP_PREFIX}{_dead_pid()}-abc-out.csv"
    stale.write_text("half", encoding="utf-8")
    live = tmp_path / f"{TEMP_PREFIX}1-abc-out.csv"  # pid 1 is always alive: another writer's file
    live.write_text("busy", encoding="utf-8")
    other = tmp_path / ".deepepi-tmpx"  # not our pattern
    other.write_text("keep", encoding="utf-8")
    write_text(tmp_path / "new.txt", "x")
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "new.txt").read_text() == "x"


def test_remove_stale_temps_reports_what_it_removed(tmp_path) -> None:  # noqa: ANN001
    stale = tmp_path / f"{TEMP_PREFIX}{_dead_pid()}-x-model.keras"
    stale.mkdir()  # Keras may leave a folder
    assert remove_stale_temps(tmp_path) == [stale] and not stale.exists()


KILL_CASES = ["flatten", "flatten over an older output", "windows", "synth csv", "synth json"]


@pytest.mark.parametrize("case", KILL_CASES)
def test_kill_9_at_the_rename_leaves_no_half_file_and_the_next_run_cleans_up(data, tmp_path, case) -> None:  # noqa: ANN001
    src = Path(shutil.copy(data.json_paths[0], tmp_path / "events.json"))
    csv = Path(shutil.copy(data.csv_path, tmp_path / "data.csv"))
    before = fingerprint(src, csv)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if case.startswith("flatten"):
        name, args = "out.csv", ("data", "flatten", src, "-o", out_dir / "out.csv")
    elif case == "windows":
        name, args = "w.npz", ("data", "windows", csv, "-o", out_dir / "w.npz")
    else:
        name = "allData.csv" if case == "synth csv" else data.json_paths[1].name
        args = ("data", "synth", "-o", out_dir, "--users", 2, "--events", 3)
    old = b"an older, complete output\n"
    if case == "flatten over an older output":
        (out_dir / name).write_bytes(old)
    killed = faulty(f"kill-at-rename:{name}", *args, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    # an older output is also kept aside (a hard link, for the command's rollback) until the rename
    aside = [p for p in temps(out_dir) if "-old-" in p.name]
    left = [p for p in temps(out_dir) if p not in aside]
    assert len(left) == 1 and left[0].name.endswith(name) and left[0].stat().st_size > 0
    assert [p.read_bytes() for p in aside] == ([old] if case == "flatten over an older output" else [])
    if case == "flatten over an older output":
        assert (out_dir / name).read_bytes() == old  # the old file stays whole until the rename
    else:
        assert not (out_dir / name).exists()  # never a half-written file under the final name
    assert_untouched(before)
    again = faulty("kill-at-rename:-", *args, cwd=tmp_path)  # no file is named '-': no fault
    assert again.returncode == 0, again.stderr
    assert temps(out_dir) == [] and (out_dir / name).is_file() and (out_dir / name).read_bytes() != old


# ----- training on data that cannot work ----------------------------------------------------------

@pytest.mark.parametrize("keep, missing", [(0, "seizure (type 1)"), (1, "non-seizure (type 0)")])
def test_training_needs_both_classes(data, tmp_path, capsys, keep, missing) -> None:  # noqa: ANN001
    lines = data.csv_path.read_text(encoding="utf-8").splitlines()
    typ = lines[0].split(",").index("type")
    csv = tmp_path / "one_class.csv"
    csv.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ln.split(",")[typ] == str(keep)]) + "\n",
                   encoding="utf-8")
    before = fingerprint(csv)
    result = run(capsys, "train", "--config", SMOKE, "--data", csv, "--out", tmp_path / "run", "--epochs", 1)
    assert_refused(result, "one_class.csv", f"no {missing} events")
    assert_untouched(before)
    assert not (tmp_path / "run" / "resume").exists()


def test_nan_learning_rate_is_refused_before_training(tmp_path, capsys) -> None:  # noqa: ANN001
    raw = json.loads(SMOKE.read_text(encoding="utf-8"))
    raw["modelConfig"]["lrStart"] = float("nan")
    cfg = tmp_path / "nan.json"
    cfg.write_text(json.dumps(raw), encoding="utf-8")
    assert_refused(run(capsys, "train", "--config", cfg, "--out", tmp_path / "run"), "modelConfig.lrStart")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["config.json", "history.json", "train.log"])
def test_train_refuses_inputs_that_are_its_own_run_files(data, tmp_path, capsys, name) -> None:  # noqa: ANN001
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    csv = Path(shutil.copy(data.csv_path, run_dir / name))
    before = fingerprint(csv)
    assert_refused(run(capsys, "train", "--config", SMOKE, "--data", csv, "--out", run_dir), "holds the input file")
    assert_untouched(before)


def test_train_refuses_init_weights_it_would_clear(data, tmp_path, capsys) -> None:  # noqa: ANN001
    """`--init-weights RUN/init_weights.npz --out RUN`: a fresh run clears that file before reading it."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    weights = run_dir / "init_weights.npz"
    weights.write_bytes(b"weights of an earlier run")
    before = fingerprint(weights)
    result = run(capsys, "train", "--config", SMOKE, "--data", data.csv_path, "--out", run_dir,
                 "--init-weights", weights)
    assert_refused(result, "init_weights.npz", "holds the input file")
    assert_untouched(before)


# ----- Ctrl-C and resume (PyTorch: the trainer whose resume is bit-exact) ----------------------

def _train(fault: str, csv: Path, out: Path, *extra: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return faulty(fault, "train", "--config", SMOKE, "--framework", "pytorch", "--data", csv, "--out", out,
                  "--epochs", 2, "--quiet", *extra, cwd=cwd)


def _resume_command(stderr: str) -> list[str]:
    lines = error_lines(stderr)
    assert len(lines) == 1 and "continue with: deepepi " in lines[0], stderr
    return lines[0].split("continue with: deepepi ")[1].split()


@pytest.mark.torch
def test_sigint_in_data_preparation_leaves_a_clean_fresh_start(data, tmp_path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    done = _train("sigint-in-prepare", data.csv_path, out, cwd=tmp_path)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert error_lines(done.stderr) == ["deepepi: aborted"]
    assert not (out / "resume").exists() and temps(tmp_path) == []
    assert_refused(run(capsys, "train", "--out", out, "--resume"), "no resumable run")


@pytest.mark.torch
@pytest.mark.slow
def test_sigint_before_the_first_epoch_then_the_printed_resume_command(data, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    done = _train("sigint-before-fit", data.csv_path, out, cwd=tmp_path)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    command = _resume_command(done.stderr)
    assert "interrupted after epoch 0" in done.stderr
    resumed = faulty("kill-at-rename:-", *command, cwd=tmp_path)  # exactly the printed command
    assert resumed.returncode == 0, resumed.stderr
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and not (out / "resume").exists()
    assert json.loads((out / "config.json").read_text())["modelConfig"]["framework"] == "pytorch"


@pytest.fixture(scope="module")
def interrupted(data, tmp_path_factory):  # noqa: ANN001, ANN201
    """A PyTorch run stopped by Ctrl-C after epoch 1 (the issue's example), kept as a template."""
    root = tmp_path_factory.mktemp("interrupted")
    csv = Path(shutil.copy(data.csv_path, root / "data.csv"))
    done = _train("sigint-after-epoch:1", csv, root / "run", cwd=root)
    assert done.returncode == 130, done.stderr
    return root, csv, _resume_command(done.stderr)


def _copy_run(interrupted, tmp_path: Path) -> Path:  # noqa: ANN001
    root, _, _ = interrupted
    shutil.copytree(root / "run", tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.torch
@pytest.mark.slow
def test_printed_resume_command_needs_only_the_run_directory(interrupted, tmp_path) -> None:  # noqa: ANN001
    """`deepepi train --out DIR --resume`, no --config: used to fall back to the TensorFlow default."""
    root, _, command = interrupted
    run_dir = _copy_run(interrupted, tmp_path)
    command = [str(run_dir) if c == str(root / "run") else c for c in command]
    assert command[:1] == ["train"] and "--config" not in command and "--data" not in command
    resumed = faulty("kill-at-rename:-", *command, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert (run_dir / "model.pt").is_file() and not (run_dir / "model.keras").exists()


@pytest.mark.torch
@pytest.mark.parametrize("change, fragment", [
    ("other csv", "sha256 differs"), ("csv rewritten in place", "sha256 differs"),
    ("csv deleted", "is missing"), ("framework", "--framework tensorflow"), ("seed", "--seed 999"),
])
def test_resume_refuses_what_contradicts_the_run(interrupted, data, tmp_path, capsys, change, fragment) -> None:  # noqa: ANN001
    _, csv, _ = interrupted
    run_dir = _copy_run(interrupted, tmp_path)
    state = run_dir / "resume" / "run.json"
    saved = json.loads(state.read_text())
    mine = Path(shutil.copy(csv, tmp_path / "mine.csv"))
    saved["data"] = str(mine)
    state.write_text(json.dumps(saved))
    args: list[object] = ["train", "--out", run_dir, "--resume"]
    if change == "other csv":
        other = synthesize(tmp_path / "other", users=3, events=40, seed=5).csv_path
        args += ["--data", other]
    elif change == "csv rewritten in place":
        mine.write_text(mine.read_text().replace("\n", "\r\n", 1))
    elif change == "csv deleted":
        mine.unlink()
    else:
        args += [f"--{change}", "tensorflow" if change == "framework" else 999]
    before = fingerprint(*[p for p in run_dir.rglob("*") if p.is_file()])
    assert_refused(run(capsys, *args), str(run_dir), fragment)
    assert_untouched(before)  # the refused resume left the run as it was: still resumable


@pytest.mark.torch
@pytest.mark.slow
def test_force_data_resumes_on_another_csv(interrupted, data, tmp_path) -> None:  # noqa: ANN001
    run_dir = _copy_run(interrupted, tmp_path)
    other = synthesize(tmp_path / "other", users=3, events=40, seed=5).csv_path
    resumed = faulty("kill-at-rename:-", "train", "--out", run_dir, "--resume", "--data", other, "--force-data",
                     "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert not (run_dir / "resume").exists() and f"data {other}" in (run_dir / "train.log").read_text()
    assert [h["epoch"] for h in json.loads((run_dir / "history.json").read_text())] == [1, 2]


@pytest.mark.torch
def test_allow_import_of_a_non_model_in_train_is_one_line(data, tmp_path, capsys) -> None:  # noqa: ANN001
    raw = json.loads(SMOKE.read_text(encoding="utf-8"))
    raw["modelConfig"].update(modelClass="math.sqrt", framework="pytorch")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(raw), encoding="utf-8")
    result = run(capsys, "train", "--config", cfg, "--data", data.csv_path, "--out", tmp_path / "run",
                 "--allow-import", "--epochs", 1, "--quiet")
    assert_refused(result, "math.sqrt", "failed when called")
    assert_no_leftovers(tmp_path / "run")


@pytest.mark.parametrize("kind", ["character device", "fifo"])
def test_writing_to_a_device_or_pipe_keeps_it_one(tmp_path, kind) -> None:  # noqa: ANN001
    """`--report /dev/null` as root: a temp file renamed onto it replaced the device with a file."""
    import stat
    import threading

    target = tmp_path / "sink"
    if kind == "fifo":
        os.mkfifo(target)
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(target.read_bytes()))
        reader.start()
    else:
        try:
            os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
        except PermissionError:
            pytest.skip("creating a device node needs root (the hazard exists only as root)")
    write_text(target, "report\n")
    if kind == "fifo":
        reader.join(timeout=10)
        assert got == [b"report\n"] and stat.S_ISFIFO(os.stat(target).st_mode)
    else:
        assert stat.S_ISCHR(os.stat(target).st_mode)
    assert temps(tmp_path) == []
