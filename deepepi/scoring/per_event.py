"""Per-event reductions of per-window values: counts, "any window positive" and the highest score.

Every event-level figure (detection, event TPR/FPR, the per-event maxima the sensitivity-at-FAR and
the strips rank by) reduces windows to events; each reduction is defined once here. ``index`` maps
each window to its event's position (0 .. n-1), as ``event_index`` or ``EvalData.window_event`` give it.
"""

from __future__ import annotations

import numpy as np


def event_index(event_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted event ids, each window's position among them)."""
    return np.unique(np.asarray(event_id), return_inverse=True)


def count_per_event(mask: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """How many windows of each event are True (float64, so weighted sums stay exact)."""
    return np.bincount(index, weights=np.asarray(mask).astype(np.float64), minlength=n)


def any_per_event(mask: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """True for each event with at least one True window (an event is detected when any window is)."""
    return count_per_event(mask, index, n) > 0


def max_per_event(values: np.ndarray, index: np.ndarray, n: int, *, skip_nan: bool = True) -> np.ndarray:
    """Each event's highest value (float64); NaN for an event without windows.

    ``skip_nan``: a NaN window is passed over (evaluate's event maxima), else it makes its event's
    maximum NaN (the training metrics' ``event_max``, as ``np.maximum`` does).
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(n, np.nan)
    np.fmax.at(out, index, values)
    if not skip_nan:
        out[any_per_event(np.isnan(values), index, n)] = np.nan
    return out


# What happened to each event under one alarm logic, in the order a reviewer reads them: the errors first.
MISSED = "missed seizure"
MISSED_NO_WINDOW = "missed seizure (no window)"
FALSE_ALARM = "false alarm"
DETECTED = "detected seizure"
NO_ALARM = "no alarm"
NO_WINDOW = "no window"
OUTCOMES = (MISSED, MISSED_NO_WINDOW, FALSE_ALARM, DETECTED, NO_ALARM, NO_WINDOW)


def outcomes(seizure: np.ndarray, detected: np.ndarray, n_windows: np.ndarray) -> np.ndarray:
    """Each event's outcome (one of ``OUTCOMES``): a seizure event too short for a window is a miss
    (sensitivity counts it), listed apart because no threshold could have detected it."""
    seizure, detected = np.asarray(seizure, dtype=bool), np.asarray(detected, dtype=bool)
    windowed = np.asarray(n_windows) > 0
    return np.select([seizure & ~windowed, seizure & ~detected, seizure, ~windowed, detected],
                     [MISSED_NO_WINDOW, MISSED, DETECTED, NO_WINDOW, FALSE_ALARM], NO_ALARM).astype(object)


def outcome_order(outcome: np.ndarray, max_p: np.ndarray, alarms: np.ndarray) -> np.ndarray:
    """Event positions ordered by outcome (``OUTCOMES``: misses and false alarms first); within an
    outcome, misses by lowest max p (the worst first), everything else by most alarms, then highest max p;
    ties keep the events' order."""
    rank = np.array([OUTCOMES.index(o) for o in outcome], dtype=np.int64)
    score = np.nan_to_num(np.asarray(max_p, dtype=np.float64), nan=-1.0)
    missed = np.isin(outcome, (MISSED, MISSED_NO_WINDOW))
    key_p = np.where(missed, score, -score)
    key_alarms = np.where(missed, 0, -np.asarray(alarms, dtype=np.int64))
    return np.lexsort((key_p, key_alarms, rank))


def event_auc(p: np.ndarray, window_event: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of each event's highest window probability, seizure events against the others: how well
    a model ranks events whatever the threshold. None when either class has no event with a window."""
    mx = max_per_event(p, window_event, len(labels))
    ok = np.isfinite(mx)
    y = np.asarray(labels)[ok] == 1
    if y.all() or not y.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, mx[ok]))
