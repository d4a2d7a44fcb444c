"""Neutral weights in and out of any architecture's PyTorch model, and its parameter counts.

Imported lazily (needs PyTorch). A model names its weights through ``neutral_tensors()``; a user
class built with DeepEpi's layer names (``--allow-import``) has none and is read by layer name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from deepepi.core.errors import ModelError
from deepepi.models.base import ParamCounts
from deepepi.models.deepepi_cnn.torch import named_layer_tensors
from deepepi.models.weights import check_weights, from_torch_layout, to_torch_layout


def _neutral_tensors(model: nn.Module, spec: Any) -> dict[str, tuple[torch.Tensor, str | None]]:
    return model.neutral_tensors() if hasattr(model, "neutral_tensors") else named_layer_tensors(model, spec)


def count_parameters(model: nn.Module) -> ParamCounts:
    """Trainable parameters and BatchNorm running statistics (num_batches_tracked is not a weight)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return ParamCounts(trainable, frozen + stats)


def export_weights(model: nn.Module, spec: Any) -> dict[str, np.ndarray]:
    """Neutral weights (Keras layout, float32) keyed ``<layer>/<param>``, for any spec's model."""
    tensors = _neutral_tensors(model, spec)
    out: dict[str, np.ndarray] = {}
    for key in spec.weight_shapes():
        tensor, layout = tensors[key]
        out[key] = from_torch_layout(layout, tensor.detach().cpu().numpy().astype(np.float32, copy=False))
    return out


def import_weights(model: nn.Module, spec: Any, weights: dict[str, np.ndarray]) -> None:
    """Copy neutral weights into ``model`` after checking every key and shape (ModelError names the key)."""
    check_weights(weights, spec)
    tensors = _neutral_tensors(model, spec)
    with torch.no_grad():
        for key in spec.weight_shapes():
            tensor, layout = tensors[key]
            arr = to_torch_layout(layout, np.asarray(weights[key], dtype=np.float32))
            if tuple(arr.shape) != tuple(tensor.shape):
                raise ModelError(f"weight {key!r}: shape {tuple(arr.shape)} does not fit the model's "
                                 f"{tuple(tensor.shape)}")
            tensor.copy_(torch.from_numpy(arr))
