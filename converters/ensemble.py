"""One ONNX graph for a Harrell-Davis ensemble: every member on the same ``acc``, one quantile out.

The members are our exported ONNX files (either framework, mixed freely). Their graphs are copied
in under the prefixes ``m0_``, ``m1_``, ... and all read the one ``acc`` input; their seizure
probabilities are sorted per window and combined with Harrell-Davis weights for the quantile ``q``:
``w_i = I_{i/n}(a, b) - I_{(i-1)/n}(a, b)``, ``a = (n+1)q``, ``b = (n+1)(1-q)``, I the regularised
incomplete beta. The output keeps the contract: ``probabilities[batch, 2]``, column 1 the quantile,
column 0 one minus it.

``q`` is an optional float32 scalar graph input whose initializer is the default (also recorded in
metadata as ``hd_q_default``), so the weights are computed inside the graph, in float64, from
whatever q is fed. Because a + b = n + 1 is an integer, the hypergeometric form of the incomplete
beta, ``I_x(a,b) = x^a (1-x)^b / (a B(a,b)) * sum_k (n+1)_k / (a+1)_k x^k``, is a series of positive
terms; it is evaluated only at arguments <= 1/2 (the upper tail through the same series in b at 1-x),
where ``HD_TERMS`` terms bound the truncation error by 1e-18 for every q. B(a,b) is the sum of the
lower and upper integrals at x = 1/2, so no gamma function is needed. Weights match scipy's
``beta.cdf`` increments to ~1e-14. q outside (0, 1) gives NaN probabilities.

Framework-free (onnx, onnxruntime, numpy): an ensemble is built from ONNX files alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converters.check import finish_graph
from converters.contract import (ALARM_KEY, BATCH_DIM, CLASS_NAMES, GATE_KEY, INPUT_NAME, META_KEYS, OPSET, OUTPUT_NAME,
                                 VALIDATE_KEY, WARN_KEY,
                                 ExportResult, contract_problems, read_metadata)
from converters.session import inference_session, quiet_default_logger
from deepepi import __version__
from deepepi.core.constants import DEFAULT_ENSEMBLE_Q
from deepepi.core.errors import ModelError, SpecError

Q_NAME = "q"
DEFAULT_Q = DEFAULT_ENSEMBLE_Q  # defined in deepepi.core.constants so that the CLI reads it without onnx
SELF_CHECK_ATOL = 1e-6
IR_VERSION = 8  # the IR version that goes with opset 17; onnxruntime may not read newer ones
SHARED_META = ("sample_freq", "window", "step", "preprocessing", "class_names")  # members must agree
EXTRA_META = ("hd_q_default", "hd_q_input", "ensemble_members")
# The members' deployment settings: carried when every member records the same value, so evaluate,
# predict and verify use them on the ensemble as on a member; validate_datapoints is part of the input
# contract (it changes the windows), so members that differ are refused. The members' thresholds are
# not carried: the ensemble's probability is another score (choose its threshold with evaluate).
AGREED_META = (GATE_KEY, WARN_KEY, ALARM_KEY, VALIDATE_KEY)


def hd_terms(n: int, tol: float = 1e-18) -> int:
    """Series terms for ``n`` members: term k at x <= 1/2 is at most C(n+k, k) / 2^k for any q, so
    stop once that bound is below ``tol`` and the ratio of successive terms is below 3/4."""
    term, k = 1.0, 0
    while True:
        ratio = (n + 1 + k) / (1 + k) * 0.5
        if ratio < 0.75 and term < tol:
            return k + 1
        term *= ratio
        k += 1


class _Graph:
    """Collects nodes and float64 constants under one name prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, value: np.ndarray | float, dtype: type = np.float64) -> str:
        name = f"{self.prefix}c{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: object) -> str:
        self._count += 1
        out = f"{self.prefix}{op_type.lower()}{self._count}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def _series(g: _Graph, c: str, y: np.ndarray, n: int, terms: int) -> str:
    """sum_k (n+1)_k / (c+1)_k y^k for each constant y (all <= 1/2) and runtime c > 0: [len(y)]."""
    j = np.arange(terms - 1, dtype=np.float64)
    log_ratio = g.op("Log", g.op("Div", g.const(n + 1 + j), g.op("Add", c, g.const(1 + j))))
    log_rising = g.op("Concat", g.const([0.0]), g.op("CumSum", log_ratio, g.const(0, np.int64)), axis=0)
    k_log_y = np.arange(terms, dtype=np.float64)[None, :] * np.log(y)[:, None]
    terms_ = g.op("Exp", g.op("Add", g.const(k_log_y), log_rising))
    return g.op("ReduceSum", terms_, g.const([1], np.int64), keepdims=0)


def _tail_integral(g: _Graph, a: str, b: str, y: np.ndarray, c: str, y_series: np.ndarray,
                   n: int, terms: int) -> str:
    """y^a (1-y)^b / c * series(c, y_series): the lower (c=a, y_series=y) or upper (c=b,
    y_series=1-y) incomplete beta integral, unnormalised."""
    log_pre = g.op("Add", g.op("Mul", a, g.const(np.log(y))), g.op("Mul", b, g.const(np.log1p(-y))))
    return g.op("Div", g.op("Mul", g.op("Exp", log_pre), _series(g, c, y_series, n, terms)), c)


def hd_weight_nodes(n: int, q_input: str, prefix: str = "hd_") -> tuple[_Graph, str]:
    """Nodes computing the n Harrell-Davis weights (float64 [n]) from the float32 scalar ``q_input``."""
    g = _Graph(prefix)
    q = g.op("Cast", q_input, to=TensorProto.DOUBLE)
    valid = g.op("And", g.op("Greater", q, g.const(0.0)), g.op("Less", q, g.const(1.0)))
    if n == 1:
        return g, g.op("Where", valid, g.const([1.0]), g.const([np.nan]))
    terms = hd_terms(n)
    a = g.op("Mul", q, g.const(float(n + 1)))
    b = g.op("Sub", g.const(float(n + 1)), a)
    x = np.arange(1, n, dtype=np.float64) / n
    half = np.array([0.5])
    lower_y, upper_y = np.concatenate([x[x <= 0.5], half]), np.concatenate([x[x > 0.5], half])
    lower = _tail_integral(g, a, b, lower_y, a, lower_y, n, terms)  # integral 0..y
    upper = _tail_integral(g, a, b, upper_y, b, 1.0 - upper_y, n, terms)  # integral y..1
    last = g.const([-1], np.int64)
    beta_ab = g.op("Add", g.op("Gather", lower, last), g.op("Gather", upper, last))  # B(a, b), [1]
    parts = [g.const([0.0]), g.op("Div", g.op("Slice", lower, g.const([0], np.int64), last), beta_ab)]
    if len(upper_y) > 1:
        upper_cdf = g.op("Div", g.op("Slice", upper, g.const([0], np.int64), last), beta_ab)
        parts.append(g.op("Sub", g.const([1.0]), upper_cdf))
    cdf = g.op("Concat", *parts, g.const([1.0]), axis=0)  # I at 0, 1/n, ..., 1
    ends = (g.const([1], np.int64), g.const([n + 1], np.int64), g.const([0], np.int64), g.const([n], np.int64))
    weights = g.op("Sub", g.op("Slice", cdf, ends[0], ends[1]), g.op("Slice", cdf, ends[2], ends[3]))
    return g, g.op("Where", valid, weights, g.const(np.full(n, np.nan)))


def harrell_davis_weights(n: int, q: float) -> np.ndarray:
    """The in-graph weights evaluated through onnxruntime (for tests and inspection)."""
    g, out = hd_weight_nodes(n, Q_NAME)
    graph = helper.make_graph(g.nodes, "hd_weights", [helper.make_tensor_value_info(Q_NAME, TensorProto.FLOAT, [])],
                              [helper.make_tensor_value_info(out, TensorProto.DOUBLE, [n])], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    session = inference_session(model.SerializeToString())
    return session.run(None, {Q_NAME: np.asarray(q, dtype=np.float32)})[0]


@dataclass(frozen=True)
class Member:
    """One member graph and where it came from."""

    path: Path
    model: onnx.ModelProto

    @property
    def metadata(self) -> dict[str, str]:
        return read_metadata(self.model)


def _parsed(value: str) -> object:
    """A metadata value compared by meaning: JSON values parsed, anything else as text."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _check_members(members: list[Member]) -> dict[str, str]:
    """The contract metadata every member shares (window, step, preprocessing, ...), or a ModelError."""
    if not members:
        raise ModelError("an ensemble needs at least one member")
    first = members[0].metadata
    for m in members:
        meta = m.metadata
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            raise ModelError(f"not a deepepi ONNX file: metadata lacks {', '.join(missing)}", source=str(m.path))
        problems = contract_problems(m.model, window=int(meta["window"]), num_classes=len(CLASS_NAMES))
        if problems:
            raise ModelError("; ".join(problems), source=str(m.path))
        for key in SHARED_META:
            if _parsed(meta[key]) != _parsed(first[key]):
                raise ModelError(f"metadata {key} {meta[key]} differs from {members[0].path}'s {first[key]}; "
                                 "ensemble members must share one input contract", source=str(m.path))
        if any(o.domain in ("", "ai.onnx") and o.version != OPSET for o in m.model.opset_import):
            raise ModelError(f"default-domain opset must be {OPSET}", source=str(m.path))
        if meta.get(VALIDATE_KEY, "false") != first.get(VALIDATE_KEY, "false"):
            raise ModelError(f"metadata {VALIDATE_KEY} {meta.get(VALIDATE_KEY, 'not recorded')} differs from "
                             f"{members[0].path}'s {first.get(VALIDATE_KEY, 'not recorded')}; ensemble members must "
                             "cut the same windows", source=str(m.path))
    agreed = {key: first[key] for key in AGREED_META
              if key in first and all(_parsed(m.metadata.get(key, "")) == _parsed(first[key]) for m in members)}
    return {**{key: first[key] for key in SHARED_META}, **agreed}


def _member_nodes(members: list[Member]) -> tuple[list, list, list[str], list[onnx.OperatorSetIdProto], list]:
    """Every member's nodes and initializers under its prefix, reading ``acc``; their outputs' names."""
    nodes, inits, outputs, functions = [], [], [], []
    opsets: dict[str, int] = {}
    for i, m in enumerate(members):
        prefixed = onnx.compose.add_prefix(m.model, f"m{i}_", rename_inputs=False)
        nodes += list(prefixed.graph.node)
        inits += list(prefixed.graph.initializer)
        functions += list(prefixed.functions)
        outputs.append(prefixed.graph.output[0].name)
        for o in prefixed.opset_import:
            opsets[o.domain] = max(o.version, opsets.get(o.domain, 0))
    return nodes, inits, outputs, [helper.make_opsetid(d, v) for d, v in sorted(opsets.items())], functions


def build(members: list[Member], *, q: float = DEFAULT_Q) -> onnx.ModelProto:
    """The ensemble graph with its contract metadata (not yet checked or written)."""
    if not 0.0 < q < 1.0:
        raise SpecError(f"--q: got {q}, expected 0 < q < 1")
    shared = _check_members(members)
    n, window = len(members), int(shared["window"])
    nodes, inits, outputs, opsets, functions = _member_nodes(members)
    g, weights = hd_weight_nodes(n, Q_NAME)
    e = _Graph("ens_")
    seizure = [e.op("Slice", out, e.const([1], np.int64), e.const([2], np.int64), e.const([1], np.int64))
               for out in outputs]
    scores = e.op("Concat", *seizure, axis=1) if n > 1 else seizure[0]  # [batch, n]
    ascending = e.op("TopK", scores, e.const([n], np.int64), axis=1, largest=0, sorted=1)
    e.nodes[-1].output.append(f"{ascending}_indices")
    quantile = e.op("MatMul", e.op("Cast", ascending, to=TensorProto.DOUBLE), weights)  # [batch]
    p1 = e.op("Unsqueeze", quantile, e.const([1], np.int64))
    both = e.op("Concat", e.op("Sub", e.const(1.0), p1), p1, axis=1)
    e.nodes.append(helper.make_node("Cast", [both], [OUTPUT_NAME], name="ens_output", to=TensorProto.FLOAT))
    q_default = numpy_helper.from_array(np.asarray(q, dtype=np.float32), Q_NAME)
    graph = helper.make_graph(
        nodes + g.nodes + e.nodes, "deepepi_hd_ensemble",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, window]),
         helper.make_tensor_value_info(Q_NAME, TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, len(CLASS_NAMES)])],
        inits + g.initializers + e.initializers + [q_default])
    model = helper.make_model(graph, opset_imports=opsets, functions=functions,
                              ir_version=max([IR_VERSION, *(m.model.ir_version for m in members)]))
    helper.set_model_props(model, _metadata(members, shared, q))
    return model


def _metadata(members: list[Member], shared: dict[str, str], q: float) -> dict[str, str]:
    metas = [m.metadata for m in members]
    listing = [{"file": str(m.path), "sha256": hashlib.sha256(m.model.SerializeToString()).hexdigest(),
                "framework": meta["framework"], "trainable_parameters": int(meta["trainable_parameters"]),
                "source_file": meta["source_file"], "source_sha256": meta["source_sha256"]}
               for m, meta in zip(members, metas)]
    members_json = json.dumps(listing, sort_keys=True)
    values = {**shared, "deepepi_version": __version__, "framework": "ensemble",
              "framework_version": ",".join(sorted({meta["framework"] for meta in metas})),
              "exporter": "deepepi.converters.ensemble", "exporter_version": __version__,
              "trainable_parameters": str(sum(x["trainable_parameters"] for x in listing)),
              "spec": json.dumps({"aggregation": "harrell-davis", "members": [json.loads(meta["spec"]) for meta in metas]}),
              "source_file": ",".join(x["file"] for x in listing),
              "source_sha256": hashlib.sha256(members_json.encode()).hexdigest(),
              "hd_q_default": repr(float(q)), "hd_q_input": Q_NAME, "ensemble_members": members_json}
    return {key: values[key] for key in (*META_KEYS, *EXTRA_META, *(k for k in AGREED_META if k in values))}


def members_reference(members: list[Member], q: float):  # noqa: ANN201 - a Reference callable
    """numpy Harrell-Davis over each member's own onnxruntime output: what the graph must equal."""
    from deepepi.models.quantile import harrell_davis

    sessions = [inference_session(m.model.SerializeToString()) for m in members]

    def reference(raw: np.ndarray) -> np.ndarray:
        p = np.stack([s.run([OUTPUT_NAME], {INPUT_NAME: raw})[0][:, 1] for s in sessions], axis=1)
        hd = np.asarray(harrell_davis(p.astype(np.float64), q, axis=1))
        return np.stack([1.0 - hd, hd], axis=1)

    return reference


def export(members: list[Member], out: str | Path, *, q: float = DEFAULT_Q, seed: int = 0) -> ExportResult:
    """Build, check (ONNX checker, contract, onnxruntime vs numpy HD over the members to 1e-6) and
    write ``out`` atomically; nothing is written when a check fails."""
    model = build(members, q=q)

    def reference():  # noqa: ANN202 - a Reference callable
        quiet_default_logger(3)  # not the warning that the overridable q cannot be constant-folded
        return members_reference(members, q)

    return finish_graph(model, out, reference, window=int(read_metadata(model)["window"]), what="ensemble",
                        seed=seed, atol=SELF_CHECK_ATOL)
