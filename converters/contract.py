"""The ONNX I/O contract both exporters follow, and the finishing steps they share.

Contract: one input ``acc`` float32 [batch, window] of raw acceleration magnitude in milli-g (as in
the CSV), the training preprocessing inside the graph, one output ``probabilities`` float32
[batch, num_classes] (softmax inside the graph), dynamic axis named ``batch``, default-domain opset
17, a single self-contained file, and ``metadata_props`` describing where the model came from.

``conform`` names the I/O and records metadata; ``converters.check.finish_onnx`` is the last step of
every export (conform, ONNX checker, contract, onnxruntime vs the native model, then the atomic
write). Framework-free (onnx, numpy), so ``deepepi verify`` can use it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from deepepi import __version__
from deepepi.core.constants import SAMPLE_FREQ_HZ
from deepepi.core.errors import ExportError
from deepepi.core.preprocessing import Preprocessing

INPUT_NAME = "acc"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "batch"
OPSET = 17
CLASS_NAMES = ("non-seizure", "seizure")
SELF_CHECK_ATOL = 1e-5
SELF_CHECK_BATCHES = (1, 32)

# metadata_props keys, in the order they are written.
META_KEYS = ("deepepi_version", "framework", "framework_version", "exporter", "exporter_version",
             "sample_freq", "window", "step", "preprocessing", "class_names",
             "trainable_parameters", "spec", "source_file", "source_sha256")
# Optional metadata_props: the validation-chosen decision threshold (p1 > t is a seizure), written
# when the run directory records one; read by evaluate, predict and the app-side sidecars.
THRESHOLD_KEY = "decision_threshold"
# JSON: how training chose that threshold (rule, false-alarm budget, validation figures; RUN/threshold.json)
RULE_KEY = "decision_rule"
# The run's movement gate (dataProcessing.accSdThreshold, %), so a file carries its whole Decision
# (deepepi.scoring.decision) without the run's config beside it.
GATE_KEY = "acc_sd_threshold_pct"
# The run's WarnTime and AlarmTime (dataProcessing.warnTime / alarmTime, seconds): the rest of the Decision.
WARN_KEY = "warn_time_s"
ALARM_KEY = "alarm_time_s"
# "true" / "false": the run's dataProcessing.validateDatapoints, so evaluate and predict cut a bare file's
# windows as training did (gaps zero-filled, windows through them) without the run's config beside it.
VALIDATE_KEY = "validate_datapoints"
OPTIONAL_META_KEYS = (THRESHOLD_KEY, RULE_KEY, GATE_KEY, WARN_KEY, ALARM_KEY, VALIDATE_KEY)

Reference = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Source:
    """Where the exported model came from and how its training windows were cut."""

    file: str
    sha256: str
    sample_freq: int
    step: int
    preprocessing: Preprocessing
    decision_threshold: float | None = None
    decision_rule: str | None = None  # JSON (runs.layout.threshold_rule_json)
    acc_sd_threshold_pct: float | None = None
    warn_time_s: float | None = None
    alarm_time_s: float | None = None
    validate_datapoints: bool | None = None


@dataclass(frozen=True)
class ExportInfo:
    """Everything recorded in ``metadata_props``, apart from the exporter's names and versions."""

    source: Source
    window: int
    num_classes: int
    trainable_parameters: int
    spec_json: str


@dataclass(frozen=True)
class Exporter:
    """Which framework and converter produced a graph (names and versions go into metadata)."""

    framework: str
    framework_version: str
    exporter: str
    exporter_version: str


def metadata(info: ExportInfo, exporter: Exporter) -> dict[str, str]:
    """All metadata values as strings (ONNX metadata_props are string pairs); the optional
    ``decision_threshold`` only when the source records one."""
    src = info.source
    names = list(CLASS_NAMES) if info.num_classes == len(CLASS_NAMES) else \
        [str(i) for i in range(info.num_classes)]
    values = {
        "deepepi_version": __version__,
        "framework": exporter.framework,
        "framework_version": exporter.framework_version,
        "exporter": exporter.exporter,
        "exporter_version": exporter.exporter_version,
        "sample_freq": str(src.sample_freq),
        "window": str(info.window),
        "step": str(src.step),
        "preprocessing": json.dumps(src.preprocessing.to_dict(), sort_keys=True),
        "class_names": json.dumps(names),
        "trainable_parameters": str(int(info.trainable_parameters)),
        "spec": info.spec_json,
        "source_file": src.file,
        "source_sha256": src.sha256,
    }
    ordered = {key: values[key] for key in META_KEYS}
    if src.decision_threshold is not None:
        ordered[THRESHOLD_KEY] = repr(float(src.decision_threshold))
        if src.decision_rule is not None:
            ordered[RULE_KEY] = src.decision_rule
    if src.acc_sd_threshold_pct is not None:
        ordered[GATE_KEY] = repr(float(src.acc_sd_threshold_pct))
    for key, value in ((WARN_KEY, src.warn_time_s), (ALARM_KEY, src.alarm_time_s)):
        if value is not None:
            ordered[key] = repr(float(value))
    if src.validate_datapoints is not None:
        ordered[VALIDATE_KEY] = "true" if src.validate_datapoints else "false"
    return ordered


def read_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {prop.key: prop.value for prop in model.metadata_props}


def missing_metadata(model: onnx.ModelProto) -> list[str]:
    """The contract's metadata keys that ``model`` lacks, in ``META_KEYS`` order."""
    present = read_metadata(model)
    return [key for key in META_KEYS if key not in present]


@dataclass(frozen=True)
class GraphIO:
    """The graph's I/O signature: names, element types and shapes (int, or str for a named axis)."""

    inputs: tuple[tuple[str, int, tuple[int | str | None, ...]], ...]
    outputs: tuple[tuple[str, int, tuple[int | str | None, ...]], ...]
    opset: int | None

    def to_dict(self) -> dict:
        def side(values: tuple) -> list[dict]:
            return [{"name": n, "dtype": onnx.TensorProto.DataType.Name(t), "shape": list(s)}
                    for n, t, s in values]
        return {"inputs": side(self.inputs), "outputs": side(self.outputs), "opset": self.opset}


def _value_info(value: onnx.ValueInfoProto) -> tuple[str, int, tuple[int | str | None, ...]]:
    tensor = value.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in tensor.shape.dim)
    return value.name, tensor.elem_type, dims


def input_window(model: onnx.ModelProto | GraphIO) -> int | None:
    """The window length the graph's input declares: the second axis of its one rank-2 input when
    that axis is a fixed size (an int, not checked for being >= 1); None for any other input side."""
    inputs = (model if isinstance(model, GraphIO) else graph_io(model)).inputs
    dims = inputs[0][2] if len(inputs) == 1 else ()
    return dims[1] if len(dims) == 2 and isinstance(dims[1], int) else None


def graph_io(model: onnx.ModelProto) -> GraphIO:
    initializers = {init.name for init in model.graph.initializer}
    inputs = tuple(_value_info(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(_value_info(v) for v in model.graph.output)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return GraphIO(inputs, outputs, opset)


def contract_problems(model: onnx.ModelProto, *, window: int, num_classes: int) -> list[str]:
    """Every way ``model`` departs from the contract; empty when it conforms."""
    io = graph_io(model)
    problems = []
    f32 = onnx.TensorProto.FLOAT
    if len(io.inputs) != 1 or io.inputs[0][:2] != (INPUT_NAME, f32) \
            or io.inputs[0][2] != (BATCH_DIM, window):
        problems.append(f"input must be {INPUT_NAME} float32 [{BATCH_DIM}, {window}], "
                        f"got {_describe(io.inputs)}")
    if len(io.outputs) != 1 or io.outputs[0][:2] != (OUTPUT_NAME, f32) \
            or io.outputs[0][2] != (BATCH_DIM, num_classes):
        problems.append(f"output must be {OUTPUT_NAME} float32 [{BATCH_DIM}, {num_classes}], "
                        f"got {_describe(io.outputs)}")
    if io.opset != OPSET:
        problems.append(f"default-domain opset must be {OPSET}, got {io.opset}")
    missing = missing_metadata(model)
    if missing:
        problems.append("metadata_props lack " + ", ".join(missing))
    return problems


def _describe(values: tuple) -> str:
    return "; ".join(f"{n} {onnx.TensorProto.DataType.Name(t).lower()} {list(s)}"
                     for n, t, s in values) or "none"


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def conform(model: onnx.ModelProto, info: ExportInfo, exporter: Exporter) -> onnx.ModelProto:
    """Name the I/O and batch axis per the contract, drop unused opset imports, set metadata."""
    graph = model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(f"exported graph has {len(graph.input)} inputs and {len(graph.output)} "
                          f"outputs; the contract needs exactly one of each", source=exporter.exporter)
    _rename(graph, graph.input[0].name, INPUT_NAME)
    _rename(graph, graph.output[0].name, OUTPUT_NAME)
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 2:
            dims[0].Clear()
            dims[0].dim_param = BATCH_DIM
    used = {node.domain for node in graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata(info, exporter))
    return model


def realistic_windows(n: int, window: int, *, seed: int, sample_freq: int = SAMPLE_FREQ_HZ) -> np.ndarray:
    """Raw milli-g windows like a wrist sensor's: gravity ~1 g, noise, some 2-7 Hz shaking bursts.

    Used by the exporters' self-check and by ``deepepi verify --random``; seeded, so reproducible.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(window, dtype=np.float64) / sample_freq
    base = rng.normal(1000.0, 30.0, (n, 1)) + rng.normal(0.0, rng.uniform(5, 60, (n, 1)), (n, window))
    freq = rng.uniform(2.0, 7.0, (n, 1))
    amp = rng.uniform(0.0, 600.0, (n, 1)) * (rng.random((n, 1)) < 0.5)
    onset = rng.uniform(0, t[-1], (n, 1))
    shake = amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1))) * (t >= onset)
    return np.clip(base + shake, 0.0, 4000.0).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row softmax in float64 then cast, the reference the graphs are held to."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float
    metadata: dict[str, str]
