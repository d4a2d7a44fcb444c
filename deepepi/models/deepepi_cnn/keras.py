"""DeepEpi in Keras 3, built from an ArchSpec: the model, its reference (softmax) form and the
reference's wrapper class name.

Imported lazily (needs TensorFlow). Only built-in layers are used, each named by the spec, so
`keras.saving.load_model(path, safe_mode=True)` needs no custom objects.
"""

from __future__ import annotations

import keras
import numpy as np

from deepepi.models.deepepi_cnn.spec import ArchSpec, Layer
from deepepi.models.keras_predict import predict_proba
from deepepi.models.quantile import harrell_davis

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


class DeepEpiCnnModel:
    """The reference's class name: a thin wrapper holding a spec and its Keras model."""

    harrell_davis = staticmethod(harrell_davis)

    def __init__(self, spec: ArchSpec, model: keras.Model | None = None) -> None:
        self.spec = spec
        self.model = model if model is not None else build_keras_model(spec)

    def predict_proba(self, x_g: np.ndarray, batch_size: int = 512) -> np.ndarray:
        return predict_proba(self.model, x_g, batch_size=batch_size)
