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

A percentile interval collapses when every resample gives the same value (all seizures detected:
"1.000 to 1.000"; no false alarm: "0 to 0"; a single event of the class). ``intervals`` then falls
back to a closed-form interval and names it: the Wilson score interval for the proportions
(sensitivity, false-alarm ratio; 18/18 gives 0.824 to 1.000) and the exact Poisson (Garwood)
interval for false alarms per 24 h over the non-seizure hours. The median latency (non-negative
latencies only, see ``events.NEGATIVE_LATENCY``) gets a percentile interval from the same draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
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


PERCENTILE = "bootstrap percentile"


def wilson(k: int, n: int, level: float = LEVEL) -> list[float] | None:
    """Wilson score interval of the proportion ``k / n``; None for ``n == 0``. Unlike the bootstrap it
    keeps a width at 0/n and n/n: 18/18 at 95 % gives [0.824, 1.0]."""
    if n <= 0:
        return None
    z = NormalDist().inv_cdf((1 + level) / 2)
    p, z2 = k / n, z * z
    centre, half = p + z2 / (2 * n), z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return [max(0.0, (centre - half) / (1 + z2 / n)), min(1.0, (centre + half) / (1 + z2 / n))]


def _poisson_cdf(k: int, mu: float) -> float:
    """P(X <= k) for X ~ Poisson(mu), summed in log space (no overflow for large k or mu)."""
    if mu <= 0:
        return 1.0
    i = np.arange(k + 1)
    logs = -mu + i * math.log(mu) - np.array([math.lgamma(j + 1) for j in i])
    top = logs.max()
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def _solve_mu(k: int, target: float) -> float:
    """The mean mu with P(X <= k; mu) = target (decreasing in mu), by bisection."""
    lo, hi = 0.0, k + 20.0 + 20.0 * math.sqrt(k + 1)
    for _ in range(200):
        mid = (lo + hi) / 2
        if _poisson_cdf(k, mid) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def poisson_rate(k: int, hours_: float, level: float = LEVEL) -> list[float] | None:
    """Exact (Garwood) interval of a rate per 24 h from ``k`` counts in ``hours_`` hours; None for no time.
    0 false alarms in 24 h gives [0, 3.689] per 24 h."""
    if hours_ <= 0:
        return None
    a = 1 - level
    lo = 0.0 if k == 0 else _solve_mu(k - 1, 1 - a / 2)
    return [lo * 24.0 / hours_, _solve_mu(k, a / 2) * 24.0 / hours_]


def _degenerate(ci: list[float] | None) -> bool:
    return ci is None or ci[1] - ci[0] <= 1e-12


def _or_fallback(ci: list[float] | None, fallback: list[float] | None, name: str) -> tuple[list[float] | None, str]:
    """``ci`` unless it collapsed (or is missing) and ``fallback`` exists; with the method used, named."""
    if not _degenerate(ci) or fallback is None:
        return ci, PERCENTILE
    what = "no finite resample" if ci is None else f"every resample gave {ci[0]:.3f}"
    return fallback, f"{name} (the bootstrap was degenerate: {what})"


def weighted_medians(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row of ``weights`` [draws, n], the median of ``values`` [n] repeated by those counts (as
    ``np.median`` of the expanded sample); NaN where a row's weights sum to 0."""
    if values.size == 0:
        return np.full(len(weights), np.nan)
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(weights[:, order], axis=1)
    half = cum[:, -1:] / 2
    lower = np.minimum((cum < half).sum(axis=1), len(v) - 1)
    upper = np.minimum((cum <= half).sum(axis=1), len(v) - 1)
    med = (v[lower] + v[upper]) / 2
    return np.where(cum[:, -1] > 0, med, np.nan)


def intervals(labels: np.ndarray, figs: EventFigures, hop_s: float, *, seed: int, rule: Rule) -> dict[str, Any]:
    """Intervals of event sensitivity, false-alarm ratio, FP/24 h (false alarms per non-seizure recording
    time) and median latency, each with the method that gave it (``interval_methods``)."""
    seizure = labels == 1
    w = event_weights(rule, seizure, seed=seed)
    w_s, w_n = w[:, seizure], w[:, ~seizure]
    det = figs.detected[seizure].astype(np.float64)
    fa_hours = hours(figs.n_windows[~seizure], hop_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        sens = (w_s @ det) / w_s.sum(axis=1) if len(det) else np.array([])
        far = (w_n @ figs.alarms[~seizure].astype(np.float64)) / (w_n @ fa_hours) * 24.0 \
            if (~seizure).any() else np.array([])
        fa_ratio = (w_n @ figs.detected[~seizure].astype(np.float64)) / w_n.sum(axis=1) \
            if (~seizure).any() else np.array([])
    lat = figs.latency[seizure]
    timed = figs.detected[seizure] & np.isfinite(lat) & (lat >= 0)
    medians = weighted_medians(lat[timed], w_s[:, timed])
    n_s, n_n = int(seizure.sum()), int((~seizure).sum())
    out: dict[str, Any] = {"method": rule.method, "resamples": rule.draws, "seed": seed, "level": rule.level}
    methods: dict[str, str] = {}
    out["sensitivity"], methods["sensitivity"] = _or_fallback(
        percentile_interval(sens, rule.level), wilson(int(det.sum()), n_s, rule.level), "Wilson score interval")
    out["false_alarm_ratio"], methods["false_alarm_ratio"] = _or_fallback(
        percentile_interval(fa_ratio, rule.level),
        wilson(int(figs.detected[~seizure].sum()), n_n, rule.level), "Wilson score interval")
    out["fp_per_24h"], methods["fp_per_24h"] = _or_fallback(
        percentile_interval(far, rule.level),
        poisson_rate(int(figs.alarms[~seizure].sum()), float(fa_hours.sum()), rule.level),
        "exact Poisson (Garwood) interval over the non-seizure hours")
    n_timed = int(timed.sum())
    ci = percentile_interval(medians, rule.level) if n_timed > 1 else None
    out["latency_median_s"] = ci
    methods["latency_median_s"] = (
        f"{PERCENTILE} of the median of the {n_timed} non-negative latencies"
        + (" (every resample gave the same median: the latencies share one value)" if ci and _degenerate(ci) else "")
        if n_timed > 1 else f"none: {n_timed} non-negative latenc{'y' if n_timed == 1 else 'ies'}, an interval needs 2")
    out["interval_methods"] = methods
    return out
