"""PyTorch side of lockstep runs: the model, its shared-mask dropout, the trainer's step, float64 readouts.

Used by ``train.lockstep`` (drift) and ``train.prove`` (``deepepi prove-trainers``); normal training
never imports it. The step is the PyTorch trainer's own ``torch_trainer.Stepper`` with
``torch_optim.KerasAdam``. With a ``MaskFeed`` every ``nn.Dropout`` is replaced by ``FedDropout``,
whose mask comes from the shared numpy stream (``train.masks``) in the Keras layout: a dropout inside
a convolution stack (its name starts with ``conv``) sees channels-first tensors, so the mask's
channel axis is moved from last to second.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from deepepi.models.registry import build
from deepepi.models.torch_weights import import_weights
from deepepi.models.weights import from_torch_layout
from deepepi.train.masks import MaskFeed
from deepepi.train.optim import AdamSettings
from deepepi.train.schedule import ThreePhase
from deepepi.train.torch_optim import KerasAdam
from deepepi.train.torch_trainer import Stepper


class FedDropout(nn.Module):
    """Dropout whose keep-mask is ``feed.mask(name, shape, rate)`` (identity in eval mode)."""

    def __init__(self, rate: float, feed: MaskFeed, name: str, channels_first: bool) -> None:
        super().__init__()
        self.rate, self.feed, self.key, self.channels_first = float(rate), feed, name, channels_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0:
            return x
        moved = self.channels_first and x.dim() > 2
        shape = (x.shape[0], *x.shape[2:], x.shape[1]) if moved else tuple(x.shape)
        mask = self.feed.mask(self.key, shape, self.rate)
        if moved:
            mask = np.moveaxis(mask, -1, 1)
        return x * torch.from_numpy(np.ascontiguousarray(mask)).to(x.dtype)


def lockstep_model(spec: Any, weights: dict[str, np.ndarray], dtype: str,
                   feed: MaskFeed | None = None) -> nn.Module:
    """A CPU model of any registered architecture holding ``weights`` in ``dtype``; with ``feed`` its
    Dropout modules take their masks from the feed."""
    model = build(spec, "pytorch")
    if feed is not None:
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Dropout):
                    setattr(parent, name, FedDropout(child.p, feed, name, name.startswith("conv")))
    import_weights(model, spec, weights)
    return model.to(getattr(torch, dtype))


def train_steps(model: nn.Module, m: dict[str, Any], x: np.ndarray, y: np.ndarray, stream: Any,
                start: int, stop: int, stepper: Stepper | None = None, feed: MaskFeed | None = None,
                adam: AdamSettings | None = None, l2_decay: bool = False) -> Stepper:
    """Train ``model`` (CPU, in the dtype of ``x``) on the stream's steps start .. stop - 1 with the
    trainer's Stepper; returns it (optimiser state) to continue with. ``adam`` and ``l2_decay`` (weight
    decay added to the gradient instead of decoupled) are test-only perturbations."""
    if stepper is None:
        settings = adam if adam is not None else AdamSettings.from_model_config(m)
        if l2_decay and settings.weight_decay:
            decay, settings = settings.weight_decay, replace(settings, weight_decay=None)
            for p in model.parameters():
                p.register_hook(lambda g, p=p: g + decay * p.detach())
        schedule = ThreePhase.from_model_config(m) if m["useLrSchedule"] else None
        stepper = Stepper(model, KerasAdam(model.parameters(), settings), schedule=schedule)
    model.train()
    for i, batch in enumerate(stream.steps(start, stop)):
        if feed is not None:
            feed.step = start + i
        stepper(torch.from_numpy(x[batch]), torch.from_numpy(y[batch]))
    return stepper


def neutral(model: nn.Module, spec: Any) -> dict[str, np.ndarray]:
    """Neutral weights (Keras layout) in the model's own dtype (export_weights rounds to float32)."""
    tensors = model.neutral_tensors()
    return {key: from_torch_layout(layout, tensors[key][0].detach().cpu().numpy().astype(np.float64))
            for key in spec.weight_shapes() for layout in (tensors[key][1],)}


def optimizer_state(model: nn.Module, spec: Any, stepper: Stepper) -> dict[str, np.ndarray]:
    """Adam's first and second moments as neutral tensors (``m:<key>``, ``v:<key>``) and the step count."""
    state = stepper.optimizer.state
    params = [p for p in model.parameters() if p in state]
    saved = [p.detach().clone() for p in params]
    out: dict[str, np.ndarray] = {"iterations": np.asarray(float(stepper.step))}
    try:
        with torch.no_grad():
            for slot in ("m", "v"):
                for p in params:
                    p.copy_(state[p][slot])
                out.update({f"{slot}:{k}": a for k, a in neutral(model, spec).items()
                            if not k.rsplit("/", 1)[-1].startswith("moving_")})
    finally:
        with torch.no_grad():
            for p, value in zip(params, saved):
                p.copy_(value)
    return out
