"""Model runtimes: one adapter per model file format behind one protocol, chosen by a table.

``open_model(path)`` looks the path's kind up in ``LOADERS`` (a file suffix, or ``run_dir`` for a
directory) and calls that module's ``load(path, *, threads)``. Adapter modules are imported only
when used, so a framework is imported only when a model of that framework is opened. Adding a format
means adding one adapter module and one entry here; callers (evaluate, predict, verify) never branch
on the format.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from deepepi.core.errors import ModelError
from deepepi.runtimes.base import Adapter, Runtime

RUN_DIR = "run_dir"
LOADERS: dict[str, str] = {
    ".onnx": "deepepi.runtimes.onnx",
    RUN_DIR: "deepepi.runtimes.rundir",
    ".pt": "deepepi.runtimes.torch",
    ".keras": "deepepi.runtimes.keras",
    ".tflite": "deepepi.runtimes.tflite",
    ".pte": "deepepi.runtimes.pte",
}


def kind_of(path: Path) -> str:
    """The ``LOADERS`` key of a path: ``run_dir`` for a directory, else its lower-case suffix."""
    return RUN_DIR if path.is_dir() else path.suffix.lower()


def open_model(path: str | Path, *, threads: int | None = None) -> Runtime:
    """Open a model of any supported format; ``threads`` caps the runtime's intra-op threads."""
    path = Path(path)
    if not path.exists():
        raise ModelError("no such model file or run directory", source=str(path))
    if threads is not None and threads < 1:
        raise ModelError(f"threads must be >= 1, got {threads}", source=str(path))
    module = LOADERS.get(kind_of(path))
    if module is None:
        known = ", ".join(k for k in LOADERS if k != RUN_DIR)
        raise ModelError(f"unknown model format {path.suffix or '(no suffix)'!r}; expected a run directory "
                         f"or one of {known}", source=str(path))
    runtime = importlib.import_module(module).load(path, threads=threads)
    if not isinstance(runtime, Adapter):  # the checks on every prediction live in Adapter.predict_proba
        raise TypeError(f"{module}.load returned {type(runtime).__name__}, not a runtimes.base.Adapter")
    return runtime


__all__ = ["Runtime", "LOADERS", "RUN_DIR", "kind_of", "open_model"]
