"""SpecCnn in PyTorch, built from a SpecCnnSpec; submodules carry the spec's layer names.

Imported lazily (needs PyTorch). Layout: [B, C, freq, time] inside; the flatten goes through
channels-last order so the logits kernel is the Keras one transposed. MaxPool2D(2, 'same') pads odd
sizes by one at the end, as Keras does; the pad value 0 is exact because the pool follows a ReLU.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from deepepi.models.speccnn.spec import SpecCnnSpec
from deepepi.models.torch_bn import KerasBatchNorm2d, bn_tensors


class Spectrogram(nn.Module):
    """[B, window] g -> [B, 1, n_bins, n_spec]: one strided convolution with the constant DFT kernel
    (a plain tensor attribute: not a weight, not in the state_dict; a non-persistent buffer would be
    refused by ExecuTorch's export), magnitude, small values zeroed."""

    def __init__(self, spec: SpecCnnSpec) -> None:
        super().__init__()
        self.spec = spec
        kernel = torch.from_numpy(spec.dft_kernel().T.copy())[:, None, :]  # (2 * n_bins, 1, spec_samples)
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        kernel = self.kernel.to(device=x.device, dtype=x.dtype)
        frames = F.conv1d(x[:, None, s.offset:], kernel, stride=s.spec_step)[..., :s.n_spec]
        re, im = frames[:, :s.n_bins], frames[:, s.n_bins:]
        mag = torch.sqrt(re * re + im * im)
        return torch.where(mag < s.zero_tol, torch.zeros_like(mag), mag).unsqueeze(1)


class _SamePool2d(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2)), 2)


class _FlattenChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


class SpecCnn(nn.Module):
    """forward(x float32 [B, window] in g) -> logits [B, num_classes]; softmax is the caller's job."""

    def __init__(self, spec: SpecCnnSpec) -> None:
        super().__init__()
        self.spec = spec
        self.spectrogram = Spectrogram(spec)
        prev, k = 1, spec.kernel_size
        for i, f in enumerate(spec.filters, start=1):
            self.add_module(f"conv{i}", nn.Conv2d(prev, f, k, padding=k // 2))
            self.add_module(f"conv{i}_relu", nn.ReLU())
            self.add_module(f"conv{i}_pool", _SamePool2d())
            self.add_module(f"conv{i}_dropout", nn.Dropout(spec.dropout))
            self.add_module(f"conv{i}_bn", KerasBatchNorm2d(f, eps=spec.bn_epsilon, momentum=1 - spec.bn_momentum))
            prev = f
        self.flatten = _FlattenChannelsLast()
        self.dropout = nn.Dropout(spec.dropout)
        self.logits = nn.Linear(spec.flat_features, spec.num_classes)
        self._order = spec.layer_names()[1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # [B, 1, window] or [B, window, 1], as DeepEpi accepts
            x = x.reshape(x.shape[0], -1)
        for name in self._order:
            x = getattr(self, name)(x)
        return x

    def neutral_tensors(self) -> dict[str, tuple[torch.Tensor, str | None]]:
        """{neutral key: (tensor, torch kernel layout)} for every weight of the spec."""
        out: dict[str, tuple[torch.Tensor, str | None]] = {}
        for i in range(1, len(self.spec.filters) + 1):
            conv = getattr(self, f"conv{i}")
            out[f"conv{i}/kernel"], out[f"conv{i}/bias"] = (conv.weight, "conv2d"), (conv.bias, None)
            out.update(bn_tensors(getattr(self, f"conv{i}_bn"), f"conv{i}_bn"))
        out["logits/kernel"], out["logits/bias"] = (self.logits.weight, "dense"), (self.logits.bias, None)
        return out
