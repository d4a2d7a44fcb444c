"""Keras DeepEpi -> ONNX with tf2onnx, under the shared contract.

A tf.function with an explicit input signature named ``acc`` wraps the model: preprocessing, the
model in inference mode, softmax. ``tf2onnx.convert.from_function`` is used because ``from_keras``
does not accept Keras 3 models. Imported lazily (needs TensorFlow and tf2onnx).
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

from converters.contract import (INPUT_NAME, OPSET, OUTPUT_NAME, ExportInfo, Exporter, ExportResult,
                                 Reference, Source, softmax)
from converters.check import finish_onnx
from deepepi.core.errors import ExportError
from deepepi.models.keras_weights import count_parameters
from deepepi.models.deepepi_cnn.spec import ArchSpec
from deepepi.core.preprocessing import FLAT_STD, Preprocessing


def contract_function(model: keras.Model, window: int,
                      preprocessing: Preprocessing) -> tf.types.experimental.GenericFunction:
    """acc [batch, window] milli-g -> training preprocessing -> model(training=False) -> softmax."""
    # Python numbers, not captured tensors: a captured tensor would become a second graph input.
    scale, normalise = float(preprocessing.scale), bool(preprocessing.normalise)

    @tf.function(input_signature=[tf.TensorSpec([None, window], tf.float32, name=INPUT_NAME)])
    def contract(acc: tf.Tensor) -> dict[str, tf.Tensor]:
        x = acc * scale
        if normalise:
            centred = x - tf.reduce_mean(x, axis=-1, keepdims=True)
            std = tf.sqrt(tf.reduce_mean(centred * centred, axis=-1, keepdims=True))
            x = centred / tf.where(std > FLAT_STD, std, tf.ones_like(std))
        return {OUTPUT_NAME: tf.nn.softmax(model(x, training=False), axis=-1)}

    return contract


def native_reference(model: keras.Model, preprocessing: Preprocessing) -> Reference:
    """Numpy preprocessing + the native forward pass (training=False) + softmax: what the graph must match."""
    def reference(raw: np.ndarray) -> np.ndarray:
        logits = model(preprocessing.apply(raw), training=False)
        return softmax(keras.ops.convert_to_numpy(logits))
    return reference


def exporter_info() -> Exporter:
    return Exporter("tensorflow", f"{tf.__version__} (keras {keras.__version__})", "tf2onnx",
                    tf2onnx.__version__)


def to_onnx(model: keras.Model, spec: ArchSpec, preprocessing: Preprocessing) -> onnx.ModelProto:
    """The raw converted graph (not yet checked or written)."""
    function = contract_function(model, spec.window, preprocessing)
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    try:
        graph, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature,
                                                 opset=OPSET)
    except Exception as exc:  # tf2onnx raises many unrelated types; one typed error for all
        raise ExportError(f"tf2onnx conversion failed: {type(exc).__name__}: {exc}") from None
    return graph


def export(model: keras.Model, spec: ArchSpec, out: str | Path, source: Source, *,
           reference: Reference | None = None, seed: int = 0) -> ExportResult:
    """Export ``model`` to ``out`` under the contract; ``reference`` defaults to the native model.

    Raises ExportError and writes nothing when the onnxruntime self-check disagrees by > 1e-5.
    """
    graph = to_onnx(model, spec, source.preprocessing)
    info = ExportInfo(source, spec.window, spec.num_classes, count_parameters(model).trainable,
                      spec.to_json())
    check = reference or native_reference(model, source.preprocessing)
    return finish_onnx(graph, out, info, exporter_info(), check, seed=seed)
