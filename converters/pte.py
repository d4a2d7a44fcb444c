"""PyTorch DeepEpi -> ExecuTorch .pte in the phone app's convention, XNNPACK-delegated.

The app feeds float32 [1, 1, window] in g and applies its own softmax to the outputs
(converters.app_meta.PTE), so the program returns logits. ``torch.export`` -> ExecuTorch's
``to_edge_transform_and_lower`` with the XNNPACK partitioner -> ``to_executorch``; every failure is
an ExportError (the reference reported a failed export as success). Imported lazily (needs torch
and executorch).
"""

from __future__ import annotations

import torch
from torch import nn

from converters.app_meta import PTE
from converters.contract import Exporter
from deepepi.errors import ExportError
from deepepi.models.spec import ArchSpec
from deepepi.preprocessing import FLAT_STD, Preprocessing
from deepepi.quiet import captured_output


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


def exporter_info(quantize: str | None = None) -> Exporter:
    from importlib.metadata import version

    return Exporter("pytorch", torch.__version__, "executorch (XNNPACK)", version("executorch"))


def convert(model: nn.Module, spec: ArchSpec, preprocessing: Preprocessing, *,
            quantize: str | None = None, calibration_g: object = None) -> bytes:
    """The serialised ExecuTorch program (static input [1, 1, window]); float32 only."""
    if quantize is not None:
        raise ExportError(f"--quantize {quantize} is not offered for .pte (float32 only); "
                          f"quantise the ONNX or TFLite export instead")
    was_training = model.training
    model.eval()
    example = (torch.zeros(*PTE.shape(spec.window), dtype=torch.float32),)
    try:
        with captured_output() as log:
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

            try:
                exported = torch.export.export(AppModule(model, spec.window, preprocessing).eval(), example)
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
