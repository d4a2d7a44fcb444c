"""BatchNorm for PyTorch that keeps Keras's running statistics, shared by every architecture's torch model.

Imported lazily (needs PyTorch). ``bn_tensors`` names a BatchNorm module's tensors by the neutral
weight keys, so each architecture maps its BatchNorm layers the same way.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _KerasRunningStats:
    """BatchNorm whose running variance follows Keras: the *biased* batch variance.

    nn.BatchNorm updates running_var with the unbiased variance (n / (n - 1)), Keras with the biased
    one; for the dense head (n = batch size) that is 1.6 % at batch 64, so the two frameworks' moving
    statistics drifted apart from the first step. Normalisation itself (biased variance in both) and
    eval mode are torch's; the state_dict is identical. The batch statistics come out of the same
    kernel that normalises (into scratch buffers, momentum 1), not from a second pass over the
    activations: that pass cost 15 % of a CPU training step.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.track_running_stats):
            return super().forward(x)  # type: ignore[misc]
        mean, unbiased = torch.zeros_like(self.running_mean), torch.zeros_like(self.running_var)
        out = F.batch_norm(x, mean, unbiased, self.weight, self.bias, True, 1.0, self.eps)
        with torch.no_grad():
            n = x.numel() // x.shape[1]  # values per channel
            self.num_batches_tracked.add_(1)
            # momentum None: cumulative average, as nn.BatchNorm does
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.lerp_(mean, factor)  # running += factor * (batch - running)
            self.running_var.lerp_(unbiased * ((n - 1) / n), factor)
        return out


class KerasBatchNorm1d(_KerasRunningStats, nn.BatchNorm1d):
    """nn.BatchNorm1d with Keras's running-variance rule ([B, C] or [B, C, L])."""


class KerasBatchNorm2d(_KerasRunningStats, nn.BatchNorm2d):
    """nn.BatchNorm2d with Keras's running-variance rule ([B, C, H, W])."""


def bn_tensors(module: nn.Module, prefix: str) -> dict[str, tuple[torch.Tensor, str | None]]:
    """A BatchNorm module's tensors under their neutral keys."""
    return {f"{prefix}/gamma": (module.weight, None), f"{prefix}/beta": (module.bias, None),
            f"{prefix}/moving_mean": (module.running_mean, None),
            f"{prefix}/moving_variance": (module.running_var, None)}
