"""Keras models -> TFLite in the phone app's convention, optionally fp16 or full-integer quantised;
a Harrell-Davis ensemble of Keras twins at a fixed q (float32).

The app feeds float32 [1, window, 1] in g and reads softmax [1, 2] directly (converters.app_meta.TFLITE),
so a functional wrapper puts a Reshape in front of the trained model, the per-window normalisation
when training used it, and a Softmax behind it; ``tf.lite.TFLiteConverter.from_keras_model`` converts
that (a bare concrete function loses the captured weights and gives NaN). The converter's own console
output is captured and shown only when it fails. Imported lazily (needs TensorFlow).
"""

from __future__ import annotations

from typing import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from converters.app_meta import TFLITE
from converters.contract import Exporter
from deepepi.core.errors import ExportError
from deepepi.models.deepepi_cnn.spec import ArchSpec
from deepepi.core.preprocessing import FLAT_STD, Preprocessing
from deepepi.core.quiet import captured_output

QUANTIZE = ("int8", "fp16")


class WindowNormalise(keras.layers.Layer):
    """Per-window (x - mean) / population std, flat windows only centred (deepepi.core.preprocessing)."""

    def call(self, x):  # noqa: ANN001, ANN201 - Keras tensors
        centred = x - keras.ops.mean(x, axis=-1, keepdims=True)
        std = keras.ops.sqrt(keras.ops.mean(centred * centred, axis=-1, keepdims=True))
        return centred / keras.ops.where(std > FLAT_STD, std, keras.ops.ones_like(std))


def app_model(model: keras.Model, spec: ArchSpec, preprocessing: Preprocessing) -> keras.Model:
    """[1, window, 1] g -> (normalise) -> model (inference) -> softmax [1, classes]."""
    inputs = keras.Input(shape=tuple(TFLITE.shape(spec.window)[1:]), batch_size=1, name="acc_g")
    x = keras.layers.Reshape((spec.window,))(inputs)
    if preprocessing.normalise:
        x = WindowNormalise()(x)
    outputs = keras.layers.Softmax(axis=-1)(model(x, training=False))
    return keras.Model(inputs, outputs, name="deepepi_app")


class HarrellDavis(keras.layers.Layer):
    """Members' softmax outputs -> [1 - HD, HD]: their seizure probabilities sorted ascending and
    combined with fixed Harrell-Davis weights (the ensemble ONNX graph's rule at one q)."""

    def __init__(self, hd_weights: np.ndarray, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.hd_weights = np.asarray(hd_weights, dtype=np.float32)

    def call(self, probabilities):  # noqa: ANN001, ANN201 - a list of Keras tensors
        seizure = keras.ops.stack([p[:, 1] for p in probabilities], axis=-1)
        hd = keras.ops.sum(keras.ops.sort(seizure, axis=-1) * self.hd_weights, axis=-1)
        return keras.ops.stack([1.0 - hd, hd], axis=-1)


def ensemble_app_model(members: list[keras.Model], hd_weights: np.ndarray, window: int,
                       preprocessing: Preprocessing) -> keras.Model:
    """[1, window, 1] g -> (normalise) -> every member (inference) -> softmax -> HD at fixed weights."""
    inputs = keras.Input(shape=tuple(TFLITE.shape(window)[1:]), batch_size=1, name="acc_g")
    x = keras.layers.Reshape((window,))(inputs)
    if preprocessing.normalise:
        x = WindowNormalise()(x)
    probabilities = [keras.layers.Softmax(axis=-1, name=f"member{i}_softmax")(m(x, training=False))
                     for i, m in enumerate(members)]
    return keras.Model(inputs, HarrellDavis(hd_weights, name="harrell_davis")(probabilities),
                       name="deepepi_app_ensemble")


def convert_ensemble(members: list[keras.Model], hd_weights: np.ndarray, window: int,
                     preprocessing: Preprocessing) -> bytes:
    """The float32 flatbuffer of an ensemble (no quantisation: the HD weights are exact rank weights)."""
    return _converted(tf.lite.TFLiteConverter.from_keras_model(
        ensemble_app_model(members, hd_weights, window, preprocessing)))


def _converted(converter: tf.lite.TFLiteConverter) -> bytes:
    return _captured(converter.convert)


def _captured(convert: Callable[[], bytes]) -> bytes:
    """``convert()`` with the converter's console output captured; a failure is one ExportError line."""
    with captured_output() as log:
        try:
            return convert()
        except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
            failure = exc
    raise ExportError(f"TFLite conversion failed: {type(failure).__name__}: "
                      f"{str(failure).strip().splitlines()[0] if str(failure).strip() else ''}"
                      f"{' (' + log.last_line() + ')' if log.last_line() else ''}")


def exporter_info(quantize: str | None) -> Exporter:
    name = "tf.lite.TFLiteConverter" + (f" ({quantize})" if quantize else "")
    return Exporter("tensorflow", f"{tf.__version__} (keras {keras.__version__})", name, tf.__version__)


def convert(model: keras.Model, spec: ArchSpec, preprocessing: Preprocessing, *,
            quantize: str | None = None, calibration_g: np.ndarray | None = None,
            check_g: np.ndarray | None = None) -> bytes:
    """The converted flatbuffer. ``int8`` is integer weights and activations (calibrated on
    ``calibration_g`` [n, window] in g) up to a float32 softmax, with float32 I/O kept for the app;
    the input side through the first convolution stays float32, or through as many convolutions as
    it takes to keep 99 % argmax agreement with the float32 file on ``check_g`` (default: the
    calibration windows; converters.quantize.fewest_float_convs). ``fp16`` stores fp16 weights."""
    if quantize not in (None, *QUANTIZE):
        raise ExportError(f"--quantize: got {quantize!r}, expected one of {', '.join(QUANTIZE)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(app_model(model, spec, preprocessing))
    if quantize == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    if quantize != "int8":
        return _converted(converter)
    if calibration_g is None or len(calibration_g) == 0:
        raise ExportError("int8 quantisation needs calibration windows")
    from converters.check import QUANTIZED_MIN_AGREEMENT
    from converters.quantize import fewest_float_convs

    float_model = _converted(converter)
    check = calibration_g if check_g is None else check_g
    convs = sum(op["op_name"] == "CONV_2D" for op in _ops(float_model)[1])

    def int8(n_float: int) -> bytes:
        quantizing = tf.lite.TFLiteConverter.from_keras_model(app_model(model, spec, preprocessing))
        quantizing.optimizations = [tf.lite.Optimize.DEFAULT]
        quantizing.representative_dataset = lambda: _representative(calibration_g, spec.window)
        # int8 kernels everywhere, float kernels allowed only for what the debugger keeps float.
        quantizing.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        return _int8_float_ends(quantizing, calibration_g, spec.window, _input_side(float_model, n_float))

    return fewest_float_convs(convs, int8, lambda content: _predict(content, check, spec.window),
                              _predict(float_model, check, spec.window), QUANTIZED_MIN_AGREEMENT)[1]


def _ops(content: bytes) -> tuple[dict[int, str], list[dict]]:
    """(tensor names by index, op details in graph order) of a flatbuffer."""
    from converters.litert import interpreter as litert_interpreter

    interpreter = litert_interpreter(content, allocate=False)
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    return names, interpreter._get_ops_details()  # noqa: SLF001 - LiteRT's only listing of the op graph


def _input_side(float_model: bytes, convs: int = 1) -> list[str]:
    """Output tensor names of the float model's ops up to and including its ``convs``-th convolution."""
    names, ops = _ops(float_model)
    side, seen = [], 0
    for op in ops:
        side += [names[i] for i in op["outputs"]]
        seen += op["op_name"] == "CONV_2D"
        if seen == convs:
            return side
    return []


def _predict(content: bytes, windows_g: np.ndarray, window: int) -> np.ndarray:
    """The flatbuffer's softmax for each window (one invoke per window, as in the app)."""
    from converters.litert import interpreter, invoke_each

    return invoke_each(interpreter(content), windows_g, (1, window, 1))


def _int8_float_ends(converter: tf.lite.TFLiteConverter, calibration_g: np.ndarray, window: int,
                     input_side: list[str]) -> bytes:
    """Integer conversion with both ends left in float32 (selective quantisation). The final softmax:
    an int8 softmax steps in 1/256, so its two outputs need not sum to 1 within the contract's
    tolerance, while the app reads p1 directly. The input side up to the first convolution (or
    further): the raw input carries 1 g of gravity, so int8 steps over its range are coarser than a
    resting wrist's whole signal (converters.quantize does the same for ONNX)."""
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=["SOFTMAX"],
                                                            denylisted_nodes=input_side)
    return _captured(lambda: tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: _representative(calibration_g, window),
        debug_options=options).get_nondebug_quantized_model())


def _representative(windows_g: np.ndarray, window: int) -> Iterable[list[np.ndarray]]:
    for row in np.asarray(windows_g, dtype=np.float32):
        yield [row.reshape(1, window, 1)]
