"""DeepEpi in Keras 3, built from an ArchSpec: model, counts, neutral weights, saving/loading, inference.

Imported lazily (only by code that needs TensorFlow). Only built-in layers are used, each named by
the spec, so `keras.saving.load_model(path, safe_mode=True)` needs no custom objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from deepepi.core.errors import ModelError
from deepepi.core.io import atomic_path
from deepepi.models.quantile import harrell_davis
from deepepi.models.reference import KerasLayer
from deepepi.models.deepepi_cnn.spec import ArchSpec, Layer, ParamCounts, model_input
from deepepi.models.weights import check_weights

MODEL_NAME = "deepepi_cnn"


def _make_layer(layer: Layer, spec: ArchSpec) -> keras.layers.Layer:
    if layer.kind == "reshape":
        return keras.layers.Reshape((spec.window, spec.in_channels), name=layer.name)
    if layer.kind == "conv":
        return keras.layers.Conv1D(layer.units, layer.kernel_size, strides=layer.stride, padding=spec.padding,
                                   name=layer.name)
    if layer.kind == "bn":
        return keras.layers.BatchNormalization(axis=-1, momentum=spec.bn_momentum, epsilon=spec.bn_epsilon,
                                               name=layer.name)
    if layer.kind == "relu":
        return keras.layers.ReLU(name=layer.name)
    if layer.kind == "dropout":
        return keras.layers.Dropout(layer.rate, name=layer.name)
    if layer.kind == "gap":
        return keras.layers.GlobalAveragePooling1D(name=layer.name)
    if layer.kind == "dense":
        return keras.layers.Dense(layer.units, name=layer.name)
    raise ValueError(f"unknown layer kind {layer.kind!r}")


def build_keras_model(spec: ArchSpec) -> keras.Model:
    """Functional model: input float32 [B, window] in g -> logits [B, num_classes] (no softmax)."""
    first, *rest = spec.layers()
    inputs = keras.Input(shape=(spec.window,), dtype="float32", name=first.name)
    x = inputs
    for layer in rest:
        x = _make_layer(layer, spec)(x)
    return keras.Model(inputs, x, name=MODEL_NAME)


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


def predict_proba(model: keras.Model, x_g: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities float32 [n, num_classes] for windows in g, in inference mode."""
    x = model_input(x_g, int(model.input_shape[-1]))
    outs = [keras.ops.convert_to_numpy(keras.ops.softmax(model.predict_on_batch(x[i:i + batch_size]), axis=-1))
            for i in range(0, len(x), batch_size)]
    if not outs:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    return np.concatenate(outs).astype(np.float32, copy=False)


def save_keras_model(path: str | Path, model: keras.Model) -> None:
    """Write a `.keras` file atomically (the temporary name keeps the suffix Keras insists on)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"Keras models are saved as '.keras', got {path.name!r}", source=str(path))
    with atomic_path(path) as tmp:
        model.save(tmp)


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a `.keras` (or legacy `.h5`) file with safe_mode=True (no lambdas, no custom code; the
    only custom layer, SpecCnn's spectrogram, is registered by importing its module)."""
    from deepepi.models.speccnn import keras as keras_speccnn

    path = Path(path)
    if not path.is_file():
        raise ModelError("Keras model file not found", source=str(path))
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises ValueError/OSError/zip errors alike for unusable files
        raise ModelError(f"not a loadable .keras model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                         source=str(path)) from None


def softmax_model(model: keras.Model, spec: ArchSpec) -> keras.Model:
    """The reference's form of ``model`` for scripts written against the reference Keras model
    (``model.predict(x)[:, 1]``): input [B, window, 1] in g, softmax probabilities out, same layers
    and weights. Our own contract stays logits; the ONNX graphs apply softmax themselves."""
    inputs = keras.Input(shape=(spec.window, spec.in_channels), dtype="float32", name="acc_g")
    x = keras.layers.Reshape((spec.window,), name="drop_channel")(inputs)
    for layer in model.layers[1:]:  # the first is the InputLayer
        x = layer(x)
    probabilities = keras.layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, probabilities, name=f"{MODEL_NAME}_softmax")


SETTINGS = ("strides", "kernel_size", "padding", "activation", "epsilon")


def read_reference(path: str | Path) -> tuple[list[KerasLayer], tuple[int | None, ...],
                                              Callable[[np.ndarray], np.ndarray]]:
    """A reference-trained .keras/.h5 file (loaded with safe_mode): its layers in build order as plain
    values, its input shape, and a function x_g [n, window] -> the file's own outputs (for a self-check)."""
    model = load_keras_model(path)
    layers = [KerasLayer(layer.name, type(layer).__name__,
                         [np.asarray(w, dtype=np.float32) for w in layer.get_weights()],
                         {k: v for k, v in layer.get_config().items() if k in SETTINGS})
              for layer in model.layers]
    shape = tuple(model.input_shape)

    def outputs(x_g: np.ndarray) -> np.ndarray:
        x = x_g[..., None] if len(shape) == 3 else x_g
        return keras.ops.convert_to_numpy(model(x, training=False)).astype(np.float32)

    return layers, shape, outputs


class DeepEpiCnnModel:
    """The reference's class name: a thin wrapper holding a spec and its Keras model."""

    harrell_davis = staticmethod(harrell_davis)

    def __init__(self, spec: ArchSpec, model: keras.Model | None = None) -> None:
        self.spec = spec
        self.model = model if model is not None else build_keras_model(spec)

    def predict_proba(self, x_g: np.ndarray, batch_size: int = 512) -> np.ndarray:
        return predict_proba(self.model, x_g, batch_size=batch_size)
