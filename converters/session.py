"""Every onnxruntime session in the project opens here: parsing a file, choosing providers,
opening on a path or on bytes not yet written, and running in bounded chunks.

A missing, truncated or unrunnable graph is UnusableInputError naming the file, with onnxruntime's
first line of explanation (its messages run to many lines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx

from converters.contract import INPUT_NAME, OUTPUT_NAME
from deepepi.core.errors import UnusableInputError

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
RUN_CHUNK = 1024


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (onnx and onnxruntime errors run to many lines),
    or its type name when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Parse an ONNX file; a missing, truncated or non-ONNX file is UnusableInputError."""
    path = Path(path)
    if not path.is_file():
        raise UnusableInputError("not a regular file" if path.exists() else "ONNX file not found",
                                 source=str(path))
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and onnx's own loader errors have no common base
        raise UnusableInputError(f"not a readable ONNX model (truncated or another format): "
                                 f"{type(exc).__name__}", source=str(path)) from None
    if model.ir_version <= 0 or len(model.graph.node) == 0 or len(model.graph.output) == 0:
        raise UnusableInputError("not an ONNX model (no IR version, nodes or outputs)", source=str(path))
    return model


def resolve_providers(requested: Sequence[str] | None) -> list[str]:
    """Providers to ask onnxruntime for; CPU by default so results are the reproducible baseline."""
    import onnxruntime as ort

    providers = list(requested) if requested else list(DEFAULT_PROVIDERS)
    available = ort.get_available_providers()
    unknown = [p for p in providers if p not in available]
    if unknown:
        raise UnusableInputError(f"--providers: {', '.join(unknown)} not available; this onnxruntime "
                                 f"offers {', '.join(available)}")
    return providers


def open_session(path: str | Path, providers: Sequence[str]):  # noqa: ANN201 - ort.InferenceSession
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # a provider that cannot start is reported by us, once
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
    except Exception as exc:  # onnxruntime's exception classes are not part of its public API
        raise UnusableInputError(f"onnxruntime cannot load the model: {first_line(exc)}",
                                 source=str(path)) from None


def open_session_bytes(content: bytes, *, label: str):  # noqa: ANN201 - ort.InferenceSession
    """A CPU session on an in-memory graph (an export not yet written), for self-checks."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(content, providers=list(DEFAULT_PROVIDERS))
    except Exception as exc:  # onnxruntime's exception classes are not part of its public API
        raise UnusableInputError(f"onnxruntime cannot load the model: {first_line(exc)}",
                                 source=label) from None


def run_session(session, raw: np.ndarray, *, label: str,  # noqa: ANN001 - ort.InferenceSession
                chunk: int = RUN_CHUNK) -> np.ndarray:
    """Probabilities for ``raw`` [n, window] milli-g, in chunks to bound memory.

    A graph that loads but cannot run (a broken node) cannot be compared: UnusableInputError.
    """
    try:
        parts = [session.run([OUTPUT_NAME], {INPUT_NAME: raw[i:i + chunk]})[0]
                 for i in range(0, len(raw), chunk)]
    except Exception as exc:  # onnxruntime's exception classes are not part of its public API
        raise UnusableInputError(f"onnxruntime cannot run the model: {first_line(exc)}",
                                 source=label) from None
    return np.concatenate(parts, axis=0)


@dataclass
class OnnxFile:
    """A contract ONNX file in onnxruntime, behind the Runtime protocol, without refusing a broken
    contract (the checks report it); ``proto`` is the parsed graph for the checker and graph I/O."""

    path: Path
    proto: onnx.ModelProto
    session: Any  # onnxruntime.InferenceSession
    format: str = "onnx"
    metadata: dict[str, str] = field(default_factory=dict)
    window: int = 0

    def predict_proba(self, acc_milli_g: np.ndarray) -> np.ndarray:
        return run_session(self.session, np.ascontiguousarray(acc_milli_g, dtype=np.float32),
                           label=str(self.path))

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"format": self.format, "path": str(self.path), "runtime": "onnxruntime",
                "runtime_version": ort.__version__, "providers": list(self.session.get_providers())}
