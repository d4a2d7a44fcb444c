"""What verification runs on: model files opened in their runtimes, and input windows.

ONNX files are opened here, leniently: a graph that breaks the contract must still run so the checks
can report *how* it breaks it (exit 1), where ``deepepi.runtimes``' ONNX adapter refuses it. Every
other format (.tflite, .pte, ...) opens through ``deepepi.runtimes.open_model``. Every failure here
means verification cannot start, so it raises UnusableInputError (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx

from converters.contract import INPUT_NAME, OUTPUT_NAME, graph_io, read_metadata, realistic_windows
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


@dataclass(frozen=True)
class Inputs:
    """Raw milli-g windows, their labels and event ids when known, and a description for the report."""

    raw: np.ndarray
    labels: np.ndarray | None
    source: dict
    event_id: np.ndarray | None = None


def random_inputs(n: int, window: int, *, seed: int) -> Inputs:
    if n < 1:
        raise UnusableInputError(f"--random: got {n}, expected a positive number of windows")
    return Inputs(realistic_windows(n, window, seed=seed), None,
                  {"kind": "random", "n": n, "seed": seed})


def csv_inputs(csv: str | Path, window: int, config: str | Path | None) -> Inputs:
    """Raw milli-g windows and labels from a flattened OSDB CSV, windowed as the config says."""
    from deepepi.core.config import load_config
    from deepepi.data.csvio import load_csv
    from deepepi.data.windows import windows_from_config

    cfg = load_config(config)
    if cfg.window != window:
        raise UnusableInputError(f"config window {cfg.window} (sampleFreq x bufferSeconds) differs "
                                 f"from the models' input window {window}", source=cfg.source)
    try:
        windows = windows_from_config(load_csv(csv), cfg, raw=True)
    except DeepEpiError as exc:
        raise UnusableInputError(str(exc)) from None
    if len(windows) == 0:
        raise UnusableInputError("no complete windows in the data", source=str(csv))
    return Inputs(np.ascontiguousarray(windows.X, dtype=np.float32), np.asarray(windows.y),
                  {"kind": "csv", "path": str(csv), "config": cfg.source, "n": len(windows),
                   "events": int(len(np.unique(windows.event_id)))},
                  np.asarray(windows.event_id))


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


@dataclass
class Subject:
    """One side of a comparison: its runtime, and the parsed graph when it is an ONNX file."""

    runtime: Any  # deepepi.runtimes.Runtime
    proto: onnx.ModelProto | None

    @property
    def used(self) -> list[str]:
        """Providers (onnxruntime) or delegates (LiteRT, ExecuTorch) the runtime runs on."""
        info = self.runtime.describe()
        return list(info.get("providers") or info.get("delegates") or [info.get("runtime", "?")])


def _open_onnx(path: Path, providers: Sequence[str]) -> Subject:
    proto = load_onnx(path)
    inputs = graph_io(proto).inputs
    dims = inputs[0][2] if len(inputs) == 1 else ()
    window = dims[1] if len(dims) == 2 and isinstance(dims[1], int) else 0
    runtime = OnnxFile(path, proto, open_session(path, providers), metadata=read_metadata(proto),
                       window=window)
    return Subject(runtime, proto)


def _open_other(path: Path, providers: Sequence[str]) -> Subject:
    from deepepi.runtimes import open_model

    if not path.is_file():  # verify compares files: a directory or device is not one
        raise UnusableInputError("not a regular file" if path.exists() else "model file not found",
                                 source=str(path))
    try:
        return Subject(open_model(path), None)
    except DeepEpiError as exc:
        raise UnusableInputError(str(exc)) from None


OPENERS = {".onnx": _open_onnx}  # every other suffix: the runtime adapters' own open_model


def open_subject(path: str | Path, providers: Sequence[str]) -> Subject:
    """Open ``path`` for comparison (``providers`` apply to ONNX files)."""
    path = Path(path)
    return OPENERS.get(path.suffix.lower(), _open_other)(path, providers)
