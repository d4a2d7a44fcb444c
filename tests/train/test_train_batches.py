"""The shared batch-index stream (framework-free): same seed, same batches, same order, every time."""

from __future__ import annotations

import numpy as np
import pytest

from deepepi.train.batches import BatchStream


def test_same_seed_same_batches_and_epochs_differ() -> None:
    a, b = BatchStream(1000, 64, seed=7), BatchStream(1000, 64, seed=7)
    for epoch in range(3):
        assert all(np.array_equal(x, y) for x, y in zip(a.batches(epoch), b.batches(epoch), strict=True))
    assert not np.array_equal(a.order(0), a.order(1))
    assert not np.array_equal(a.order(0), BatchStream(1000, 64, seed=8).order(0))


def test_each_epoch_is_a_permutation_with_partial_last_batch() -> None:
    s = BatchStream(1000, 64, seed=0)
    batches = s.batches(4)
    assert [len(b) for b in batches] == [64] * 15 + [40]
    assert s.steps_per_epoch == 16
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))


def test_lone_last_sample_is_dropped() -> None:
    s = BatchStream(129, 64, seed=3)
    assert s.usable == 128 and s.steps_per_epoch == 2
    order = s.order(0)
    assert len(order) == 128 and len(set(order.tolist())) == 128


def test_epoch_order_does_not_depend_on_history() -> None:
    """A resumed run (starting at epoch 5) gets the batches an uninterrupted run gets there."""
    fresh = BatchStream(300, 32, seed=11).order(5)
    used = BatchStream(300, 32, seed=11)
    for epoch in range(5):
        used.order(epoch)
    assert np.array_equal(used.order(5), fresh)


@pytest.mark.parametrize("start,stop", [(0, 1), (3, 25), (10, 20), (9, 10)])
def test_steps_span_epochs_in_order(start: int, stop: int) -> None:
    s = BatchStream(100, 32, seed=1)  # 4 steps per epoch (32, 32, 32, 4)
    every = [b for epoch in range(7) for b in s.batches(epoch)]
    got = list(s.steps(start, stop))
    assert len(got) == stop - start
    assert all(np.array_equal(x, y) for x, y in zip(got, every[start:stop], strict=True))


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        BatchStream(0, 64, seed=0)
