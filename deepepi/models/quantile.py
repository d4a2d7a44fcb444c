"""Harrell-Davis quantile: the smooth aggregate of window scores used to tune sensitivity after training.

The estimate is a weighted sum of the sorted scores, the weights being increments of a Beta((n+1)q,
(n+1)(1-q)) CDF at i/n. Vectorised over all other axes; equals scipy.stats.mstats.hdquantiles.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta

from deepepi.core.errors import DataError, SpecError


def harrell_davis(scores: np.ndarray, q: float | np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Harrell-Davis estimate of quantile(s) ``q`` (0 < q < 1) of ``scores`` along ``axis``.

    Scalar ``q`` removes ``axis``; an array of q puts its shape first. Scores must be finite and
    non-empty along ``axis`` (DataError); q outside (0, 1) is a SpecError.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 0:
        raise DataError("harrell_davis: scores must be an array, got a scalar")
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    if n == 0 or x.size == 0:
        raise DataError(f"harrell_davis: no scores (shape {np.shape(scores)} along axis {axis})")
    if not np.all(np.isfinite(x)):
        raise DataError("harrell_davis: scores contain NaN or infinity")
    qs = np.asarray(q, dtype=np.float64)
    if not np.all((qs > 0) & (qs < 1)):
        raise SpecError(f"harrell_davis: q must satisfy 0 < q < 1, got {q!r}")
    grid = np.arange(n + 1, dtype=np.float64) / n
    a = (n + 1) * qs[..., None]
    cdf = beta.cdf(grid, a, (n + 1) - a)
    w = np.diff(cdf, axis=-1)  # q.shape + (n,)
    out = np.tensordot(w, np.sort(x, axis=-1), axes=([-1], [-1]))  # q.shape + other axes
    return float(out) if out.ndim == 0 else out
