"""PyTorch DeepEpi -> ExecuTorch .pte in the phone app's convention, XNNPACK-delegated.

The app feeds float32 [1, 1, window] in g and applies its own softmax to the outputs
(converters.app_meta.PTE), so the program returns logits. ``torch.export`` -> ExecuTorch's
``to_edge_transform_and_lower`` with the XNNPACK partitioner -> ``to_executorch``; every failure is
an ExportError (the reference reported a failed export as success). ``int8`` inserts ExecuTorch's
XNNPACK PT2E quantizer (symmetric per-channel weights, static int8 activations calibrated on
training windows; float32 I/O) before lowering, and, as the ONNX and TFLite int8 files do, leaves
the input side float32 through the first convolution, or through as many convolutions as it takes
to keep 99 % argmax agreement with the float32 program on the check windows
(converters.quantize.fewest_float_convs). Quantised whole, a 20-epoch network kept 94.6 %.

The float32 convolutions are lowered as conv2d ([B, C, L, 1], their BatchNorm folded in, their ReLU
fused): XNNPACK's conv1d pass in executorch 1.5.1 takes a float32 conv1d whose output feeds a
quantise node for a quantised one and gives it an int8 output, and the program then fails to
load (XNNCompiler: "Failed to create depthwise convolution node ... xnn_status_invalid_parameter").
Imported lazily (needs torch and executorch).
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from converters.app_meta import PTE
from converters.contract import Exporter
from deepepi.core.errors import ExportError
from deepepi.models.deepepi_cnn.spec import ArchSpec
from deepepi.core.preprocessing import FLAT_STD, Preprocessing
from deepepi.core.quiet import captured_output


class AppModule(nn.Module):
    """[1, 1, window] g -> (normalise) -> model (eval) -> logits [1, classes]."""

    def __init__(self, model: nn.Module, window: int, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.model = model
        self.window = window
        self.normalise = bool(preprocessing.normalise)

    def forward(self, acc_g: torch.Tensor) -> torch.Tensor:
        x = acc_g.reshape(acc_g.shape[0], self.window)
        if self.normalise:
            centred = x - x.mean(dim=-1, keepdim=True)
            std = torch.sqrt((centred * centred).mean(dim=-1, keepdim=True))
            x = centred / torch.where(std > FLAT_STD, std, torch.ones_like(std))
        return self.model(x)


class FloatConv(nn.Module):
    """An eval-mode Conv1d with the BatchNorm behind it folded in (and its ReLU) computed as a
    conv2d over [B, C, L, 1]: what a float32 convolution ahead of int8 ones is lowered as (see the
    module docstring). Exact up to float32 rounding."""

    def __init__(self, conv: nn.Conv1d, bn: nn.Module | None, relu: bool) -> None:
        super().__init__()
        weight = conv.weight.detach().clone()
        bias = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(weight.shape[0])
        if bn is not None:
            scale = bn.weight.detach() / torch.sqrt(bn.running_var.detach() + bn.eps)
            weight = weight * scale[:, None, None]
            bias = (bias - bn.running_mean.detach()) * scale + bn.bias.detach()
        self.weight = nn.Parameter(weight.unsqueeze(-1), requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)
        self.stride, self.padding, self.relu = conv.stride[0], conv.padding[0], relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x.unsqueeze(-1), self.weight, self.bias, stride=(self.stride, 1), padding=(self.padding, 0))
        return (F.relu(y) if self.relu else y).squeeze(-1)


QUANTIZE = ("int8",)


def exporter_info(quantize: str | None = None) -> Exporter:
    from importlib.metadata import version

    return Exporter("pytorch", torch.__version__, "executorch (XNNPACK)", version("executorch"))


def convert(model: nn.Module, spec: ArchSpec, preprocessing: Preprocessing, *,
            quantize: str | None = None, calibration_g: np.ndarray | None = None,
            check_g: np.ndarray | None = None) -> bytes:
    """The serialised ExecuTorch program (static input [1, 1, window]); float32, or ``int8``
    calibrated on ``calibration_g`` [n, window] in g, with the fewest float32 leading convolutions
    that keep 99 % argmax agreement with the float32 model on ``check_g`` (default: the calibration
    windows)."""
    if quantize not in (None, *QUANTIZE):
        raise ExportError(f"--quantize {quantize} is not offered for .pte (float32 or int8); "
                          f"quantise the ONNX or TFLite export instead")
    if quantize == "int8" and (calibration_g is None or len(calibration_g) == 0):
        raise ExportError("int8 quantisation needs calibration windows")
    if quantize != "int8":
        return _guarded(model, lambda: _lower(AppModule(model, spec.window, preprocessing).eval(), _example(spec)))
    from converters.check import QUANTIZED_MIN_AGREEMENT
    from converters.quantize import fewest_float_convs

    check = np.asarray(calibration_g if check_g is None else check_g, dtype=np.float32)
    convs = len(conv_names(spec))

    def sized() -> bytes:
        app = AppModule(model, spec.window, preprocessing).eval()
        with torch.no_grad():
            reference = app(torch.from_numpy(check).reshape(len(check), 1, spec.window)).numpy()
        return fewest_float_convs(
            convs, lambda n: _lower(_quantised(app, spec, calibration_g, n), _example(spec)),
            lambda content: program_logits(content, check), reference, QUANTIZED_MIN_AGREEMENT)[1]

    return _guarded(model, sized)


def int8_program(model: nn.Module, spec: ArchSpec, preprocessing: Preprocessing, calibration_g: np.ndarray,
                 float_convs: int) -> bytes:
    """The int8 program with the input side through convolution ``float_convs`` left float32 (0:
    quantised whole); what ``convert`` sizes, and what bench/deploy.py compares."""
    return _guarded(model, lambda: _lower(_quantised(AppModule(model, spec.window, preprocessing).eval(), spec,
                                                     calibration_g, float_convs), _example(spec)))


def conv_names(spec: ArchSpec) -> list[str]:
    """The convolutions in network order: the candidates for the float32 prefix."""
    return [layer.name for layer in spec.layers() if layer.kind == "conv"]


def program_logits(content: bytes, windows_g: np.ndarray) -> np.ndarray:
    """[n, classes] logits of a serialised program, one [1, 1, window] window per call, as in the app."""
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(content)
    method = program.load_method("forward")
    rows = np.asarray(windows_g, dtype=np.float32)
    return np.stack([method.execute([torch.from_numpy(np.ascontiguousarray(row).reshape(1, 1, -1))])[0]
                     .numpy()[0] for row in rows])


def _example(spec: ArchSpec) -> tuple[torch.Tensor]:
    return (torch.zeros(*PTE.shape(spec.window), dtype=torch.float32),)


def _guarded(model: nn.Module, build: Callable[[], bytes]) -> bytes:
    """``build()`` with the model in eval mode, its console output captured and every failure an
    ExportError naming it (torch.export and exir raise many unrelated types)."""
    was_training = model.training
    model.eval()
    try:
        with captured_output() as log:
            try:
                return build()
            except ExportError:
                raise
            except Exception as exc:  # torch.export, exir and the ExecuTorch runtime raise many types
                failure = exc
    finally:
        model.train(was_training)
    text = str(failure).strip()
    raise ExportError(f"ExecuTorch export failed: {type(failure).__name__}: "
                      f"{text.splitlines()[0] if text else ''}"
                      f"{' (' + log.last_line() + ')' if log.last_line() else ''}")


def _lower(app: nn.Module, example: tuple[torch.Tensor]) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = to_edge_transform_and_lower(torch.export.export(app, example), partitioner=[XnnpackPartitioner()])
    return program.to_executorch().buffer


def _float_prefix(app: nn.Module, spec: ArchSpec, float_convs: int) -> tuple[nn.Module, set[str]]:
    """A copy of ``app`` whose first ``float_convs`` convolutions are FloatConv modules (their
    BatchNorm and ReLU folded in and replaced by identities), and the names of those layers."""
    app = copy.deepcopy(app)
    layers = list(spec.layers())
    floats = conv_names(spec)[:float_convs]
    names = set(floats)
    for i, layer in enumerate(layers):
        if layer.name not in floats:
            continue
        following = layers[i + 1:i + 3]
        bn = following[0] if following and following[0].kind == "bn" else None
        rest = following[1:] if bn else following
        relu = rest[0] if rest and rest[0].kind == "relu" else None
        setattr(app.model, layer.name, FloatConv(getattr(app.model, layer.name),
                                                 getattr(app.model, bn.name) if bn else None, relu is not None))
        for folded in (bn, relu):
            if folded is not None:
                setattr(app.model, folded.name, nn.Identity())
                names.add(folded.name)
    return app, names


def _quantised(app: nn.Module, spec: ArchSpec, calibration_g: np.ndarray, float_convs: int) -> nn.Module:
    """The XNNPACK PT2E flow: export, annotate the model's layers except the float32 prefix (the
    input scaling and normalisation stay float32 too), observe the calibration windows one at a
    time (the program's static [1, 1, window] shape), convert to quantise/dequantise pairs."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    app, float_layers = _float_prefix(app, spec, float_convs)

    def quantised_layer(node: torch.fx.Node) -> bool:
        if node.op != "call_function":
            return True  # weights and biases follow the operator they feed
        layers = {path.split(".")[1] for path, _ in node.meta.get("nn_module_stack", {}).values()
                  if path.startswith("model.")}
        return bool(layers) and not layers & float_layers

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    if float_convs:
        quantizer.set_filter_function(quantised_layer)
    example = _example(spec)
    prepared = prepare_pt2e(torch.export.export(app, example).module(), quantizer)
    with torch.no_grad():
        for row in np.asarray(calibration_g, dtype=np.float32):
            prepared(torch.from_numpy(row).reshape(example[0].shape))
    return convert_pt2e(prepared)
