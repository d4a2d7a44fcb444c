"""The LiteRT interpreter (``ai-edge-litert``) behind the Runtime protocol, for .tflite files.

The file follows the app's convention (float32 [1, window, 1] in g, softmax [1, 2] out, see
converters.app_meta.TFLITE); this adapter maps the protocol's milli-g windows onto it, one window per
invoke as the app does. Imported lazily (needs ai-edge-litert).
"""

from __future__ import annotations

from importlib import metadata as pkg_metadata
from pathlib import Path

import numpy as np

from converters import app_meta, litert
from deepepi.core.errors import UnusableInputError
from deepepi.core.quiet import captured_output
from converters.session import first_line
from deepepi.runtimes.base import Adapter


class TFLiteRuntime(Adapter):
    """One .tflite model in a LiteRT interpreter; ``predict_proba`` takes milli-g windows."""

    format = "tflite"

    def __init__(self, content: bytes, sidecar: dict, *, path: str | Path,
                 threads: int | None = None) -> None:
        self.path = Path(path)
        self.window = app_meta.check_convention(sidecar, app_meta.TFLITE, str(self.path))
        self.metadata = app_meta.runtime_metadata(sidecar)
        self._scale = np.float32(app_meta.preprocessing(self.metadata, str(self.path)).scale)
        self._threads = threads
        try:
            with captured_output():  # "Created TensorFlow Lite XNNPACK delegate" and the like
                self._interpreter = litert.interpreter(content, threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise UnusableInputError(f"LiteRT cannot load the model: {first_line(exc)}",
                                     source=str(self.path)) from None
        inp, out = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        shape = [int(d) for d in inp[0]["shape"]] if len(inp) == 1 else None
        if shape != app_meta.TFLITE.shape(self.window) or len(out) != 1:
            raise UnusableInputError(f"expected one input float32 {app_meta.TFLITE.shape(self.window)} "
                                     f"and one output, got inputs {[list(d['shape']) for d in inp]}",
                                     source=str(self.path))
        self.num_classes = int(out[0]["shape"][-1])

    def _proba(self, x_milli_g: np.ndarray) -> np.ndarray:
        """[n, window] milli-g -> [n, classes] probabilities (the file's softmax, read directly)."""
        return litert.invoke_each(self._interpreter, x_milli_g * self._scale, app_meta.TFLITE.shape(self.window))

    def describe(self) -> dict:
        return {"format": self.format, "path": str(self.path), "runtime": "ai-edge-litert",
                "runtime_version": pkg_metadata.version("ai-edge-litert"),
                "delegates": ["XNNPACK (LiteRT default CPU delegate)"], "threads": self._threads}


def load(path: str | Path, *, threads: int | None = None) -> TFLiteRuntime:
    """Open ``path`` and its sidecar ``path.json`` (the ``deepepi.runtimes.LOADERS`` entry point)."""
    path = Path(path)
    if not path.is_file():
        raise UnusableInputError("TFLite file not found", source=str(path))
    return TFLiteRuntime(path.read_bytes(), app_meta.read(path), path=path, threads=threads)
