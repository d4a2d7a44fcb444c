"""Threshold sweep and the operating point: which threshold to ship, chosen by a stated rule.

The sweep runs the chosen alarm logic at every threshold of ``GRID`` (0.00 to 1.00 in steps of
0.01). Rules: a fixed ``--threshold``; ``--target-sensitivity S``: the highest grid threshold whose
event sensitivity is at least S (fewest false alarms that still detect that share of seizures);
``--max-far-per-day F``: the highest event sensitivity among the grid thresholds with at most F
false alarms (alarm episodes) per 24 h, ties to the higher threshold (most seizures detected within
that false-alarm budget; the training rule's budget step). Without a rule, the model's recorded
``decision_threshold``, else ``DEFAULT_THRESHOLD`` (0.5). A threshold chosen on the data it is then
scored on is optimistic: the data should be a validation set, and the result says so.

The training rule (``training_threshold``, recorded as RUN/threshold.json), chosen for the patient
on the validation split through the app's alarm logic (movement gate where the windows allow it,
WarnTime/AlarmTime): the highest event sensitivity among the grid thresholds whose false alarms,
counted as alarm episodes (``scoring.events``), stay within the budget (``alarmBudgetPer24h`` per
24 h of non-seizure recording); ties go to the higher threshold. A threshold that detects no
validation seizure does not count as meeting the budget (t = 1.00 never alarms). When none meets
it, the fallback is the best event-level Youden J (event sensitivity - false-alarm ratio, ties to
the higher threshold), and the record says so. With fewer than ``MIN_SEIZURE_EVENTS`` validation
seizure events the record warns that the threshold is uncertain and gives the bootstrap interval
(``scoring.bootstrap``, events resampled within each class) of the chosen threshold's sensitivity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deepepi.core.constants import DEFAULT_THRESHOLD
from deepepi.core.errors import ConfigError, DataError
from deepepi.scoring.bootstrap import Rule, intervals
from deepepi.scoring.evaldata import EvalData
from deepepi.scoring.events import AlarmLogic, event_figures, summary
from deepepi.scoring.metrics import Counts
from deepepi.scoring.per_event import max_per_event

GRID = np.round(np.linspace(0.0, 1.0, 101), 2)
DEFAULT_RULE = f"default {DEFAULT_THRESHOLD:g}"
MIN_SEIZURE_EVENTS = 10  # below this many validation seizure events the threshold is called uncertain
BOOTSTRAP_DRAWS = 1000
RULE_BUDGET = "alarm budget"
RULE_FALLBACK = "fallback: event Youden J"
RULE_DEFAULT = "default"


def budget_rule(budget_per_24h: float) -> str:
    return (f"highest validation event sensitivity (app logic) within the false-alarm budget of "
            f"{budget_per_24h:g} per 24 h (alarm episodes); ties to the higher threshold")


def fallback_rule(budget_per_24h: float) -> str:
    return (f"best validation event Youden J (sensitivity - false-alarm ratio, app logic): no threshold that "
            f"detects a seizure meets the false-alarm budget of {budget_per_24h:g} per 24 h")


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
        within = sw.fp_per_24h <= max_far_per_day + 1e-12
        met = bool(within.any())
        if not met:  # the fewest false alarms reachable
            within = sw.fp_per_24h == np.nanmin(sw.fp_per_24h)
        if np.isfinite(sw.sensitivity[within]).any():  # the most seizures detected there, ties to the higher t
            best = np.nanmax(sw.sensitivity[within])
            i = _highest(within & np.isclose(sw.sensitivity, best))
        else:  # no seizure event to detect: the lowest such threshold
            i = int(np.flatnonzero(within).min())
        return {"threshold": float(sw.thresholds[i]), "chosen_on_data": True, "target_met": met,
                "rule": f"highest event sensitivity within {max_far_per_day:g} false alarm(s) per 24 h "
                        "(ties to the higher threshold)"}
    if recorded is not None:
        return {"threshold": float(recorded), "rule": "the model's decision_threshold", "chosen_on_data": False,
                "target_met": None}
    return {"threshold": DEFAULT_THRESHOLD, "rule": DEFAULT_RULE, "chosen_on_data": False, "target_met": None}


def _highest(mask: np.ndarray) -> int:
    """The highest grid index in ``mask``: ties go to the higher threshold."""
    return int(np.flatnonzero(mask).max())


def training_threshold(p_seizure: np.ndarray, data: EvalData, *, budget_per_24h: float,
                       logic: AlarmLogic = AlarmLogic("app"), seed: int = 0, interval: bool = True) -> dict[str, Any]:
    """The training rule's threshold record for a validation split ``data`` and its probabilities:
    the threshold, the rule that chose it (budget met, or the fallback), the budget, and the
    validation figures at it (see the module docstring). ``interval=False`` leaves out the bootstrap
    interval and its warning (checkpoint selection applies the rule after every epoch)."""
    if not budget_per_24h >= 0:
        raise ConfigError(f"alarmBudgetPer24h: got {budget_per_24h!r}, expected a number >= 0")
    p = np.asarray(p_seizure, dtype=np.float64)
    sw = sweep(data, p, logic)
    seizure_events = int((data.events["label"] == 1).sum())
    sens = sw.sensitivity
    fp = np.nan_to_num(sw.fp_per_24h, nan=0.0)  # no non-seizure recording: no false alarm to count
    far = np.nan_to_num(sw.false_alarm_ratio, nan=0.0)
    youden = sens - far
    budget_met: bool | None
    if seizure_events == 0 or not np.isfinite(sens).any():
        i = int(np.flatnonzero(np.isclose(sw.thresholds, DEFAULT_THRESHOLD))[0])
        kind, rule, budget_met = RULE_DEFAULT, f"{DEFAULT_RULE} (no seizure event in the validation split)", None
    else:
        ok = (fp <= budget_per_24h + 1e-9) & (sens > 0)
        budget_met = bool(ok.any())
        if budget_met:
            best = np.nanmax(np.where(ok, sens, -np.inf))
            i = _highest(ok & np.isclose(sens, best))
            kind, rule = RULE_BUDGET, budget_rule(budget_per_24h)
        else:
            best = np.nanmax(youden)
            i = _highest(np.isclose(youden, best))
            kind, rule = RULE_FALLBACK, fallback_rule(budget_per_24h)
    t = float(sw.thresholds[i])
    dp = logic.decision_p(data, p)
    figs = event_figures(data, logic.states(data, dp, t),
                         max_per_event(p, data.window_event, len(data.events)), logic.params.episode_s)
    s = summary(data, figs)
    labels = data.events["label"].to_numpy()
    record: dict[str, Any] = {
        "decision_threshold": t, "rule": rule, "rule_kind": kind, "budget_met": budget_met,
        "alarm_budget_per_24h": float(budget_per_24h),
        "alarm_logic": {"name": logic.name, "acc_sd_threshold": logic.acc_sd_threshold, **logic.params.to_dict()},
        "validation_events": len(data.events), "validation_seizure_events": seizure_events,
        "validation_non_seizure_hours": s["non_seizure_hours"],
        "budget_allows_false_alarms": int(np.floor(budget_per_24h * s["non_seizure_hours"] / 24.0 + 1e-9)),
        "event_sensitivity": s["sensitivity"], "false_alarm_ratio": s["false_alarm_ratio"],
        "false_alarms": s["false_alarms"], "fp_per_24h": s["fp_per_24h"],
        "youden_j": None if not np.isfinite(youden[i]) else float(youden[i]),
        "sensitivity_interval": None, "warnings": []}
    if kind == RULE_FALLBACK:
        record["warnings"].append(
            f"THRESHOLD FALLBACK: no threshold detecting a validation seizure meets the false-alarm budget "
            f"({budget_per_24h:g} per 24 h, app logic); {t:.2f} is the best event Youden J instead, with validation "
            f"sensitivity {_fmt(s['sensitivity'])} and {_fmt(s['fp_per_24h'])} false alarms per 24 h: do not "
            "deploy this model as is")
    if interval and kind != RULE_DEFAULT and seizure_events < MIN_SEIZURE_EVENTS:
        boot = intervals(labels, figs, data.hop_s, seed=seed, rule=Rule(BOOTSTRAP_DRAWS, within_class=True))
        record["sensitivity_interval"] = boot["sensitivity"]
        record["sensitivity_interval_method"] = f"{boot['method']}, {boot['resamples']} resamples, seed {seed}"
        lo_hi = boot["sensitivity"]
        record["warnings"].append(
            f"threshold uncertain: the validation split holds {seizure_events} seizure event(s) (< "
            f"{MIN_SEIZURE_EVENTS}); sensitivity {_fmt(s['sensitivity'])} at {t:.2f}, 95 % bootstrap interval "
            + (f"{lo_hi[0]:.3f} to {lo_hi[1]:.3f}" if lo_hi else "n/a"))
    return record


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"
