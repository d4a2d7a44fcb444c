"""The reference's three-phase learning-rate schedule, one function used by both trainers.

Per optimisation step: linear warm-up lrStart -> lrPeak over warmupSteps, cosine decay
lrPeak -> lrMainEnd over mainSteps, linear cool-down lrMainEnd -> 0 over cooldownSteps, then 0.
When useLrSchedule is on, ReduceLROnPlateau is off in both frameworks (the schedule owns the rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ThreePhase:
    lr_start: float
    lr_peak: float
    lr_main_end: float
    warmup_steps: int
    main_steps: int
    cooldown_steps: int

    @classmethod
    def from_model_config(cls, model: dict[str, Any]) -> "ThreePhase":
        return cls(lr_start=float(model["lrStart"]), lr_peak=float(model["lrPeak"]),
                   lr_main_end=float(model["lrMainEnd"]), warmup_steps=int(model["warmupSteps"]),
                   main_steps=int(model["mainSteps"]), cooldown_steps=int(model["cooldownSteps"]))

    @property
    def total_steps(self) -> int:
        return self.warmup_steps + self.main_steps + self.cooldown_steps

    def __call__(self, step: int) -> float:
        """Learning rate for the optimisation step with 0-based index ``step``."""
        s = int(step)
        if s < self.warmup_steps:
            return self.lr_start + (self.lr_peak - self.lr_start) * s / self.warmup_steps
        s -= self.warmup_steps
        if s < self.main_steps:
            cos = 0.5 * (1.0 + math.cos(math.pi * s / self.main_steps))
            return self.lr_main_end + (self.lr_peak - self.lr_main_end) * cos
        s -= self.main_steps
        if s < self.cooldown_steps:
            return self.lr_main_end * (1.0 - s / self.cooldown_steps)
        return 0.0
