"""The run directory: file names, the run log, history/metrics/config JSON (training.png is drawn by train.history_plot).

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
from deepepi.core.threshold import parse_threshold

MODEL_FILES = {"tensorflow": "model.keras", "pytorch": "model.pt"}
WEIGHTS = "weights.npz"
INIT_WEIGHTS = "init_weights.npz"  # the weights training started from (feed to --init-weights)
HISTORY = "history.json"
METRICS = "metrics.json"
PLOT = "training.png"
CONFIG = "config.json"
LOG = "train.log"
THRESHOLD = "threshold.json"  # the validation-chosen decision threshold (``decision_threshold``)
SPLIT_FILES = {"val": "val_events.csv", "test": "test_events.csv"}  # the events of each held-out split
DATA_RECORD = "data.json"  # the CSV the run read (path, sha256): what `deepepi data split` rebuilds from
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
    return parse_threshold(value, field="decision_threshold", source=str(path), error=DataError)


def write_split_files(run_dir: Path, data: Path, parts: dict[str, Any]) -> None:
    """RUN/val_events.csv, RUN/test_events.csv (one row per event: eventId, userId, label, from the
    split's windows) and RUN/data.json (the CSV they index, by path and sha256)."""
    from deepepi.data.split import part_events

    for part, windows in parts.items():
        table = part_events(windows.event_id, windows.user_id, windows.y)
        io.write_text(run_dir / SPLIT_FILES[part], table.to_csv(index=False))
    io.write_json(run_dir / DATA_RECORD, {"path": str(Path(data).resolve()), "sha256": io.sha256_file(data)})


def read_split(run_dir: Path, part: str) -> tuple[dict[str, Any], list[int]]:
    """(the data record, the part's event ids) of a run; DataError naming the file when missing."""
    path = Path(run_dir) / SPLIT_FILES[part]
    record_path = Path(run_dir) / DATA_RECORD
    for need in (path, record_path):
        if not need.is_file():
            raise DataError(f"no {need.name}: not a run directory, or trained before runs recorded their "
                            "splits", source=str(run_dir))
    record = read_json(record_path)
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise DataError("expected an object with a \"path\"", source=str(record_path))
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split(",")[0] != "eventId":
        raise DataError("expected a CSV whose first column is eventId", source=str(path))
    try:
        ids = [int(line.split(",")[0]) for line in lines[1:] if line.strip()]
    except ValueError:
        raise DataError("eventId must be an integer", source=str(path)) from None
    return record, ids


# The parts of threshold.json the model metadata carries (ONNX ``decision_rule``, the app sidecar).
RULE_FIELDS = ("rule", "rule_kind", "budget_met", "alarm_budget_per_24h", "validation_source",
               "validation_seizure_events", "validation_non_seizure_hours", "event_sensitivity",
               "sensitivity_interval", "false_alarm_ratio", "false_alarms", "fp_per_24h")


def threshold_rule_json(run_dir: Path) -> str | None:
    """How the run's threshold was chosen, as compact JSON for the model metadata; None without
    a threshold.json (or one from before the rule was recorded)."""
    path = Path(run_dir) / THRESHOLD
    if not path.is_file():
        return None
    record = read_json(path)
    if not isinstance(record, dict) or "rule_kind" not in record:
        return None
    rule = {k: record.get(k) for k in RULE_FIELDS}
    logic = record.get("alarm_logic")
    rule["alarm_logic"] = logic.get("name") if isinstance(logic, dict) else None
    return json.dumps(rule, sort_keys=True, separators=(",", ":"))


def remove_resume_state(run_dir: Path) -> None:
    """A finished run is no longer resumable."""
    shutil.rmtree(run_dir / RESUME_DIR, ignore_errors=True)
