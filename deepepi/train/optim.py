"""The optimiser both trainers build, as framework-free settings: one place for every constant.

Adam and AdamW follow Keras's definitions in both frameworks (see torch_optim for PyTorch):
epsilon 1e-7 added to sqrt(v) ("epsilon hat"), and AdamW's decoupled weight decay
``w -= w * weight_decay * lr`` applied before the Adam update, to every trainable variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ADAM_EPSILON = 1e-7  # Keras's default; PyTorch's own default (1e-8, added after bias correction) differs
DEFAULT_BETAS = (0.9, 0.999)  # plain Adam ignores adamwBeta1/adamwBeta2, as the reference does


@dataclass(frozen=True)
class AdamSettings:
    lr: float
    beta_1: float
    beta_2: float
    epsilon: float
    weight_decay: float | None  # None: plain Adam

    @classmethod
    def from_model_config(cls, m: dict[str, Any]) -> "AdamSettings":
        if m["useAdamW"]:
            return cls(lr=float(m["lrStart"]), beta_1=float(m["adamwBeta1"]), beta_2=float(m["adamwBeta2"]),
                       epsilon=ADAM_EPSILON, weight_decay=float(m["weightDecay"]))
        return cls(lr=float(m["lrStart"]), beta_1=DEFAULT_BETAS[0], beta_2=DEFAULT_BETAS[1],
                   epsilon=ADAM_EPSILON, weight_decay=None)

    @property
    def name(self) -> str:
        return "Adam" if self.weight_decay is None else "AdamW"
