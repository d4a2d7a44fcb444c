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
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np


def usable_samples(n: int, batch_size: int) -> int:
    """Samples used per epoch: a lone last sample is dropped, since BatchNorm cannot train on one."""
    return n - 1 if n > 1 and n % batch_size == 1 else n


class _Passes:
    """``steps`` for a stream of passes; the stream provides ``steps_per_epoch`` and ``batches(epoch)``."""

    def steps(self, start: int, stop: int) -> Iterator[np.ndarray]:
        """The batches of global optimisation steps ``start`` .. ``stop - 1`` (0-based, across epochs)."""
        per_epoch = self.steps_per_epoch
        for epoch in range(start // per_epoch, -(-stop // per_epoch)):
            first = epoch * per_epoch
            for i, batch in enumerate(self.batches(epoch)):
                if start <= first + i < stop:
                    yield batch


@dataclass(frozen=True)
class BatchStream(_Passes):
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


# ----- balanced mode (useBalancedBatches) -------------------------------------------------------
# Reference semantics (nnTraining2, PyTorch): every window weighs 1 / (count of its class) in a
# WeightedRandomSampler with replacement, num_samples = len(train), batches of batchSize with
# drop_last. So each draw is independent, picks each present class with probability 1/K and then a
# window of that class uniformly: batches are balanced in expectation (binomial counts per batch),
# minority windows repeat and some majority windows go unseen in a pass. One pass is
# floor(N / batchSize) steps (at least one: a training set smaller than a batch gives one batch of
# N draws, where the reference divides by zero). Pass ``epoch`` draws from
# ``default_rng([seed, epoch, BALANCED_STREAM])``: like the plain stream, resume-safe and
# framework-free. Deviation: the reference applies balanced batches only when useLrSchedule is also
# on and only in PyTorch; here the key acts on its own, in both frameworks.

BALANCED_STREAM = 1  # keeps these draws apart from the plain stream's default_rng([seed, epoch])


def balanced_draw(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` i.i.d. indices: a class uniformly among those present, then a member uniformly."""
    classes, inverse = np.unique(np.asarray(labels), return_inverse=True)
    if len(classes) == 0:
        raise ValueError("balanced batches need at least one training sample")
    pick = rng.integers(len(classes), size=size)
    out = np.empty(size, dtype=np.int64)
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        chosen = pick == k
        out[chosen] = members[rng.integers(len(members), size=int(chosen.sum()))]
    return out


@dataclass(frozen=True, eq=False)
class BalancedStream(_Passes):
    """Balanced batch indices into ``labels``; ``epoch`` is the 0-based pass index."""

    labels: np.ndarray
    batch_size: int
    seed: int
    n: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", int(len(self.labels)))
        if self.n < 1 or self.batch_size < 1:
            raise ValueError(f"BalancedStream needs samples and batch_size >= 1, got {self.n}, {self.batch_size}")

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.n // self.batch_size)

    @property
    def usable(self) -> int:
        """Draws per pass."""
        return self.steps_per_epoch * min(self.batch_size, self.n)

    def order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([int(self.seed), int(epoch), BALANCED_STREAM])
        return balanced_draw(self.labels, self.usable, rng)

    def batches(self, epoch: int) -> list[np.ndarray]:
        order = self.order(epoch)
        size = min(self.batch_size, self.n)
        return [order[i:i + size] for i in range(0, len(order), size)]
