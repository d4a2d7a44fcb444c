"""The training plan both trainers follow: batch stream, and which global steps each evaluation covers.

Epoch mode (``useLrSchedule`` false): ``epochs`` evaluation periods, one pass of the stream each.
Step mode (``useLrSchedule`` true, as the reference's PyTorch trainer): ``totalTrainingSteps``
optimisation steps over as many passes as needed (a pass may be cut mid-way), with a validation
every ``evalEverySteps`` steps and after the last step. Deviations from the reference, on purpose:
the reference reads evalEverySteps but validates once per pass, has no early stopping in step mode
and has no step mode in TensorFlow; here evalEverySteps is honoured, early stopping
(``earlyStoppingPatience`` evaluations without a lower val_loss) applies in both modes, and both
frameworks follow the same plan. History records count evaluations in ``epoch`` (1-based).

The stream is ``batches.BatchStream`` (shuffled passes) or, with ``useBalancedBatches``,
``batches.BalancedStream`` (the reference applies it only with useLrSchedule and only in PyTorch;
here it acts on its own, in both frameworks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from deepepi.train.batches import BalancedStream, BatchStream

Stream = Union[BatchStream, BalancedStream]


@dataclass(frozen=True, eq=False)
class Plan:
    stream: Stream
    step_mode: bool
    total_steps: int
    every: int

    @classmethod
    def from_config(cls, model: dict[str, Any], labels: np.ndarray, seed: int) -> "Plan":
        batch = int(model["batchSize"])
        stream: Stream = (BalancedStream(np.asarray(labels), batch, seed) if model["useBalancedBatches"]
                          else BatchStream(len(labels), batch, seed))
        if model["useLrSchedule"]:
            return cls(stream, True, int(model["totalTrainingSteps"]), int(model["evalEverySteps"]))
        per_pass = stream.steps_per_epoch
        return cls(stream, False, int(model["epochs"]) * per_pass, per_pass)

    @property
    def periods(self) -> int:
        """Evaluations in the whole run."""
        return math.ceil(self.total_steps / self.every)

    def bounds(self, period: int) -> tuple[int, int]:
        """Global steps [start, stop) of evaluation period ``period`` (0-based)."""
        start = period * self.every
        return start, min(start + self.every, self.total_steps)

    def batches(self, period: int) -> list[np.ndarray]:
        return list(self.stream.steps(*self.bounds(period)))

    def describe(self) -> str:
        kind = "balanced batches" if isinstance(self.stream, BalancedStream) else "shuffled batches"
        if self.step_mode:
            return (f"step mode: {self.total_steps} steps, validation every {self.every} steps "
                    f"({self.periods} evaluations), {kind}")
        return f"epoch mode: {self.periods} epochs of {self.every} steps, {kind}"


__all__ = ["Plan", "Stream"]
