"""Seeded bootstrap 95% CIs by event for event sensitivity and FP/24 h.

Events are resampled with replacement within each class (seizure / non-seizure), so every
resample keeps the data's class counts; ``resamples`` draws from ``numpy.random.default_rng(seed)``.
The interval is the 2.5th-97.5th percentile of the resampled figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepepi.scoring.events import EventFigures, hours
from deepepi.verify.stats import resample_weights

RESAMPLES = 1000
LEVEL = 0.95


def intervals(labels: np.ndarray, figs: EventFigures, hop_s: float, *, seed: int,
              resamples: int = RESAMPLES) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    seizure = labels == 1
    det = figs.detected[seizure].astype(np.float64)
    w_s = resample_weights(rng, len(det), resamples)
    w_n = resample_weights(rng, int((~seizure).sum()), resamples)
    lo, hi = 100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2

    def ci(values: np.ndarray) -> list[float] | None:
        values = values[np.isfinite(values)]
        return [float(np.percentile(values, lo)), float(np.percentile(values, hi))] if len(values) else None

    with np.errstate(divide="ignore", invalid="ignore"):
        sens = (w_s @ det) / w_s.sum(axis=1) if len(det) else np.array([])
        fa_hours = hours(figs.n_windows[~seizure], hop_s)
        far = (w_n @ figs.alarms[~seizure].astype(np.float64)) / (w_n @ fa_hours) * 24.0 \
            if (~seizure).any() else np.array([])
    return {"method": "events resampled with replacement within each class", "resamples": resamples,
            "seed": seed, "level": LEVEL, "sensitivity": ci(sens), "fp_per_24h": ci(far)}
