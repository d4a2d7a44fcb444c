"""The one event bootstrap: seeded resamples of events, and percentile intervals of what they give.

Windows of one event are strongly correlated, so the unit of resampling is the event. A draw counts
how often each event appears in a resample of the same size, drawn with replacement as
``numpy.random.default_rng(seed).multinomial``; a figure recomputed from those counts per draw gives
the interval from the ``(1 - level) / 2`` to the ``(1 + level) / 2`` percentile of its finite values.

The rule is explicit (``Rule``), and each caller states its own:

- ``within_class=True``: seizure events and non-seizure events are resampled separately (seizure
  events first, from the same generator), so every resample keeps the data's class counts.
  ``deepepi evaluate`` uses it (1,000 draws by default, ``--bootstrap``) for event sensitivity and
  FP/24 h (``intervals``).
- ``within_class=False``: all events are resampled together, across classes. ``deepepi verify
  --mode trained`` uses it (2,000 draws, ``verify.stats``) for paired A - B differences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deepepi.scoring.events import EventFigures, hours

LEVEL = 0.95


@dataclass(frozen=True)
class Rule:
    """How to resample: ``draws`` resamples, within each class or across classes, at ``level``."""

    draws: int
    within_class: bool
    level: float = LEVEL

    @property
    def method(self) -> str:
        return "events resampled with replacement " + ("within each class" if self.within_class
                                                       else "across classes")


def resample_weights(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """[draws, n] bootstrap counts: how often each of ``n`` events appears in each resample."""
    if n == 0:
        return np.zeros((draws, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=draws).astype(np.float64)


def event_weights(rule: Rule, seizure: np.ndarray, *, seed: int) -> np.ndarray:
    """[draws, events] resample counts for events whose class is ``seizure`` (bool per event)."""
    rng = np.random.default_rng(seed)
    seizure = np.asarray(seizure, dtype=bool)
    if not rule.within_class:
        return resample_weights(rng, len(seizure), rule.draws)
    weights = np.zeros((rule.draws, len(seizure)))
    weights[:, seizure] = resample_weights(rng, int(seizure.sum()), rule.draws)
    weights[:, ~seizure] = resample_weights(rng, int((~seizure).sum()), rule.draws)
    return weights


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> list[float] | None:
    """[low, high] percentiles of the finite ``values`` (``level`` in the middle); None when none are finite."""
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    return [float(np.percentile(values, lo)), float(np.percentile(values, hi))]


def intervals(labels: np.ndarray, figs: EventFigures, hop_s: float, *, seed: int, rule: Rule) -> dict[str, Any]:
    """Intervals of event sensitivity and FP/24 h (false alarms per non-seizure recording time)."""
    seizure = labels == 1
    w = event_weights(rule, seizure, seed=seed)
    w_s, w_n = w[:, seizure], w[:, ~seizure]
    det = figs.detected[seizure].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sens = (w_s @ det) / w_s.sum(axis=1) if len(det) else np.array([])
        fa_hours = hours(figs.n_windows[~seizure], hop_s)
        far = (w_n @ figs.alarms[~seizure].astype(np.float64)) / (w_n @ fa_hours) * 24.0 \
            if (~seizure).any() else np.array([])
    return {"method": rule.method, "resamples": rule.draws, "seed": seed, "level": rule.level,
            "sensitivity": percentile_interval(sens, rule.level),
            "fp_per_24h": percentile_interval(far, rule.level)}
