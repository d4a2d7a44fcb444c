"""DeepEpi in PyTorch, built from an ArchSpec: the module and the reference's wrapper class name.

Imported lazily (needs PyTorch). Submodules carry the spec's layer names, so state_dict keys, the
summary table and the neutral weight keys all line up with the Keras model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepepi.models.deepepi_cnn.spec import ArchSpec, Layer
from deepepi.models.quantile import harrell_davis
from deepepi.models.torch_bn import KerasBatchNorm1d, bn_tensors
from deepepi.models.torch_predict import predict_proba


class _GlobalAveragePool(nn.Module):
    """Mean over time: [B, C, L] -> [B, C], as Keras GlobalAveragePooling1D does on [B, L, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1)


class _ToChannels(nn.Module):
    """[B, window], [B, 1, window] or [B, window, 1] -> [B, 1, window], the inputs the reference model takes."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.window
        if x.dim() == 2 and x.shape[1] == w:
            return x.unsqueeze(1)
        if x.dim() == 3 and x.shape[1] == 1 and x.shape[2] == w:
            return x
        if x.dim() == 3 and x.shape[1] == w and x.shape[2] == 1:
            return x.transpose(1, 2)
        raise ValueError(f"DeepEpiCnn input: got shape {tuple(x.shape)}, expected [B, {w}], [B, 1, {w}] "
                         f"or [B, {w}, 1]")


def _make_layer(layer: Layer, spec: ArchSpec) -> nn.Module | None:
    if layer.kind == "conv":
        return nn.Conv1d(layer.in_units, layer.units, layer.kernel_size, stride=layer.stride, padding=0)
    if layer.kind == "bn":
        return KerasBatchNorm1d(layer.units, eps=spec.bn_epsilon, momentum=spec.torch_bn_momentum)
    if layer.kind == "relu":
        return nn.ReLU()
    if layer.kind == "dropout":
        return nn.Dropout(layer.rate)
    if layer.kind == "gap":
        return _GlobalAveragePool()
    if layer.kind == "dense":
        return nn.Linear(layer.in_units, layer.units)
    if layer.kind == "reshape":
        return _ToChannels(spec.window)
    return None  # "input": nothing to compute


class DeepEpiCnn(nn.Module):
    """forward(x float32 [B, window] in g; also [B, 1, window] or [B, window, 1]) -> logits [B, num_classes];
    softmax is the caller's job."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self._order: list[str] = []
        for layer in spec.layers():
            module = _make_layer(layer, spec)
            if module is not None:
                self.add_module(layer.name, module)
                self._order.append(layer.name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._order:
            x = getattr(self, name)(x)
        return x

    def neutral_tensors(self) -> dict[str, tuple[torch.Tensor, str | None]]:
        """{neutral key: (tensor, torch kernel layout)} for every weight of the spec."""
        return named_layer_tensors(self, self.spec)


def named_layer_tensors(model: nn.Module, spec: ArchSpec) -> dict[str, tuple[torch.Tensor, str | None]]:
    """DeepEpi's weights found by layer name: DeepEpiCnn's, and those of a user class built with the
    spec's layer names (``--allow-import``), which has no ``neutral_tensors`` of its own."""
    out: dict[str, tuple[torch.Tensor, str | None]] = {}
    for layer in spec.weighted_layers():
        m = getattr(model, layer.name)
        if layer.kind == "bn":
            out.update(bn_tensors(m, layer.name))
        else:
            out[f"{layer.name}/kernel"] = (m.weight, "conv1d" if layer.kind == "conv" else "dense")
            out[f"{layer.name}/bias"] = (m.bias, None)
    return out


class DeepEpiCnnModelPyTorch:
    """The reference's class name: a thin wrapper holding a spec and its DeepEpiCnn."""

    harrell_davis = staticmethod(harrell_davis)

    def __init__(self, spec: ArchSpec, model: DeepEpiCnn | None = None) -> None:
        self.spec = spec
        self.model = model if model is not None else DeepEpiCnn(spec)

    def predict_proba(self, x_g: np.ndarray, batch_size: int = 512) -> np.ndarray:
        return predict_proba(self.model, x_g, batch_size=batch_size)
