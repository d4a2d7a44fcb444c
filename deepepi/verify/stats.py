"""Paired statistics for two independently trained models scored on the same labelled windows.

Windows of one event are strongly correlated, so the unit of resampling is the event: the
bootstrap (``deepepi.scoring.bootstrap``, rule ``BOOTSTRAP``: 2,000 draws of all events together,
across classes, since a paired difference needs no class balance) draws events with replacement
and recomputes, for each draw, the difference A - B of
window-level TPR and FPR and of event-level TPR and FPR (an event counts as detected when any of
its windows is positive). McNemar's exact test on the paired window predictions is reported too;
it treats windows as independent, so it overstates significance and is information, not a verdict.

The verdict compares each difference with a margin: how far two training seeds of the same
framework land apart on the same data (``SEED_MARGINS``, measured by bench/seed_spread.py and
recorded in docs/PERFORMANCE.md; `deepepi verify --margin` replaces them). A difference FAILS only when its whole 95 %
interval lies beyond the margin: the frameworks then differ by more than seeds do, and the test
data is large enough to say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from deepepi.scoring.bootstrap import LEVEL, Rule, event_weights, percentile_interval
from deepepi.scoring.per_event import any_per_event, count_per_event, event_index

RATES = ("window_tpr", "window_fpr", "event_tpr", "event_fpr")
CONFIDENCE = LEVEL
BOOTSTRAP_DRAWS = 2000
BOOTSTRAP = Rule(draws=BOOTSTRAP_DRAWS, within_class=False, level=CONFIDENCE)
# Largest |A - B| between two seeds of one framework trained as in the pipeline (bench/seed_spread.py:
# configs/nnConfig_deep.json, 4 epochs with best-epoch selection, the built-in data and the pipeline's
# split; seeds 1-4 of each framework with dropout off, 12 pairs, and of PyTorch with the config's
# dropout, 6 pairs), rounded up to the next 0.05: measured 0.328 / 0.339 / 0.222 (dropout on; 0.056
# off) / 0.402; docs/PERFORMANCE.md "Trained-mode margins".
SEED_MARGINS = {"window_tpr": 0.35, "window_fpr": 0.35, "event_tpr": 0.25, "event_fpr": 0.45}


@dataclass(frozen=True)
class EventTable:
    """Per-event window counts, from which every rate of any bootstrap draw follows by sums."""

    pos: np.ndarray  # seizure windows per event
    neg: np.ndarray  # non-seizure windows per event
    hits: np.ndarray  # [2, events]: positive predictions among the seizure windows, models A and B
    false: np.ndarray  # [2, events]: positive predictions among the non-seizure windows
    seizure: np.ndarray  # event holds seizure windows
    detected: np.ndarray  # [2, events]: any positive window

    @classmethod
    def build(cls, pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray,
              event_id: np.ndarray) -> "EventTable":
        ids, inverse = event_index(event_id)
        n = len(ids)

        def per_event(mask: np.ndarray) -> np.ndarray:
            return count_per_event(mask, inverse, n)

        y = labels == 1
        preds = [np.asarray(p) == 1 for p in (pred_a, pred_b)]
        return cls(pos=per_event(y), neg=per_event(~y),
                   hits=np.stack([per_event(p & y) for p in preds]),
                   false=np.stack([per_event(p & ~y) for p in preds]),
                   seizure=any_per_event(y, inverse, n),
                   detected=np.stack([any_per_event(p, inverse, n) for p in preds]))

    def rates(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Rates of A and B ([2, draws]) for event weights [draws, events] (counts of each event)."""
        w = np.atleast_2d(weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            seiz, non = w @ self.seizure, w @ ~self.seizure
            return {"window_tpr": (self.hits @ w.T) / (w @ self.pos),
                    "window_fpr": (self.false @ w.T) / (w @ self.neg),
                    "event_tpr": ((self.detected & self.seizure) @ w.T) / seiz,
                    "event_fpr": ((self.detected & ~self.seizure) @ w.T) / non}


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, float | int]:
    """Exact McNemar test: windows only A gets right (b) vs only B gets right (c)."""
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"only_a_correct": b, "only_b_correct": c, "p_value": p}


def bootstrap(table: EventTable, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0,
              confidence: float = CONFIDENCE) -> dict[str, dict[str, float | None]]:
    """Observed A, B and A - B per rate, with the percentile interval of A - B over event resamples
    (``BOOTSTRAP``'s rule, all events resampled together; ``draws`` and ``confidence`` as given)."""
    n = len(table.pos)
    observed = table.rates(np.ones(n))
    rule = Rule(draws=draws, within_class=BOOTSTRAP.within_class, level=confidence)
    sampled = table.rates(event_weights(rule, table.seizure, seed=seed))
    out: dict[str, dict[str, float | None]] = {}
    for rate in RATES:
        a, b = float(observed[rate][0, 0]), float(observed[rate][1, 0])
        interval = percentile_interval(sampled[rate][0] - sampled[rate][1], rule.level)
        defined = np.isfinite(a) and np.isfinite(b) and interval is not None
        out[rate] = {"a": a if np.isfinite(a) else None, "b": b if np.isfinite(b) else None,
                     "diff": a - b if defined else None,
                     "low": interval[0] if defined else None,
                     "high": interval[1] if defined else None}
    return out


def beyond_margin(interval: dict[str, float | None], margin: float) -> bool:
    """True when the whole interval of A - B lies outside [-margin, margin]."""
    low, high = interval["low"], interval["high"]
    return low is not None and high is not None and (low > margin or high < -margin)
