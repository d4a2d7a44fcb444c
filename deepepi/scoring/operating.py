"""Threshold sweep and the operating point: which threshold to ship, chosen by a stated rule.

The sweep runs the chosen alarm logic at every threshold of ``GRID`` (0.00 to 1.00 in steps of
0.01). Rules: a fixed ``--threshold``; ``--target-sensitivity S``: the highest grid threshold whose
event sensitivity is at least S (fewest false alarms that still detect that share of seizures);
``--max-far-per-day F``: the lowest grid threshold with at most F false alarms per 24 h (most
seizures detected within that false-alarm budget). Without a rule, the model's recorded
``decision_threshold``, else ``DEFAULT_THRESHOLD`` (0.5). A threshold chosen on the data it is then
scored on is optimistic: the data should be a validation set, and the result says so.

The training rule (``training_threshold``, recorded as RUN/threshold.json): on the validation split,
with raw windows (an event is detected when any window has p > t), the highest grid threshold that
keeps the event sensitivity at its maximum over the grid: as few false alarms as possible without
losing a detectable seizure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deepepi.core.constants import DEFAULT_THRESHOLD
from deepepi.core.errors import ConfigError, DataError
from deepepi.scoring.evaldata import EvalData
from deepepi.scoring.events import AlarmLogic, event_figures, summary
from deepepi.scoring.metrics import Counts
from deepepi.scoring.per_event import max_per_event

GRID = np.round(np.linspace(0.0, 1.0, 101), 2)
DEFAULT_RULE = f"default {DEFAULT_THRESHOLD:g}"
TRAINING_RULE = "highest threshold keeping the validation event sensitivity (raw windows) at its maximum"


@dataclass
class Sweep:
    thresholds: np.ndarray
    sensitivity: np.ndarray
    fp_per_24h: np.ndarray
    false_alarm_ratio: np.ndarray
    window_tpr: np.ndarray
    window_fpr: np.ndarray

    def to_dict(self) -> dict[str, list]:
        return {k: [None if not np.isfinite(v) else float(v) for v in getattr(self, k)]
                for k in ("thresholds", "sensitivity", "fp_per_24h", "false_alarm_ratio", "window_tpr",
                          "window_fpr")}


def _nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def sweep(data: EvalData, p: np.ndarray, logic: AlarmLogic, grid: np.ndarray = GRID) -> Sweep:
    dp = logic.decision_p(data, p)
    max_p = max_per_event(p, data.window_event, len(data.events))
    rows: dict[str, list[float]] = {k: [] for k in ("sensitivity", "fp_per_24h", "false_alarm_ratio",
                                                    "window_tpr", "window_fpr")}
    for t in grid:
        s = summary(data, event_figures(data, logic.states(data, dp, float(t)), max_p))
        c = Counts.from_labels(data.y, (p > t).astype(np.int64))
        rows["sensitivity"].append(_nan(s["sensitivity"]))
        rows["fp_per_24h"].append(_nan(s["fp_per_24h"]))
        rows["false_alarm_ratio"].append(_nan(s["false_alarm_ratio"]))
        rows["window_tpr"].append(_nan(c.tpr))
        rows["window_fpr"].append(_nan(c.fpr))
    return Sweep(np.asarray(grid, dtype=np.float64), *(np.asarray(rows[k]) for k in rows))


def check_rule(threshold: float | None, target_sensitivity: float | None, max_far_per_day: float | None) -> None:
    """At most one rule, each in range; else a one-line ConfigError naming the option."""
    given = [n for n, v in (("--threshold", threshold), ("--target-sensitivity", target_sensitivity),
                            ("--max-far-per-day", max_far_per_day)) if v is not None]
    if len(given) > 1:
        raise ConfigError(f"{' and '.join(given)}: give at most one way to choose the threshold")
    for name, value in (("--threshold", threshold), ("--target-sensitivity", target_sensitivity)):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name}: got {value!r}, expected a number in [0, 1]")  # !r: never rounded into range
    if max_far_per_day is not None and not max_far_per_day >= 0.0:
        raise ConfigError(f"--max-far-per-day: got {max_far_per_day!r}, expected a number >= 0")


def choose(sw: Sweep, *, threshold: float | None = None, target_sensitivity: float | None = None,
           max_far_per_day: float | None = None, recorded: float | None = None) -> dict[str, Any]:
    """The operating point: threshold, the rule that chose it, and whether its target was met."""
    check_rule(threshold, target_sensitivity, max_far_per_day)
    if threshold is not None:
        return {"threshold": float(threshold), "rule": "--threshold", "chosen_on_data": False, "target_met": None}
    if target_sensitivity is not None:
        if not np.isfinite(sw.sensitivity).any():
            raise DataError("--target-sensitivity: the data has no seizure event with a window")
        ok = np.flatnonzero(sw.sensitivity >= target_sensitivity - 1e-12)
        met = len(ok) > 0
        if not met:  # the best reachable sensitivity, at its highest threshold
            ok = np.flatnonzero(sw.sensitivity == np.nanmax(sw.sensitivity))
        return {"threshold": float(sw.thresholds[ok.max()]), "chosen_on_data": True, "target_met": bool(met),
                "rule": f"highest threshold with event sensitivity >= {target_sensitivity:g}"}
    if max_far_per_day is not None:
        if not np.isfinite(sw.fp_per_24h).any():
            raise DataError("--max-far-per-day: the data has no non-seizure event with a window")
        ok = np.flatnonzero(sw.fp_per_24h <= max_far_per_day + 1e-12)
        met = len(ok) > 0
        if not met:  # the fewest false alarms reachable, at its lowest threshold
            ok = np.flatnonzero(sw.fp_per_24h == np.nanmin(sw.fp_per_24h))
        return {"threshold": float(sw.thresholds[ok.min()]), "chosen_on_data": True, "target_met": bool(met),
                "rule": f"lowest threshold with at most {max_far_per_day:g} false alarms per 24 h"}
    if recorded is not None:
        return {"threshold": float(recorded), "rule": "the model's decision_threshold", "chosen_on_data": False,
                "target_met": None}
    return {"threshold": DEFAULT_THRESHOLD, "rule": DEFAULT_RULE, "chosen_on_data": False, "target_met": None}


def training_threshold(p_seizure: np.ndarray, data: EvalData) -> dict[str, Any]:
    """The training rule's threshold record for a validation split ``data`` and its probabilities:
    the threshold, its rule, and the validation figures at it."""
    sw = sweep(data, np.asarray(p_seizure, dtype=np.float64), AlarmLogic("raw"))
    best = float(np.nanmax(sw.sensitivity)) if np.isfinite(sw.sensitivity).any() else None
    t = choose(sw, target_sensitivity=best)["threshold"] if best is not None else DEFAULT_THRESHOLD
    i = int(np.flatnonzero(np.isclose(sw.thresholds, t))[0])

    def value(a: np.ndarray) -> float | None:
        return None if not np.isfinite(a[i]) else float(a[i])

    return {"decision_threshold": t, "rule": TRAINING_RULE if best is not None else f"{DEFAULT_RULE} (no seizure "
            "event in the validation split)", "validation_events": len(data.events),
            "validation_seizure_events": int((data.events["label"] == 1).sum()),
            "event_sensitivity": value(sw.sensitivity), "false_alarm_ratio": value(sw.false_alarm_ratio),
            "fp_per_24h": value(sw.fp_per_24h)}
