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
