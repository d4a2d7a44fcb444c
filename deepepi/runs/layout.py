"""The run directory: file names, the run log, history/metrics/config JSON and training.png.

Both trainers write the same names (only the native model differs: model.keras | model.pt), every
file through deepepi.core.io so a crash never leaves a half-written artefact. ``resume/`` exists only
while a run can be continued; a finished run removes it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from deepepi.core import io
from deepepi.core.errors import DataError

MODEL_FILES = {"tensorflow": "model.keras", "pytorch": "model.pt"}
WEIGHTS = "weights.npz"
INIT_WEIGHTS = "init_weights.npz"  # the weights training started from (feed to --init-weights)
HISTORY = "history.json"
METRICS = "metrics.json"
PLOT = "training.png"
CONFIG = "config.json"
LOG = "train.log"
THRESHOLD = "threshold.json"  # the validation-chosen decision threshold (``decision_threshold``)
RESUME_DIR = "resume"
RUN_STATE = "run.json"  # inside resume/: what --resume needs besides the framework checkpoint


class RunLog:
    """train.log plus the console: every line is kept in the log; ``quiet`` silences all but summaries.

    The log is rewritten atomically after each line (it is small), so it survives SIGKILL intact.
    """

    def __init__(self, path: Path, *, quiet: bool = False, append: bool = False) -> None:
        self.path = path
        self.quiet = quiet
        self.lines: list[str] = []
        if append and path.exists():
            self.lines = path.read_text(encoding="utf-8").splitlines()

    def _add(self, line: str) -> None:
        self.lines.append(line)
        io.write_text(self.path, "\n".join(self.lines) + "\n")

    def info(self, line: str) -> None:
        """A detail line (split sizes, choices made): logged, printed unless quiet."""
        self._add(line)
        if not self.quiet:
            print(line, file=sys.stdout, flush=True)

    def summary(self, line: str) -> None:
        """An epoch summary or the final line: always printed."""
        self._add(line)
        print(line, file=sys.stdout, flush=True)

    def note(self, line: str) -> None:
        """Only in train.log (e.g. epoch wall times, kept out of history.json)."""
        self._add(line)


class SilentLog(RunLog):
    """The log of a torchrun rank other than 0: keeps the lines in memory, writes and prints nothing."""

    def __init__(self) -> None:
        super().__init__(Path(LOG), quiet=True)

    def _add(self, line: str) -> None:
        self.lines.append(line)

    def summary(self, line: str) -> None:
        self._add(line)


def write_history(run_dir: Path, history: list[dict[str, Any]]) -> None:
    io.write_json(run_dir / HISTORY, history)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read run file: {exc}", source=str(path)) from None


def read_threshold(run_dir: Path) -> float | None:
    """The run's recorded ``decision_threshold``, or None when the run has not recorded one."""
    path = Path(run_dir) / THRESHOLD
    if not path.is_file():
        return None
    record = read_json(path)
    value = record.get("decision_threshold") if isinstance(record, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise DataError(f"decision_threshold must be a number in [0, 1], got {value!r}", source=str(path))
    return float(value)


def plot_history(path: Path, history: list[dict[str, Any]], *, title: str = "") -> None:
    """training.png: loss, accuracy and sensitivity / false-alarm ratio per epoch, train and val."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    def series(key: str) -> list[float]:
        return [float("nan") if h[key] is None else h[key] for h in history]

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(12, 3.6), dpi=100)
    panels = (("loss", ("loss",)), ("accuracy", ("accuracy",)), ("TPR / FPR", ("sensitivity", "far")))
    for i, (name, keys) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        for key in keys:
            ax.plot(epochs, series(key), marker="o", label=f"train {key}")
            ax.plot(epochs, series("val_" + key), marker="o", linestyle="--", label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def remove_resume_state(run_dir: Path) -> None:
    """A finished run is no longer resumable."""
    shutil.rmtree(run_dir / RESUME_DIR, ignore_errors=True)
