"""PyTorch DeepEpi -> ExecuTorch .pte in the phone app's convention, XNNPACK-delegated.

The app feeds float32 [1, 1, window] in g and applies its own softmax to the outputs
(converters.app_meta.PTE), so the program returns logits. ``torch.export`` -> ExecuTorch's
``to_edge_transform_and_lower`` with the XNNPACK partitioner -> ``to_executorch``; every failure is
an ExportError (the reference reported a failed export as success). ``int8`` inserts ExecuTorch's
XNNPACK PT2E quantizer (symmetric per-channel weights, static int8 activations calibrated on
training windows; float32 I/O) before lowering. Unlike the ONNX and TFLite int8 files, the whole
network is quantised, the first convolution included: an XNNPACK program whose float32 first
convolution feeds int8 ones fails to load (XNNCompiler: "Failed to create depthwise convolution
node 11 with code: xnn_status_invalid_parameter", executorch 1.5.1). Imported lazily (needs torch
and executorch).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

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


QUANTIZE = ("int8",)


def exporter_info(quantize: str | None = None) -> Exporter:
    from importlib.metadata import version

    return Exporter("pytorch", torch.__version__, "executorch (XNNPACK)", version("executorch"))


def convert(model: nn.Module, spec: ArchSpec, preprocessing: Preprocessing, *,
            quantize: str | None = None, calibration_g: np.ndarray | None = None,
            check_g: np.ndarray | None = None) -> bytes:
    """The serialised ExecuTorch program (static input [1, 1, window]); float32, or ``int8``
    calibrated on ``calibration_g`` [n, window] in g. ``check_g`` (the converters' shared signature)
    is not used: the int8 program is quantised whole, since XNNPACK refuses a float32 first
    convolution feeding int8 ones, so there is no float32 prefix to size on it."""
    if quantize not in (None, *QUANTIZE):
        raise ExportError(f"--quantize {quantize} is not offered for .pte (float32 or int8); "
                          f"quantise the ONNX or TFLite export instead")
    if quantize == "int8" and (calibration_g is None or len(calibration_g) == 0):
        raise ExportError("int8 quantisation needs calibration windows")
    was_training = model.training
    model.eval()
    example = (torch.zeros(*PTE.shape(spec.window), dtype=torch.float32),)
    try:
        with captured_output() as log:
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

            try:
                app = AppModule(model, spec.window, preprocessing).eval()
                if quantize == "int8":
                    app = _int8(app, example, calibration_g)
                exported = torch.export.export(app, example)
                program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
                return program.to_executorch().buffer
            except Exception as exc:  # torch.export and exir raise many unrelated types
                failure = exc
    finally:
        model.train(was_training)
    text = str(failure).strip()
    raise ExportError(f"ExecuTorch export failed: {type(failure).__name__}: "
                      f"{text.splitlines()[0] if text else ''}"
                      f"{' (' + log.last_line() + ')' if log.last_line() else ''}")


def _int8(app: nn.Module, example: tuple[torch.Tensor], calibration_g: np.ndarray) -> nn.Module:
    """The XNNPACK PT2E flow: export, annotate, observe the calibration windows one at a time
    (the program's static [1, 1, window] shape), convert to quantise/dequantise pairs."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(torch.export.export(app, example).module(), quantizer)
    with torch.no_grad():
        for row in np.asarray(calibration_g, dtype=np.float32):
            prepared(torch.from_numpy(row).reshape(example[0].shape))
    return convert_pt2e(prepared)
