"""Keras's Adam/AdamW update rule as a PyTorch optimiser, so both frameworks take the same step.

torch.optim.Adam adds epsilon to sqrt(v_hat) (after bias correction); Keras adds it to sqrt(v) and
folds the bias corrections into the step size. The two differ most for weights whose gradients are
tiny, which is where lockstep runs drifted apart. This class follows Keras line by line:

    w -= w * weight_decay * lr                      (AdamW only, before the update)
    m += (g - m) * (1 - beta_1);  v += (g*g - v) * (1 - beta_2)
    w -= m * lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) / (sqrt(v) + epsilon)
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import torch

from deepepi.train.optim import AdamSettings


class KerasAdam(torch.optim.Optimizer):
    """Adam (``weight_decay=None``) or AdamW with Keras's update; state: step, m, v per parameter."""

    def __init__(self, params: Iterable[Any], settings: AdamSettings) -> None:
        defaults = {"lr": settings.lr, "beta_1": settings.beta_1, "beta_2": settings.beta_2,
                    "epsilon": settings.epsilon, "weight_decay": settings.weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2, eps, wd = group["beta_1"], group["beta_2"], group["epsilon"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["v"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                # Keras computes the step size in the variable's dtype, so do we. Its betas (in the
                # powers) and weight decay reach that dtype through a float32 tensor (ops.cast of a
                # Python float), so 0.999 is 0.99900001 there even for float64 variables: a 6e-6
                # relative step-size gap that float64 lockstep runs showed from the first step.
                f = np.float64 if p.dtype == torch.float64 else np.float32
                t, lr = f(state["step"]), f(group["lr"])
                beta1, beta2 = f(np.float32(b1)), f(np.float32(b2))
                alpha = float(lr * np.sqrt(f(1) - beta2 ** t) / (f(1) - beta1 ** t))
                if wd:
                    p.sub_(p * float(f(np.float32(wd))) * float(lr))
                g, m, v = p.grad, state["m"], state["v"]
                m.add_((g - m) * (1 - b1))
                v.add_((g * g - v) * (1 - b2))
                p.sub_((m * alpha) / (v.sqrt() + eps))
        return loss
