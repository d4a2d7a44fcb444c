"""The validation-chosen decision threshold, recorded in the run directory as threshold.json.

Rule: on the validation split, with raw windows (an event is detected when any window has
p > t), the highest threshold on ``evaluate.operating.GRID`` that keeps the event sensitivity at its
maximum over the grid: as few false alarms as possible without losing a detectable seizure. Export
copies it into the ONNX metadata as ``decision_threshold``; evaluate and predict use it by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepepi.core import io
from deepepi.evaluate.data import from_windows
from deepepi.scoring.events import AlarmLogic
from deepepi.scoring.operating import choose, sweep
from deepepi.runs.layout import THRESHOLD

RULE = "highest threshold keeping the validation event sensitivity (raw windows) at its maximum"


def choose_threshold(p_seizure: np.ndarray, windows: Any, hop_s: float) -> dict[str, Any]:
    """The threshold record for ``windows`` (validation split) and their seizure probabilities."""
    data = from_windows(windows, hop_s)
    sw = sweep(data, np.asarray(p_seizure, dtype=np.float64), AlarmLogic("raw"))
    best = float(np.nanmax(sw.sensitivity)) if np.isfinite(sw.sensitivity).any() else None
    t = choose(sw, target_sensitivity=best)["threshold"] if best is not None else 0.5
    i = int(np.flatnonzero(np.isclose(sw.thresholds, t))[0])

    def value(a: np.ndarray) -> float | None:
        return None if not np.isfinite(a[i]) else float(a[i])

    return {"decision_threshold": t, "rule": RULE if best is not None else "default 0.5 (no seizure event "
            "in the validation split)", "validation_events": len(data.events),
            "validation_seizure_events": int((data.events["label"] == 1).sum()),
            "event_sensitivity": value(sw.sensitivity), "false_alarm_ratio": value(sw.false_alarm_ratio),
            "fp_per_24h": value(sw.fp_per_24h)}


def record(run_dir: Path, p_seizure: np.ndarray, windows: Any, hop_s: float, val_source: str) -> dict[str, Any]:
    """Choose the threshold on the validation split and write RUN/threshold.json."""
    rec = {**choose_threshold(p_seizure, windows, hop_s), "validation_source": val_source}
    io.write_json(Path(run_dir) / THRESHOLD, rec)
    return rec
