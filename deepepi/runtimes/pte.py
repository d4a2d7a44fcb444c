"""The ExecuTorch runtime behind the Runtime protocol, for .pte files.

The file follows the app's convention (float32 [1, 1, window] in g, logits [1, 2] out, see
converters.app_meta.PTE); this adapter feeds one window per call as the app does and applies the
softmax the app applies. ExecuTorch's Python runtime exchanges torch tensors, so it needs torch
(the ``deploy`` extra pulls both). Imported lazily.
"""

from __future__ import annotations

from importlib import metadata as pkg_metadata
from pathlib import Path

import numpy as np

from converters import app_meta
from converters.contract import softmax
from deepepi.core.errors import UnusableInputError
from deepepi.core.quiet import captured_output
from deepepi.runtimes.base import Adapter, check_acc
from converters.session import first_line


class PteRuntime(Adapter):
    """One .pte program's ``forward`` method; ``predict_proba`` takes milli-g windows."""

    format = "pte"

    def __init__(self, content: bytes, sidecar: dict, *, path: str | Path,
                 threads: int | None = None) -> None:
        with captured_output():  # torchao announces optional kernels it cannot load
            from executorch.runtime import Runtime
        self.path = Path(path)
        self.window = app_meta.check_convention(sidecar, app_meta.PTE, str(self.path))
        self.metadata = app_meta.runtime_metadata(sidecar)
        self._delegate = sidecar["io"].get("delegate") or "portable kernels"
        self._scale = np.float32(app_meta.preprocessing(self.metadata, str(self.path)).scale)
        self._threads = threads
        if threads is not None:
            # ExecuTorch's CPU threadpool is process-wide; its Python bindings expose only this setter.
            from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

            with captured_output():  # "Resetting threadpool to N threads."
                _unsafe_reset_threadpool(threads)
        try:
            with captured_output():  # cpuinfo probing lines from the C++ runtime
                # The method borrows from its program: both must live as long as the adapter.
                self._program = Runtime.get().load_program(content)
                self._method = self._program.load_method("forward")
        except (ValueError, RuntimeError) as exc:
            raise UnusableInputError(f"ExecuTorch cannot load the program: {first_line(exc)}",
                                     source=str(self.path)) from None
        meta = self._method.metadata
        sizes = [list(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())]
        if sizes != [app_meta.PTE.shape(self.window)] or meta.num_outputs() != 1:
            raise UnusableInputError(f"expected one input float32 {app_meta.PTE.shape(self.window)} "
                                     f"and one output, got inputs {sizes}", source=str(self.path))
        self.num_classes = int(meta.output_tensor_meta(0).sizes()[-1])

    def logits(self, acc_milli_g: np.ndarray) -> np.ndarray:
        """[n, window] milli-g -> [n, classes] logits, exactly what the file returns."""
        import torch

        x = check_acc(acc_milli_g, self.window, str(self.path)) * self._scale
        out = np.empty((len(x), self.num_classes), dtype=np.float32)
        for i, row in enumerate(x):
            tensor = torch.from_numpy(np.ascontiguousarray(row.reshape(1, 1, self.window)))
            out[i] = self._method.execute([tensor])[0].numpy()[0]
        return out

    def _proba(self, x_milli_g: np.ndarray) -> np.ndarray:
        """Probabilities: softmax over the logits, as the app computes it."""
        return softmax(self.logits(x_milli_g))

    def describe(self) -> dict:
        return {"format": self.format, "path": str(self.path), "runtime": "executorch",
                "runtime_version": pkg_metadata.version("executorch"),
                "delegates": [self._delegate],
                "threads": self._threads}


def load(path: str | Path, *, threads: int | None = None) -> PteRuntime:
    """Open ``path`` and its sidecar ``path.json`` (the ``deepepi.runtimes.LOADERS`` entry point)."""
    path = Path(path)
    if not path.is_file():
        raise UnusableInputError(".pte file not found", source=str(path))
    return PteRuntime(path.read_bytes(), app_meta.read(path), path=path, threads=threads)
