"""Class-balanced batch indices (``useBalancedBatches``), numpy only, the same for both trainers.

Reference semantics (nnTraining2, PyTorch): every window weighs 1 / (count of its class) in a
WeightedRandomSampler with replacement, num_samples = len(train), batches of batchSize with
drop_last. So each draw is independent, picks each present class with probability 1/K and then a
window of that class uniformly: batches are balanced in expectation (binomial counts per batch),
minority windows repeat and some majority windows go unseen in a pass. One pass is
floor(N / batchSize) steps (at least one: a training set smaller than a batch gives one batch of
N draws, where the reference divides by zero).

Draws for pass ``epoch`` come from ``default_rng([seed, epoch, STREAM])``, so like the plain
stream they depend only on the seed and the pass index (resume-safe), never on a framework RNG.
Deviation: the reference applies balanced batches only when useLrSchedule is also on and only in
PyTorch; here the key acts on its own, in both frameworks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

STREAM = 1  # keeps these draws apart from the plain stream's default_rng([seed, epoch])


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
class BalancedStream:
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
        rng = np.random.default_rng([int(self.seed), int(epoch), STREAM])
        return balanced_draw(self.labels, self.usable, rng)

    def batches(self, epoch: int) -> list[np.ndarray]:
        order = self.order(epoch)
        size = min(self.batch_size, self.n)
        return [order[i:i + size] for i in range(0, len(order), size)]

    def steps(self, start: int, stop: int) -> Iterator[np.ndarray]:
        """The batches of global optimisation steps ``start`` .. ``stop - 1`` (0-based, across passes)."""
        per_epoch = self.steps_per_epoch
        for epoch in range(start // per_epoch, -(-stop // per_epoch)):
            first = epoch * per_epoch
            for i, batch in enumerate(self.batches(epoch)):
                if start <= first + i < stop:
                    yield batch


__all__ = ["BalancedStream", "balanced_draw"]
