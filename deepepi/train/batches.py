"""The one seeded batch-index stream both trainers consume (numpy only, no framework).

Same seed -> same samples, same batches, same order in TensorFlow and PyTorch: each epoch's order is
a numpy permutation drawn from ``default_rng([seed, epoch])``, so it depends only on the seed and the
epoch index, never on a framework RNG or on how many epochs ran before (a resumed run sees the
batches an uninterrupted one would). Batches are consecutive slices of that order; the last batch
may be partial (both frameworks train on it, with the loss averaged over its own samples), except
that a lone last sample is dropped because BatchNorm cannot train on one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np


def usable_samples(n: int, batch_size: int) -> int:
    """Samples used per epoch: a lone last sample is dropped, since BatchNorm cannot train on one."""
    return n - 1 if n > 1 and n % batch_size == 1 else n


@dataclass(frozen=True)
class BatchStream:
    """Batch indices into a training set of ``n`` samples; ``epoch`` is 0-based (epochs completed)."""

    n: int
    batch_size: int
    seed: int

    def __post_init__(self) -> None:
        if self.n < 1 or self.batch_size < 1:
            raise ValueError(f"BatchStream needs n >= 1 and batch_size >= 1, got {self.n}, {self.batch_size}")

    @property
    def usable(self) -> int:
        return usable_samples(self.n, self.batch_size)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.usable / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The ``usable`` sample indices of one epoch, in training order (int64)."""
        rng = np.random.default_rng([int(self.seed), int(epoch)])
        return rng.permutation(self.n)[:self.usable].astype(np.int64, copy=False)

    def batches(self, epoch: int) -> list[np.ndarray]:
        """One epoch's batches: consecutive ``batch_size`` slices of ``order(epoch)``."""
        order = self.order(epoch)
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def steps(self, start: int, stop: int) -> Iterator[np.ndarray]:
        """The batches of global optimisation steps ``start`` .. ``stop - 1`` (0-based, across epochs)."""
        per_epoch = self.steps_per_epoch
        for epoch in range(start // per_epoch, -(-stop // per_epoch)):
            first = epoch * per_epoch
            for i, batch in enumerate(self.batches(epoch)):
                if start <= first + i < stop:
                    yield batch
