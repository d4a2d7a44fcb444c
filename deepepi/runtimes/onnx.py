"""ONNX adapter: onnxruntime (CPU by default) on a file that follows the deepepi ONNX contract.

The contract (input ``acc`` milli-g [batch, window], output ``probabilities`` [batch, 2], opset 17,
full metadata) is checked when the file is opened; a file that breaks it is a one-line ModelError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from converters.contract import contract_problems, graph_io, input_window, read_metadata
from converters.session import DEFAULT_PROVIDERS, load_onnx, open_session, run_session
from deepepi.core.errors import ModelError
from deepepi.runtimes.base import NUM_CLASSES, Adapter


@dataclass
class OnnxRuntime(Adapter):
    path: Path
    window: int
    metadata: dict[str, str]
    session: Any  # onnxruntime.InferenceSession
    threads: int | None
    format: str = "onnx"

    def _proba(self, x_milli_g: np.ndarray) -> np.ndarray:
        return run_session(self.session, x_milli_g, label=str(self.path))

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"format": self.format, "path": str(self.path), "runtime": "onnxruntime",
                "runtime_version": ort.__version__, "providers": list(self.session.get_providers()),
                "intra_op_threads": self.threads}


def _window(model: Any, source: str) -> int:
    window = input_window(model)
    if window is None or window < 1:
        raise ModelError(f"breaks the ONNX contract: expected one input [batch, window], got "
                         f"{[list(i[2]) for i in graph_io(model).inputs]}", source=source)
    return window


def load(path: Path, *, threads: int | None = None,
         providers: Sequence[str] = DEFAULT_PROVIDERS) -> OnnxRuntime:
    source = str(path)
    model = load_onnx(path)
    window = _window(model, source)
    problems = contract_problems(model, window=window, num_classes=NUM_CLASSES)
    if problems:
        raise ModelError("breaks the ONNX contract: " + "; ".join(problems), source=source)
    session = open_session(model.SerializeToString(), providers, source=source, threads=threads,
                           error=ModelError, quiet_providers=False)
    return OnnxRuntime(path, window, read_metadata(model), session, threads)
