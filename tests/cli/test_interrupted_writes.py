"""Issue 26, deliverable 4: an interrupted or failed command leaves nothing (cli.guarded's WriteSet).

Real faults in a child process (tests/helpers/fault_runner.py): SIGINT or SIGTERM just before one of
the command's renames, a file-size limit (RLIMIT_FSIZE with SIGXFSZ ignored, so a write fails with
"File too large"), and a real "No space left on device" (/dev/full). Each must end in one line
(naming the file for a failed write) with exit 130 or 2, and leave the folder exactly as it was:
no new file, an older output byte-identical, no temporary file. Training interrupted after an
epoch is the one exception the README promises: it stays resumable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepepi.core.config import REPO_CONFIGS
from hostile import error_lines

ROOT = Path(__file__).resolve().parents[2]
RUNNER = [sys.executable, str(ROOT / "tests" / "helpers" / "fault_runner.py")]
SMOKE = REPO_CONFIGS / "smoke.json"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.pathsep.join(
    [str(ROOT), str(ROOT / "tests" / "helpers"), os.environ.get("PYTHONPATH", "")])}


def faulty(fault: str, *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUNNER, fault, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=ENV)


def tree(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` with its sha256 (files)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        found[str(path.relative_to(folder))] = (hashlib.sha256(path.read_bytes()).hexdigest()
                                                if path.is_file() else "dir")
    return found


def one_line(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = error_lines(done.stderr)
    assert done.returncode == code and len(lines) == 1, (done.returncode, done.stderr)
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# ----- evaluate (framework-free: the hand-computed stub model) ----------------------------------

@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evaluate_fixture import write_data, write_stub_model

    folder = tmp_path_factory.mktemp("evaluation")
    write_data(folder)
    write_stub_model(folder / "stub.onnx")
    return folder


EVALUATE = ("evaluate", "stub.onnx", "--data", "fixture.csv", "-o", "out", "--bootstrap", 10)
# report.html is written last (about 190 kB); the plots and results.json (under 40 kB) before it
EVALUATE_FAULTS = [("sigint-at-rename:results.json", 130, "aborted; removed what it had written"),
                   ("sigterm-at-rename:report.html", 130, "aborted; removed what it had written"),
                   ("fsize:100000", 2, "report.html: cannot write: File too large")]


@pytest.mark.parametrize("fault, code, fragment", EVALUATE_FAULTS, ids=[f[0] for f in EVALUATE_FAULTS])
def test_evaluate_interrupted_or_failing_leaves_nothing(evaluation, tmp_path, fault, code, fragment) -> None:  # noqa: ANN001
    for name in ("stub.onnx", "fixture.csv"):
        shutil.copy(evaluation / name, tmp_path / name)
    before = tree(tmp_path)
    one_line(faulty(fault, *EVALUATE, cwd=tmp_path), code, fragment)
    assert tree(tmp_path) == before  # no out/, no plot, no temp file; inputs unchanged


def test_evaluate_failing_over_an_older_output_keeps_it_whole(evaluation, tmp_path) -> None:  # noqa: ANN001
    for name in ("stub.onnx", "fixture.csv"):
        shutil.copy(evaluation / name, tmp_path / name)
    assert faulty("fsize:100000000", *EVALUATE, cwd=tmp_path).returncode == 0
    before = tree(tmp_path)
    one_line(faulty("fsize:100000", *EVALUATE, "--seed", 3, cwd=tmp_path), 2, "report.html", "File too large")
    assert tree(tmp_path) == before  # the first run's results.json and plots, byte-identical


def test_no_space_left_is_one_line_naming_the_file(evaluation, tmp_path) -> None:  # noqa: ANN001
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    for name in ("stub.onnx", "fixture.csv"):
        shutil.copy(evaluation / name, tmp_path / name)
    done = faulty("fsize:100000000", "predict", "stub.onnx", "--data", "fixture.csv", "-o", "/dev/full",
                  cwd=tmp_path)
    one_line(done, 2, "/dev/full: cannot write: No space left on device")


# ----- export and import (PyTorch) ----------------------------------------------------------------

@pytest.fixture(scope="module")
def torch_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepepi.data.synth import synthesize
    from onnx_helpers import make_run, small_config

    folder = tmp_path_factory.mktemp("torch_run")
    make_run(folder / "run", small_config())
    synthesize(folder / "data", users=3, events=40, seed=4)
    return folder


@pytest.mark.torch
@pytest.mark.parametrize("fault, code, fragment", [
    ("sigint-at-rename:model.onnx", 130, "aborted"),  # the gate (one-class: this untrained model never fires) comes later
    ("fsize:15000", 2, "run/model.onnx: cannot write: File too large")], ids=["sigint", "file size limit"])
def test_export_interrupted_or_failing_leaves_the_run_as_it_was(torch_run, tmp_path, fault, code, fragment) -> None:  # noqa: ANN001
    """The float32 model.onnx is written before the quantised copy: it must go again with it."""
    shutil.copytree(torch_run / "run", tmp_path / "run")
    shutil.copy(torch_run / "data" / "allData.csv", tmp_path / "cal.csv")
    before = tree(tmp_path)
    done = faulty(fault, "export", "--onnx", "run", "--quantize", "fp16", "--calibration", "cal.csv", cwd=tmp_path)
    one_line(done, code, fragment)
    assert tree(tmp_path) == before


@pytest.fixture(scope="module")
def reference_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint in the reference (nnTraining2) layout, built by tests/runs/test_import.py's fixture."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_import_fixtures", ROOT / "tests" / "runs" / "test_import.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    folder = tmp_path_factory.mktemp("reference")
    fixtures.save_reference_checkpoint(fixtures.torch_reference(0.025), folder / "ref.pt")
    Path(fixtures.ref_config(folder, "pytorch")).rename(folder / "ref.json")
    return folder


@pytest.mark.torch
@pytest.mark.parametrize("fault, code, fragment", [
    ("sigint-at-rename:imported", 130, "aborted"),
    ("fsize:100000", 2, "imported/weights.npz: cannot write: File too large")], ids=["sigint", "file size limit"])
def test_import_interrupted_or_failing_leaves_nothing(reference_checkpoint, tmp_path, fault, code, fragment) -> None:  # noqa: ANN001
    for name in ("ref.pt", "ref.json"):
        shutil.copy(reference_checkpoint / name, tmp_path / name)
    before = tree(tmp_path)
    one_line(faulty(fault, "import", "ref.pt", "-c", "ref.json", "-o", "imported", cwd=tmp_path), code, fragment)
    assert tree(tmp_path) == before


# ----- training (PyTorch) ---------------------------------------------------------------------------

def _train(fault: str, out: str, *extra: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return faulty(fault, "train", "--config", SMOKE, "--framework", "pytorch", "--data", "data.csv", "--out", out,
                  "--epochs", 2, "--quiet", *extra, cwd=cwd)


@pytest.mark.torch
def test_training_failing_to_write_its_checkpoint_leaves_no_run(torch_run, tmp_path) -> None:  # noqa: ANN001
    """The resume checkpoint (optimizer state included) is the first file over 40 kB; torch.save
    reports the refused write as a bare RuntimeError, which must still be one line naming it."""
    shutil.copy(torch_run / "data" / "allData.csv", tmp_path / "data.csv")
    before = tree(tmp_path)
    one_line(_train("fsize:40000", "run", cwd=tmp_path), 2, "run/resume/state.pt: cannot write: File too large")
    assert tree(tmp_path) == before  # no run/, no checkpoint, no resume state


@pytest.mark.torch
def test_training_terminated_after_an_epoch_stays_resumable(torch_run, tmp_path) -> None:  # noqa: ANN001
    """SIGTERM is Ctrl-C: the run keeps its resumable checkpoint and names the command to continue."""
    shutil.copy(torch_run / "data" / "allData.csv", tmp_path / "data.csv")
    done = _train("sigterm-at-rename:history.json", "run", cwd=tmp_path)
    line = one_line(done, 130, "continue with: deepepi train --out run --resume")
    assert (tmp_path / "run" / "resume" / "run.json").is_file(), line
    assert not (tmp_path / "run" / "metrics.json").exists()  # not a finished run
