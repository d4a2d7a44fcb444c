"""PyTorch DeepEpi -> ONNX with torch.onnx's TorchScript exporter, under the shared contract.

Why TorchScript and not dynamo: in this torch the dynamo exporter only emits opset >= 18 and its
down-conversion to 17 fails on ReduceMean, while the TorchScript exporter writes a clean opset-17
graph with the batch axis named directly. Imported lazily (needs torch).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from converters.contract import (BATCH_DIM, INPUT_NAME, OPSET, OUTPUT_NAME, ExportInfo, Exporter,
                                 ExportResult, Reference, Source, softmax)
from converters.check import finish_onnx
from deepepi.core.errors import ExportError
from deepepi.models.deepepi_cnn.spec import ArchSpec
from deepepi.models.torch_weights import count_parameters
from deepepi.core.preprocessing import FLAT_STD, Preprocessing


class ContractModule(nn.Module):
    """acc [batch, window] milli-g -> training preprocessing -> model (eval) -> softmax."""

    def __init__(self, model: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.model = model
        self.scale = float(preprocessing.scale)
        self.normalise = bool(preprocessing.normalise)

    def forward(self, acc: torch.Tensor) -> torch.Tensor:
        x = acc * self.scale
        if self.normalise:
            centred = x - x.mean(dim=-1, keepdim=True)
            std = torch.sqrt((centred * centred).mean(dim=-1, keepdim=True))
            x = centred / torch.where(std > FLAT_STD, std, torch.ones_like(std))
        return torch.softmax(self.model(x), dim=-1)


def native_reference(model: nn.Module, preprocessing: Preprocessing) -> Reference:
    """Numpy preprocessing + the native forward pass in eval mode + softmax: what the graph must match."""
    def reference(raw: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = model(torch.from_numpy(preprocessing.apply(raw)))
        return softmax(logits.numpy())
    return reference


def exporter_info() -> Exporter:
    return Exporter("pytorch", torch.__version__, "torch.onnx (TorchScript)", torch.__version__)


def to_onnx(model: nn.Module, spec: ArchSpec, preprocessing: Preprocessing) -> onnx.ModelProto:
    """The raw exported graph (not yet checked or written)."""
    wrapper = ContractModule(model, preprocessing).eval()
    buffer = io.BytesIO()
    example = torch.zeros(2, spec.window, dtype=torch.float32)
    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation on every call; the choice is deliberate.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(wrapper, (example,), buffer, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}},
                              do_constant_folding=True)
        except Exception as exc:  # torch.onnx raises many unrelated types; one typed error for all
            raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    return onnx.load_from_string(buffer.getvalue())


def export(model: nn.Module, spec: ArchSpec, out: str | Path, source: Source, *,
           reference: Reference | None = None, seed: int = 0) -> ExportResult:
    """Export ``model`` to ``out`` under the contract; ``reference`` defaults to the native model.

    Raises ExportError and writes nothing when the onnxruntime self-check disagrees by > 1e-5.
    """
    was_training = model.training
    model.eval()
    try:
        graph = to_onnx(model, spec, source.preprocessing)
        info = ExportInfo(source, spec.window, spec.num_classes, count_parameters(model).trainable,
                          spec.to_json())
        check = reference or native_reference(model, source.preprocessing)
        return finish_onnx(graph, out, info, exporter_info(), check, seed=seed)
    finally:
        model.train(was_training)
