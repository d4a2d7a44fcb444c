"""Neutral weights in and out of any architecture's Keras model, and its parameter counts.

Imported lazily (needs TensorFlow). Keras layout is the neutral layout, so no conversion.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from deepepi.core.errors import ModelError
from deepepi.models.base import ParamCounts
from deepepi.models.weights import check_weights


def count_parameters(model: keras.Model) -> ParamCounts:
    """Trainable weights and non-trainable weights (the BatchNorm moving statistics)."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return ParamCounts(trainable, non_trainable)


def _get_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    try:
        return model.get_layer(name)
    except ValueError:
        raise ModelError(f"Keras model has no layer {name!r}; it was not built from this spec") from None


def export_weights(model: keras.Model, spec: Any) -> dict[str, np.ndarray]:
    """Neutral weights keyed ``<layer>/<param>`` for any spec; Keras layout is the neutral layout, so
    no conversion (each layer's get_weights() order is the spec's weight_groups() order)."""
    out: dict[str, np.ndarray] = {}
    for name, params in spec.weight_groups():
        values = _get_layer(model, name).get_weights()
        for param, value in zip(params, values, strict=True):
            out[f"{name}/{param}"] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def import_weights(model: keras.Model, spec: Any, weights: dict[str, np.ndarray]) -> None:
    """Set every weighted layer from neutral weights after checking keys and shapes (ModelError names the key)."""
    check_weights(weights, spec)
    for name, params in spec.weight_groups():
        target = _get_layer(model, name)
        values = [np.asarray(weights[f"{name}/{p}"], dtype=np.float32) for p in params]
        current = [tuple(w.shape) for w in target.get_weights()]
        if current != [v.shape for v in values]:
            raise ModelError(f"layer {name!r}: weights {[v.shape for v in values]} do not fit the "
                             f"model's {current}")
        target.set_weights(values)
