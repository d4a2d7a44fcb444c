"""Best-checkpoint selection shared by both trainers: a score per epoch, gated by the config.

modelSelectionMetric ``val_loss`` scores an epoch by its validation loss, ``min_fpr`` by its
validation false-alarm ratio. An epoch is eligible only when val_sensitivity >=
saveBestMinSensitivity and val_far <= saveBestMaxFpr; an ineligible epoch scores +inf. The best
epoch is the first with the strictly lowest score (Keras's ModelCheckpoint compares the same way
on the same score, so both frameworks pick the same epoch from the same history).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

INELIGIBLE = math.inf


@dataclass
class Selector:
    metric: str = "val_loss"
    min_sensitivity: float = 0.0
    max_far: float = 1.0
    best_score: float = INELIGIBLE
    best_epoch: int | None = None

    @classmethod
    def from_model_config(cls, model: dict[str, Any]) -> "Selector":
        return cls(metric=str(model["modelSelectionMetric"]),
                   min_sensitivity=float(model["saveBestMinSensitivity"]),
                   max_far=float(model["saveBestMaxFpr"]))

    def eligible(self, record: dict[str, Any]) -> bool:
        sens, far = record["val_sensitivity"], record["val_far"]
        sens_ok = self.min_sensitivity <= 0.0 or (sens is not None and sens >= self.min_sensitivity)
        far_ok = self.max_far >= 1.0 or (far is not None and far <= self.max_far)
        return sens_ok and far_ok

    def score(self, record: dict[str, Any]) -> float:
        """The figure to minimise for this epoch's history record; +inf when not eligible."""
        if not self.eligible(record):
            return INELIGIBLE
        value = record["val_loss"] if self.metric == "val_loss" else record["val_far"]
        return INELIGIBLE if value is None else float(value)

    def update(self, record: dict[str, Any]) -> bool:
        """Consider one epoch; True when it becomes the new best."""
        score = self.score(record)
        if score < self.best_score:
            self.best_score, self.best_epoch = score, int(record["epoch"])
            return True
        return False

    def state(self) -> dict[str, Any]:
        """Primitives only (JSON-safe: +inf is stored as None) for resume checkpoints."""
        state = asdict(self)
        if math.isinf(self.best_score):
            state["best_score"] = None
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Selector":
        state = dict(state)
        if state["best_score"] is None:
            state["best_score"] = INELIGIBLE
        return cls(**state)

    def describe(self) -> str:
        return (f"best epoch by {self.metric} with val_sensitivity >= {self.min_sensitivity} "
                f"and val_far <= {self.max_far}")


@dataclass
class EarlyStop:
    """Stop after ``patience`` epochs without a lower val_loss, counted as Keras's EarlyStopping does.

    The PyTorch trainer uses this; the Keras trainer uses keras.callbacks.EarlyStopping, whose
    default comparison (min_delta 0, strictly lower) this mirrors.
    """

    patience: int
    best: float | None = None
    wait: int = 0

    def update(self, value: float) -> bool:
        """Record one epoch's val_loss; True when training should stop."""
        self.wait += 1
        if self.best is None or value < self.best:
            self.best, self.wait = float(value), 0
            return False
        return self.wait >= self.patience

    def state(self) -> dict[str, Any]:
        return asdict(self)
