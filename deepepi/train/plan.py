"""The training plan both trainers follow: batch stream, and which global steps each evaluation covers.

Epoch mode (``useLrSchedule`` false): ``epochs`` evaluation periods, one pass of the stream each.
Step mode (``useLrSchedule`` true, as the reference's PyTorch trainer): ``totalTrainingSteps``
optimisation steps over as many passes as needed (a pass may be cut mid-way), with a validation
every ``evalEverySteps`` steps (capped at the total, so every run validates at least once) and after
the last step. ``--epochs N`` in step mode sets the total to N passes of the stream and ``--steps N``
sets it directly (``run.train``, ``Origin`` below says which, for the plan line). Deviations from the reference, on purpose:
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


def make_stream(model: dict[str, Any], labels: np.ndarray, seed: int) -> Stream:
    """The batch stream of ``model`` over the training ``labels`` (balanced or shuffled passes)."""
    batch = int(model["batchSize"])
    return (BalancedStream(np.asarray(labels), batch, seed) if model["useBalancedBatches"]
            else BatchStream(len(labels), batch, seed))


@dataclass(frozen=True)
class Origin:
    """Where a step-mode total came from when a CLI flag set it: ``--epochs N`` (``passes`` = N, of
    ``per_pass`` steps) or ``--steps N`` (``passes`` None); ``config_total`` is the config's own
    totalTrainingSteps. Only the plan line reads it."""

    config_total: int
    passes: int | None = None
    per_pass: int = 0

    def describe(self, total: int) -> str:
        if self.passes is not None:
            passes = f"{self.passes} pass" + ("es" if self.passes != 1 else "")
            return (f"--epochs {self.passes} = {passes} of {self.per_pass:,} steps = {total:,} steps "
                    f"(config totalTrainingSteps {self.config_total:,})")
        return f"--steps {total:,} (config totalTrainingSteps {self.config_total:,})"


@dataclass(frozen=True, eq=False)
class Plan:
    stream: Stream
    step_mode: bool
    total_steps: int
    every: int
    every_config: int = 0  # step mode: evalEverySteps as configured (``every`` is it capped at the total)

    @classmethod
    def from_config(cls, model: dict[str, Any], labels: np.ndarray, seed: int) -> "Plan":
        stream = make_stream(model, labels, seed)
        if model["useLrSchedule"]:
            total, every = int(model["totalTrainingSteps"]), int(model["evalEverySteps"])
            # A capped interval validates after the last step, as the uncapped one did: same periods.
            return cls(stream, True, total, min(every, total), every)
        per_pass = stream.steps_per_epoch
        return cls(stream, False, int(model["epochs"]) * per_pass, per_pass)

    @property
    def unit(self) -> str:
        """What one evaluation period is called on the console: an epoch, or an evaluation in step mode."""
        return "evaluation" if self.step_mode else "epoch"

    def label(self, period: int) -> str:
        """``epoch 3/20``, or in step mode ``evaluation 3/20 (steps 10,001-15,000)``; ``period`` 1-based."""
        head = f"{self.unit} {period}/{self.periods}"
        if not self.step_mode:
            return head
        start, stop = self.bounds(period - 1)
        return f"{head} (steps {start + 1:,}-{stop:,})"

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

    def describe(self, origin: Origin | None = None) -> str:
        """The plan line's text (after ``plan: ``); ``origin`` states a total set by --epochs or --steps."""
        kind = "balanced batches" if isinstance(self.stream, BalancedStream) else "shuffled batches"
        if self.step_mode:
            total = origin.describe(self.total_steps) if origin else f"{self.total_steps} steps"
            evals = f"{self.periods} evaluation" + ("s" if self.periods != 1 else "")
            if self.every < self.every_config:
                evals = f"evalEverySteps {self.every_config:,} capped at the total; {evals}"
            return f"step mode: {total}, validation every {self.every} steps ({evals}), {kind}"
        return f"epoch mode: {self.periods} epochs of {self.every} steps, {kind}"


__all__ = ["Origin", "Plan", "Stream", "make_stream"]
