"""The LiteRT (``ai-edge-litert``) interpreter loop, as the app runs it: one window per invoke.

Shared by the TFLite exporter (the int8 bisection's agreement) and the .tflite runtime adapter.
Framework-free apart from LiteRT itself, which is imported when an interpreter is made.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def interpreter(content: bytes, *, threads: int | None = None, allocate: bool = True) -> Any:
    """A LiteRT interpreter on a flatbuffer, tensors allocated (not when only its graph is read)."""
    from ai_edge_litert.interpreter import Interpreter

    loaded = Interpreter(model_content=content, num_threads=threads)
    if allocate:
        loaded.allocate_tensors()
    return loaded


def invoke_each(loaded: Any, windows: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """float32 [n, outputs]: each row of ``windows`` reshaped to ``shape`` and invoked alone, the
    first output's row 0 kept (the app's batch of one)."""
    (inp,), (out,) = loaded.get_input_details(), loaded.get_output_details()
    rows = np.asarray(windows, dtype=np.float32)
    result = np.empty((len(rows), int(out["shape"][-1])), dtype=np.float32)
    for i, row in enumerate(rows):
        loaded.set_tensor(inp["index"], row.reshape(shape))
        loaded.invoke()
        result[i] = loaded.get_tensor(out["index"])[0]
    return result
