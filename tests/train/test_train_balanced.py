"""Balanced batches: measured class ratio per batch and per pass against the reference sampler's law."""

from __future__ import annotations

import numpy as np
import pytest

from deepepi.train.batches import BalancedStream, balanced_draw


def _labels(n0: int, n1: int) -> np.ndarray:
    y = np.r_[np.zeros(n0, dtype=np.int64), np.ones(n1, dtype=np.int64)]
    return np.random.default_rng(0).permutation(y)


def test_pass_shape_follows_drop_last() -> None:
    s = BalancedStream(_labels(9000, 1000), batch_size=64, seed=1)
    assert s.steps_per_epoch == 10000 // 64
    batches = s.batches(0)
    assert len(batches) == 156 and all(len(b) == 64 for b in batches)
    tiny = BalancedStream(_labels(5, 3), batch_size=64, seed=1)
    assert [len(b) for b in tiny.batches(0)] == [8]


def test_class_ratio_per_batch_is_binomial_half() -> None:
    """Each draw is seizure with p = 1/2 whatever the imbalance (9:1 here): the pass's share is 0.5
    within 4 sigma, and the per-batch seizure counts have the binomial(64, 1/2) mean and variance."""
    y = _labels(9000, 1000)
    s = BalancedStream(y, batch_size=64, seed=3)
    counts = np.array([y[b].sum() for epoch in range(4) for b in s.batches(epoch)])
    draws = 64 * len(counts)
    share = counts.sum() / draws
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / draws)
    assert abs(counts.mean() - 32) < 4 * np.sqrt(16 / len(counts))
    assert counts.var(ddof=1) == pytest.approx(16.0, rel=0.25)
    plain_share = y.mean()
    assert plain_share == pytest.approx(0.1)  # what an unweighted shuffle would give


def test_within_class_draws_are_uniform_with_replacement() -> None:
    y = _labels(900, 100)
    s = BalancedStream(y, batch_size=100, seed=5)
    drawn = np.concatenate([s.order(e) for e in range(20)])
    minority = drawn[y[drawn] == 1]
    hits = np.bincount(minority, minlength=len(y))[y == 1]
    expected = len(minority) / 100
    assert hits.min() > 0 and abs(hits.mean() - expected) < 1e-9
    assert ((hits - expected) ** 2 / expected).sum() < 100 + 4 * np.sqrt(200)  # chi-square, 99 dof
    assert len(np.unique(s.order(0))) < len(y)  # with replacement: repeats within a pass


def test_same_seed_same_batches_and_steps_cross_passes() -> None:
    y = _labels(300, 40)
    a, b = BalancedStream(y, 32, seed=7), BalancedStream(y, 32, seed=7)
    for epoch in range(3):
        for x, z in zip(a.batches(epoch), b.batches(epoch)):
            np.testing.assert_array_equal(x, z)
    assert not np.array_equal(a.order(0), BalancedStream(y, 32, seed=8).order(0))
    flat = [batch for epoch in range(3) for batch in a.batches(epoch)]
    per = a.steps_per_epoch
    window = list(a.steps(per - 2, per + 3))
    assert len(window) == 5
    for x, z in zip(window, flat[per - 2:per + 3]):
        np.testing.assert_array_equal(x, z)


def test_single_class_and_empty() -> None:
    rng = np.random.default_rng(0)
    assert set(balanced_draw(np.ones(10), 50, rng).tolist()) <= set(range(10))
    with pytest.raises(ValueError):
        balanced_draw(np.zeros(0), 5, rng)
