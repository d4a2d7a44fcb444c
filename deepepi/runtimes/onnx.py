"""ONNX adapter: onnxruntime (CPU by default) on a file that follows the deepepi ONNX contract.

The contract (input ``acc`` milli-g [batch, window], output ``probabilities`` [batch, 2], opset 17,
full metadata) is checked when the file is opened; a file that breaks it is a one-line ModelError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from converters.contract import contract_problems, graph_io, read_metadata
from deepepi.core.errors import ModelError
from deepepi.runtimes.base import NUM_CLASSES, check_acc, check_proba
from converters.session import DEFAULT_PROVIDERS, first_line, load_onnx, run_session


@dataclass
class OnnxRuntime:
    path: Path
    window: int
    metadata: dict[str, str]
    session: Any  # onnxruntime.InferenceSession
    threads: int | None
    format: str = "onnx"

    def predict_proba(self, acc_milli_g: np.ndarray) -> np.ndarray:
        x = check_acc(acc_milli_g, self.window, str(self.path))
        return check_proba(run_session(self.session, x, label=str(self.path)), len(x), str(self.path))

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"format": self.format, "path": str(self.path), "runtime": "onnxruntime",
                "runtime_version": ort.__version__, "providers": list(self.session.get_providers()),
                "intra_op_threads": self.threads}


def _window(model: Any, source: str) -> int:
    inputs = graph_io(model).inputs
    dims = inputs[0][2] if len(inputs) == 1 else ()
    if len(dims) != 2 or not isinstance(dims[1], int) or dims[1] < 1:
        raise ModelError(f"breaks the ONNX contract: expected one input [batch, window], got "
                         f"{[list(i[2]) for i in inputs]}", source=source)
    return dims[1]


def load(path: Path, *, threads: int | None = None,
         providers: Sequence[str] = DEFAULT_PROVIDERS) -> OnnxRuntime:
    import onnxruntime as ort

    source = str(path)
    model = load_onnx(path)
    window = _window(model, source)
    problems = contract_problems(model, window=window, num_classes=NUM_CLASSES)
    if problems:
        raise ModelError("breaks the ONNX contract: " + "; ".join(problems), source=source)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                       providers=list(providers))
    except Exception as exc:  # onnxruntime's exception classes are not part of its public API
        raise ModelError(f"onnxruntime cannot load the model: {first_line(exc)}", source=source) from None
    return OnnxRuntime(path, window, read_metadata(model), session, threads)
