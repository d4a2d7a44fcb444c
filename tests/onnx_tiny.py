"""Tiny contract-conforming ONNX graphs built with onnx.helper, for framework-free export/verify tests.

Graph: x [batch, window] milli-g -> x * 1e-3 -> MatMul W -> Add b -> Softmax; finished through
converters.contract.finish, so names, metadata and the self-check are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.contract import ExportInfo, Exporter, ExportResult, Source, finish, softmax
from deepepi.preprocessing import Preprocessing

PRE = Preprocessing()
EXPORTER = Exporter("numpy", np.__version__, "onnx.helper", onnx.__version__)


def tiny_weights(window: int = 64, classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.3, (window, classes)).astype(np.float32),
            rng.normal(0, 0.1, classes).astype(np.float32))


def tiny_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    """Exporter-style raw graph: arbitrary I/O names and batch symbol, which ``finish`` conforms."""
    window, classes = w.shape
    nodes = [helper.make_node("Mul", ["x", "scale"], ["g"]),
             helper.make_node("MatMul", ["g", "W"], ["z"]),
             helper.make_node("Add", ["z", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["y"], axis=-1)]
    inits = [numpy_helper.from_array(np.array(PRE.scale, np.float32), "scale"),
             numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", window])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def reference(w: np.ndarray, b: np.ndarray):  # noqa: ANN201 - returns a Reference callable
    return lambda raw: softmax(PRE.apply(raw).astype(np.float64) @ w + b)


def info(window: int, classes: int = 2, params: int | None = None) -> ExportInfo:
    source = Source(file="tiny.npz", sha256="0" * 64, sample_freq=25, step=125, preprocessing=PRE)
    return ExportInfo(source, window=window, num_classes=classes,
                      trainable_parameters=params if params is not None else window * classes + classes,
                      spec_json='{"tiny": true}')


def write_tiny(path: Path, w: np.ndarray, b: np.ndarray) -> ExportResult:
    return finish(tiny_model(w, b), path, info(w.shape[0], w.shape[1]), EXPORTER, reference(w, b))
