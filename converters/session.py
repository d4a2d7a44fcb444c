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
from deepepi.core.errors import DeepEpiError, UnusableInputError

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


def quiet_default_logger(severity: int) -> None:
    """Raise onnxruntime's process-wide log threshold (4: nothing; 3: errors only)."""
    import onnxruntime as ort

    ort.set_default_logger_severity(severity)


def session_options(threads: int | None = None):  # noqa: ANN201 - ort.SessionOptions
    """Options with the session's own log quiet below errors; ``threads`` caps intra-op threads
    (one inter-op thread then)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def inference_session(model: str | Path | bytes, providers: Sequence[str] = DEFAULT_PROVIDERS,
                      options: Any = None):  # noqa: ANN201 - ort.InferenceSession
    """The one place an ``onnxruntime.InferenceSession`` is made (from a path or serialised bytes).
    Failures propagate as onnxruntime raises them; the ``open_*`` helpers name the file instead."""
    import onnxruntime as ort

    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=options,
                                providers=list(providers))


def open_session(model: str | Path | bytes, providers: Sequence[str], *, source: str | None = None,
                 threads: int | None = None, error: type[DeepEpiError] = UnusableInputError,
                 quiet_providers: bool = True):  # noqa: ANN201 - ort.InferenceSession
    """A session on a file (or the bytes of ``source``), quiet logs; a graph onnxruntime cannot load is
    ``error`` naming it. ``quiet_providers`` silences onnxruntime's own report of a provider that
    cannot start (verify reports it, once); the runtime adapters leave it on."""
    if quiet_providers:
        quiet_default_logger(4)
    try:
        return inference_session(model, providers, session_options(threads))
    except Exception as exc:  # onnxruntime's exception classes are not part of its public API
        raise error(f"onnxruntime cannot load the model: {first_line(exc)}",
                    source=source if source is not None else str(model)) from None


def open_session_bytes(content: bytes, *, label: str | None, error: type[DeepEpiError] = UnusableInputError,
                       what: str = "the model", whole_message: bool = False):  # noqa: ANN201
    """A CPU session on an in-memory graph (an export not yet written), for self-checks: a graph
    onnxruntime cannot load is ``error`` "onnxruntime cannot load <what>: <reason>" (its first line,
    or the whole message with ``whole_message``, as the ONNX exporters have always reported it)."""
    try:
        return inference_session(content)
    except Exception as exc:  # onnxruntime's exception classes are not part of its public API
        raise error(f"onnxruntime cannot load {what}: {exc if whole_message else first_line(exc)}",
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
