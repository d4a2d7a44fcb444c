"""Quantise a contract ONNX file: int8 (onnxruntime static QDQ, per-channel) or fp16 (float32 I/O kept).

int8 calibrates activation ranges on raw milli-g training windows fed through the graph's own
``acc`` input, so the in-graph preprocessing is calibrated too. The input scaling and the first
convolution stay float32: the raw input carries 1 g of gravity, so int8 steps over its range are
about 12 mg, coarser than a resting wrist's whole signal (measured on the test fixture model:
agreement 99.6 % -> 100 %, max probability error 0.24 -> 0.05). When that leaves the int8 file
under 99 % argmax agreement with float32 on the check windows (in `deepepi export`, up to 2,048
windows of the run's validation events), more convolutions stay float32, the fewest that reach it
(``shortest_float_prefix``). Before quantising, ``fold_affine``
folds the BatchNorm Add/Mul chains tf2onnx leaves behind convolutions and dense layers into their
weights and moves each Relu next to its Conv, so the quantiser fuses it (on a trained reference
network exported from Keras: agreement 91.5 % -> 99.2 %, max probability error 0.94 -> 0.13). fp16 converts weights and
arithmetic but keeps the float32 ``acc`` input and ``probabilities`` output, so the file still
follows the ONNX contract. Both keep the source file's metadata_props, plus a ``quantization``
entry. Framework-free (onnx, onnxruntime).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import onnx

from converters.contract import INPUT_NAME, read_metadata
from converters.check import QUANTIZED_MIN_AGREEMENT
from converters.session import inference_session
from deepepi.core.errors import ExportError
from deepepi.core.quiet import captured_output
from deepepi.scoring.agreement import argmax_agreement

QUANTIZE = ("int8", "fp16")
QUANT_META = "quantization"
T = TypeVar("T")


class _Windows:
    """onnxruntime's CalibrationDataReader over [n, window] milli-g windows, one window per batch."""

    def __init__(self, raw: np.ndarray) -> None:
        self._rows = iter(np.asarray(raw, dtype=np.float32))

    def get_next(self) -> dict[str, np.ndarray] | None:
        row = next(self._rows, None)
        return None if row is None else {INPUT_NAME: row[None, :]}

    def rewind(self) -> None:  # part of the reader interface; one calibration pass needs no rewind
        return None


def int8(model: onnx.ModelProto, calibration_raw: np.ndarray, check_raw: np.ndarray | None = None, *,
         min_agreement: float = QUANTIZED_MIN_AGREEMENT) -> onnx.ModelProto:
    """Static QDQ int8, per-channel weights, MinMax activation ranges from ``calibration_raw``, after
    folding per-channel affine chains into their convolutions; softmax stays float32, and so does
    the input side through the first convolution, or through as many convolutions as it takes for
    the int8 file to keep ``min_agreement`` argmax agreement with the float32 graph on ``check_raw``
    (default: the calibration windows; the fewest such, found by bisection; every convolution when
    none do).

    Why a float32 prefix: rounding error compounds through the stack, and the early convolutions
    work at full time resolution on raw gravity-laden input. On a 20-epoch reference network all
    14 convolutions but the first in int8 kept 97.0 % agreement; with the first six in float32,
    99.2 % at 0.47x the float32 latency (docs/PERFORMANCE.md)."""
    if len(calibration_raw) == 0:
        raise ExportError("int8 quantisation needs calibration windows")
    source, model = model, fold_affine(model)
    windows = np.asarray(calibration_raw, dtype=np.float32)
    check = windows if check_raw is None else np.asarray(check_raw, dtype=np.float32)
    convs = sum(node.op_type == "Conv" for node in model.graph.node)
    n_float, quantized, agreement_kept = fewest_float_convs(
        convs, lambda n: _static_int8(model, windows, float_prefix(model, n)),
        lambda candidate: _predict(candidate, check), _predict(model, check), min_agreement)
    how = (f"int8 static QDQ per-channel (onnxruntime), MinMax calibration on {len(windows)} windows; "
           f"float32: the input side through convolution {n_float} of {convs}, and softmax; "
           f"argmax agreement with float32 on {len(check)} check windows {agreement_kept:.4f}")
    return _with_metadata(quantized, source, how)


def fewest_float_convs(convs: int, build: Callable[[int], T], predict: Callable[[T], np.ndarray],
                       reference: np.ndarray, min_agreement: float) -> tuple[int, T, float]:
    """(n, model, agreement): the quantised model with the fewest float32 convolutions whose argmax
    agreement with ``reference`` (the float32 model's outputs on the check windows) reaches
    ``min_agreement`` (every convolution when none does). ``build(n)`` quantises with the input side
    through convolution n left float32, ``predict(model)`` runs one on the check windows; both the
    ONNX and the TFLite int8 exports size their float32 prefix with it."""
    tried: dict[int, tuple[T, float]] = {}

    def agreement(n_float: int) -> float:
        candidate = build(n_float)
        tried[n_float] = candidate, argmax_agreement(predict(candidate), reference)
        return tried[n_float][1]

    n_float = shortest_float_prefix(convs, agreement, min_agreement)
    return (n_float, *tried[n_float])


def shortest_float_prefix(convs: int, agreement: Callable[[int], float], min_agreement: float) -> int:
    """The fewest float32 convolutions (1 .. convs) whose int8 model's ``agreement(n)`` reaches
    ``min_agreement``, by bisection (more float32 layers are assumed never to agree less); ``convs``
    when none does. ``agreement`` has been called with the returned n."""
    if agreement(1) >= min_agreement or convs <= 1:
        return 1
    lo, hi, hi_tried = 1, convs, False  # lo fails; hi passes (once tried) or is the last resort
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if agreement(mid) >= min_agreement:
            hi, hi_tried = mid, True
        else:
            lo = mid
    if not hi_tried:
        agreement(hi)
    return hi


def _static_int8(model: onnx.ModelProto, windows: np.ndarray, float_nodes: list[str]) -> onnx.ModelProto:
    """onnxruntime's static QDQ quantisation of ``model`` with ``float_nodes`` left float32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="deepepi-quant-") as tmp:
        src, pre, out = (Path(tmp) / name for name in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, str(src))
        with captured_output() as log:
            try:
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
                quantize_static(str(pre), str(out), _Windows(windows),
                                quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax,
                                op_types_to_quantize=_quantizable_ops(model),
                                nodes_to_exclude=float_nodes)
                failure = None
            except Exception as exc:  # onnxruntime.quantization raises many unrelated types
                failure = exc
        if failure is not None:
            raise ExportError(f"onnxruntime int8 quantisation failed: {type(failure).__name__}: "
                              f"{failure} {log.last_line()}".strip())
        return onnx.load(str(out))


def _predict(model: onnx.ModelProto, windows: np.ndarray) -> np.ndarray:
    return inference_session(model.SerializeToString()).run(None, {INPUT_NAME: windows})[0]


def _quantizable_ops(model: onnx.ModelProto) -> list[str]:
    """Every op type of the graph except Softmax: the probabilities stay float32, so rows still sum
    to 1 within the contract's tolerance (a quantised softmax steps in 1/256 and sums to 1 +- 4e-3)."""
    return sorted({node.op_type for node in model.graph.node} - {"Softmax"})


def float_prefix(model: onnx.ModelProto, convs: int = 1) -> list[str]:
    """Names of the nodes from the input up to and including the ``convs``-th Conv (graph order is
    topological), which int8 leaves float32."""
    names, seen = [], 0
    for node in model.graph.node:
        names.append(node.name)
        seen += node.op_type == "Conv"
        if seen == convs:
            return names
    return []


def fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and arithmetic, float32 input and output kept."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    with captured_output():
        converted = OnnxModel(convert_float_to_float16(model, keep_io_types=True))
        # The converter appends the input Casts after their consumers; the checker needs graph order.
        converted.topological_sort()
    return _with_metadata(converted.model, model, "fp16 weights and arithmetic, float32 I/O "
                                            "(onnxruntime.transformers.float16)")


def quantize(model: onnx.ModelProto, kind: str, calibration_raw: np.ndarray | None,
             check_raw: np.ndarray | None = None) -> onnx.ModelProto:
    """``kind`` int8 (calibrated on ``calibration_raw``, its float32 prefix sized on ``check_raw``) or fp16."""
    if kind == "int8":
        return int8(model, calibration_raw if calibration_raw is not None else np.empty((0, 0)), check_raw)
    if kind == "fp16":
        return fp16(model)
    raise ExportError(f"--quantize: got {kind!r}, expected one of {', '.join(QUANTIZE)}")


def _with_metadata(quantized: onnx.ModelProto, source: onnx.ModelProto, how: str) -> onnx.ModelProto:
    meta = read_metadata(source)
    meta[QUANT_META] = how
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(quantized, meta)
    return quantized


def fold_affine(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` in which each per-channel Add/Mul chain right behind a Conv (through an
    optional Squeeze) or a MatMul with constant weights is folded into those weights (and a bias).

    tf2onnx writes a Keras Conv1D + BatchNorm as Conv -> Squeeze -> Add(bias) -> Mul(scale) ->
    Add(shift), and a Dense + BatchNorm as MatMul -> Add -> Mul -> Add; quantised as they stand, each
    of those tensors gets its own int8 range and the errors compound. The fold is exact up to float32
    rounding: y = layer(x) * a + c with a, c per output channel.
    """
    from onnx import numpy_helper

    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    init = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def only_consumer(tensor: str) -> onnx.NodeProto | None:
        users = consumers.get(tensor, [])
        return users[0] if len(users) == 1 and tensor not in outputs else None

    dropped: list[onnx.NodeProto] = []
    for layer in [n for n in graph.node if n.op_type in ("Conv", "MatMul") and len(n.input) >= 2
                  and n.input[1] in init]:
        weight = numpy_helper.to_array(init[layer.input[1]])
        conv = layer.op_type == "Conv"
        if not conv and weight.ndim != 2:
            continue
        channels = weight.shape[0] if conv else weight.shape[1]
        tail, head, rank = layer, only_consumer(layer.output[0]), weight.ndim
        if conv and head is not None and head.op_type == "Squeeze":
            axes = _squeeze_axes(head, init)
            if axes is None or any(a % rank in (0, 1) for a in axes):
                continue
            tail, head, rank = head, only_consumer(head.output[0]), rank - len(axes)
        scale, shift, chain = np.ones(channels), np.zeros(channels), []
        while head is not None and head.op_type in ("Add", "Mul"):
            const = _channel_constant(head, init, channels, rank if conv else None)
            if const is None:
                break
            scale, shift = (scale * const, shift * const) if head.op_type == "Mul" else (scale, shift + const)
            chain.append(head)
            head = only_consumer(head.output[0])
        if not chain:
            continue
        w_name, c_name = f"{layer.name}/folded_weight", f"{layer.name}/folded_bias"
        shape = (channels,) + (1,) * (weight.ndim - 1) if conv else (1, channels)
        graph.initializer.append(numpy_helper.from_array((weight * scale.reshape(shape)).astype(weight.dtype),
                                                         w_name))
        data = layer.input[0]
        bias = numpy_helper.to_array(init[layer.input[2]]) if conv and len(layer.input) > 2 else np.zeros(channels)
        del layer.input[:]
        if conv:
            graph.initializer.append(numpy_helper.from_array((bias * scale + shift).astype(weight.dtype), c_name))
            layer.input.extend([data, w_name, c_name])
            tail.output[0] = chain[-1].output[0]
            dropped += chain
        else:  # MatMul has no bias input: the chain's first node becomes the one bias Add
            graph.initializer.append(numpy_helper.from_array(shift.astype(weight.dtype), c_name))
            layer.input.extend([data, w_name])
            first = chain[0]
            first.op_type = "Add"
            del first.input[:]
            first.input.extend([layer.output[0], c_name])
            first.output[0] = chain[-1].output[0]
            dropped += chain[1:]
    for node in dropped:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    _relu_before_squeeze(graph, only_consumer)
    return folded


def _relu_before_squeeze(graph: onnx.GraphProto, only_consumer: Callable) -> None:
    """Conv -> Squeeze -> Relu becomes Conv -> Relu -> Squeeze (they commute), so that the quantiser
    fuses the Relu into the Conv and gives its output a non-negative int8 range: quantised before
    the Relu, each convolution's output spends half its 256 steps on values the Relu zeroes."""
    for squeeze in [n for n in graph.node if n.op_type == "Squeeze"]:
        relu = only_consumer(squeeze.output[0])
        producer = [n for n in graph.node if squeeze.input[0] in n.output]
        if relu is None or relu.op_type != "Relu" or not producer or producer[0].op_type != "Conv" \
                or only_consumer(squeeze.input[0]) is not squeeze:
            continue
        new_relu = onnx.helper.make_node("Relu", [squeeze.input[0]], [squeeze.output[0]], name=relu.name)
        new_squeeze = onnx.NodeProto()
        new_squeeze.CopyFrom(squeeze)
        new_squeeze.input[0], new_squeeze.output[0] = squeeze.output[0], relu.output[0]
        squeeze.CopyFrom(new_relu)  # node positions kept: the graph stays topologically sorted
        relu.CopyFrom(new_squeeze)


def _squeeze_axes(node: onnx.NodeProto, init: dict) -> list[int] | None:
    """A Squeeze's axes (input since opset 13, attribute before); None when not constant."""
    from onnx import numpy_helper

    if len(node.input) > 1:
        return [int(a) for a in numpy_helper.to_array(init[node.input[1]])] if node.input[1] in init else None
    attr = [a for a in node.attribute if a.name == "axes"]
    return list(attr[0].ints) if attr else None


def _channel_constant(node: onnx.NodeProto, init: dict, channels: int, rank: int | None) -> np.ndarray | None:
    """The per-channel values of an Add/Mul whose other input is an initializer that broadcasts along
    the channel axis only: [1, C, 1, ...] of the tensor's ``rank`` behind a Conv (channel axis 1), or
    [C] / [1, C] behind a MatMul (``rank`` None; channel axis last)."""
    from onnx import numpy_helper

    const = [numpy_helper.to_array(init[name]) for name in node.input if name in init]
    if len(const) != 1 or len(node.input) != 2:
        return None
    value = const[0]
    wanted = ((channels,), (1, channels)) if rank is None else ((1, channels) + (1,) * (rank - 2),)
    if value.shape not in wanted:
        return None
    return value.reshape(channels).astype(np.float64)
