"""Small verification checks: each looks at one property and returns a Check with its figures.

Framework-free: onnx, numpy and the models' runtimes, so verification runs where neither training
framework is installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from converters.check import checker_error
from converters.contract import (BATCH_DIM, INPUT_NAME, META_KEYS, OUTPUT_NAME, GraphIO,
                                 contract_problems, graph_io, input_window)
from deepepi.core.errors import UnusableInputError
from deepepi.scoring.agreement import argmax_agreement, predicted_class, same_class
from deepepi.scoring.metrics import Counts
from deepepi.verify import stats
from converters.session import first_line
from deepepi.verify.inputs import Subject

PASS, FAIL, INFO = "PASS", "FAIL", "INFO"
# Metadata that must match for two graphs to describe the same task on the same input.
CONTRACT_META = ("sample_freq", "window", "step", "preprocessing", "class_names")
SOFTMAX_TOL = 1e-5


@dataclass
class Check:
    """One row of the verification table; ``figures`` go into the JSON report unchanged."""

    name: str
    status: str
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


def _status(ok: bool) -> str:
    return PASS if ok else FAIL


def file_check(subject: Subject, label: str) -> Check:
    """ONNX: the checker with full shape inference, as the exporters run it. Other formats: their
    runtime loaded the file and checked its I/O convention when it was opened."""
    if subject.proto is None:
        info = subject.runtime.describe()
        return Check(f"file {label}", PASS, f"{info['format']}: loaded by {info['runtime']} "
                     f"{info['runtime_version']} ({', '.join(subject.used)})", {"runtime": info})
    exc = checker_error(subject.proto)
    if exc is not None:
        return Check(f"file {label}", FAIL, f"onnx checker: {first_line(exc)}", {"error": str(exc)})
    return Check(f"file {label}", PASS, "onnx checker: valid (full_check)")


def io_window(io: GraphIO, label: str) -> tuple[int, int]:
    """(window, num_classes) of a graph that follows the contract's names and ranks.

    Anything else makes the two graphs impossible to feed the same input, hence UnusableInputError.
    """
    if len(io.inputs) != 1 or io.inputs[0][0] != INPUT_NAME or len(io.inputs[0][2]) != 2:
        raise UnusableInputError(f"input must be one tensor {INPUT_NAME!r} [{BATCH_DIM}, window], "
                                 f"got {io.to_dict()['inputs']}", source=label)
    if len(io.outputs) != 1 or io.outputs[0][0] != OUTPUT_NAME or len(io.outputs[0][2]) != 2:
        raise UnusableInputError(f"output must be one tensor {OUTPUT_NAME!r} [{BATCH_DIM}, classes], "
                                 f"got {io.to_dict()['outputs']}", source=label)
    window, classes = input_window(io), io.outputs[0][2][1]
    if not isinstance(window, int) or not isinstance(classes, int) or window < 1 or classes < 1:
        raise UnusableInputError(f"window and class axes must be fixed sizes, got input "
                                 f"{list(io.inputs[0][2])} and output {list(io.outputs[0][2])}",
                                 source=label)
    return window, classes


def _shape(subject: Subject, label: str) -> tuple[int, int]:
    """(window, num_classes): from the graph for ONNX, else the runtime's window and class names."""
    if subject.proto is not None:
        return io_window(graph_io(subject.proto), label)
    try:
        classes = len(json.loads(subject.runtime.metadata["class_names"]))
    except (KeyError, TypeError, ValueError):
        raise UnusableInputError("metadata lacks readable class_names", source=label) from None
    return int(subject.runtime.window), classes


def comparable(a: Subject, b: Subject, labels: tuple[str, str]) -> tuple[int, int]:
    """(window, num_classes) shared by both models, or UnusableInputError when they differ.

    Every metadata key must be present: metadata is serialised last, so a file cut short between
    two entries still parses, and only the missing keys give it away.
    """
    for subject, label in zip((a, b), labels):
        missing = [key for key in META_KEYS if key not in subject.runtime.metadata]
        if missing:
            raise UnusableInputError(f"not a complete deepepi model file (truncated, or not exported "
                                     f"by deepepi): metadata lacks {', '.join(missing)}", source=label)
    wa = _shape(a, labels[0])
    wb = _shape(b, labels[1])
    if wa != wb:
        raise UnusableInputError(f"contract mismatch, cannot compare: {labels[0]} takes window {wa[0]} "
                                 f"with {wa[1]} classes, {labels[1]} takes window {wb[0]} with "
                                 f"{wb[1]} classes")
    return wa


def _io(subject: Subject) -> dict:
    if subject.proto is not None:
        return graph_io(subject.proto).to_dict()
    info = subject.runtime.describe()
    return {"format": info["format"], "window": subject.runtime.window}


def contract_match(a: Subject, b: Subject, *, window: int, num_classes: int) -> Check:
    """Each ONNX file follows the contract; two ONNX files have identical I/O signature and opset;
    every pair has identical contract metadata (preprocessing included). The other formats' I/O
    conventions were checked by their runtimes when opened."""
    io_a, io_b = _io(a), _io(b)
    meta_a, meta_b = a.runtime.metadata, b.runtime.metadata
    differences = [f"{label}: {problem}" for label, subject in (("A", a), ("B", b))
                   if subject.proto is not None
                   for problem in contract_problems(subject.proto, window=window, num_classes=num_classes)]
    if a.proto is not None and b.proto is not None:
        differences += [f"graph {key}" for key in io_a if io_a[key] != io_b[key]]
    for key in CONTRACT_META:
        if key not in meta_a or key not in meta_b:
            differences.append(f"metadata {key} missing")
        elif _parsed(meta_a[key]) != _parsed(meta_b[key]):
            differences.append(f"metadata {key}: {meta_a[key]} vs {meta_b[key]}")
    figures = {"io_a": io_a, "io_b": io_b,
               "metadata_a": {k: meta_a.get(k) for k in CONTRACT_META},
               "metadata_b": {k: meta_b.get(k) for k in CONTRACT_META}, "differences": differences}
    same_io = "identical I/O, opset" if a.proto is not None and b.proto is not None else \
        "each file's own I/O convention"
    detail = f"{same_io}, preprocessing" if not differences else "; ".join(differences)
    return Check("contract + preprocessing", _status(not differences), detail, figures)


def _parsed(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:  # not JSON, or (a damaged file) bytes that are not UTF-8
        return value


def _initializer_floats(model: onnx.ModelProto | None) -> int | None:
    if model is None:
        return None
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
              onnx.TensorProto.BFLOAT16)
    return int(sum(int(np.prod(init.dims)) for init in model.graph.initializer
                   if init.data_type in floats))


def parameter_counts(a: Subject, b: Subject) -> Check:
    """Trainable counts from metadata must match; ONNX initializer floats are shown only for
    information because each exporter folds BatchNorm differently."""
    counts = []
    for subject in (a, b):
        value = subject.runtime.metadata.get("trainable_parameters")
        counts.append(int(value) if value is not None and value.isdigit() else None)
    figures = {"trainable_a": counts[0], "trainable_b": counts[1],
               "initializer_floats_a": _initializer_floats(a.proto),
               "initializer_floats_b": _initializer_floats(b.proto)}
    ok = counts[0] is not None and counts[0] == counts[1]
    detail = (f"trainable {counts[0]} vs {counts[1]} (initializer floats "
              f"{figures['initializer_floats_a']} vs {figures['initializer_floats_b']}, info)")
    return Check("trainable parameters", _status(ok), detail, figures)


def softmax_sanity(probs: np.ndarray, label: str, *, tol: float = SOFTMAX_TOL) -> Check:
    """Rows sum to 1 within ``tol``, every value in [0, 1], nothing NaN or infinite."""
    p = np.asarray(probs, dtype=np.float64)
    finite = bool(np.isfinite(p).all())
    row_err = float(np.max(np.abs(p.sum(axis=1) - 1.0))) if finite and p.size else None
    in_range = finite and bool(((p >= 0.0) & (p <= 1.0)).all())
    figures = {"non_finite": int(np.size(p) - np.count_nonzero(np.isfinite(p))),
               "max_row_sum_error": row_err,
               "min": float(np.nanmin(p)) if p.size else None,
               "max": float(np.nanmax(p)) if p.size else None}
    ok = finite and in_range and row_err is not None and row_err <= tol
    detail = (f"max |row sum - 1| {row_err:.2e}, range [{figures['min']:.3g}, {figures['max']:.3g}]"
              if finite and p.size else f"{figures['non_finite']} non-finite values")
    return Check(f"softmax {label}", _status(ok), detail, figures)


def diff_stats(a: np.ndarray, b: np.ndarray, *, rtol: float) -> dict[str, float]:
    """Abs and rel error of ``a`` against ``b``, and the smallest atol for which
    |a - b| <= atol + rtol * |b| holds everywhere (Polygraphy's rule)."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    abs_err = np.abs(a64 - b64)
    rel_err = abs_err / np.maximum(np.abs(b64), 1e-12)
    return {
        "max_abs": float(abs_err.max()), "mean_abs": float(abs_err.mean()),
        "p99_abs": float(np.percentile(abs_err, 99)),
        "max_rel": float(rel_err.max()), "mean_rel": float(rel_err.mean()),
        "p99_rel": float(np.percentile(rel_err, 99)),
        "atol_needed": float(max(0.0, (abs_err - rtol * np.abs(b64)).max())),
    }


def tolerance(a: np.ndarray, b: np.ndarray, *, atol: float, rtol: float, enforce: bool) -> Check:
    """Difference statistics; a FAIL condition only when ``enforce`` (same-weights mode)."""
    stats = diff_stats(a, b, rtol=rtol)
    ok = bool(np.isfinite(list(stats.values())).all()) and stats["atol_needed"] <= atol
    detail = (f"max abs {stats['max_abs']:.2e}, p99 abs {stats['p99_abs']:.2e}, max rel "
              f"{stats['max_rel']:.2e}; atol needed {stats['atol_needed']:.2e} at rtol {rtol:g} "
              f"(limit {atol:g})")
    figures = dict(stats, atol=atol, rtol=rtol, within_tolerance=ok)
    return Check("A vs B difference", _status(ok) if enforce else INFO, detail, figures)


def agreement(a: np.ndarray, b: np.ndarray, labels: np.ndarray | None, *,
              min_agreement: float | None) -> Check:
    """Argmax agreement overall and per true class; a FAIL condition when ``min_agreement`` is set."""
    pred_a, pred_b = predicted_class(a), predicted_class(b)
    same = same_class(a, b)
    overall = argmax_agreement(a, b)
    per_class = {}
    if labels is not None:
        for cls in np.unique(labels):
            mask = labels == cls
            per_class[str(int(cls))] = {"n": int(mask.sum()), "agreement": float(same[mask].mean())}
    classes = a.shape[1]
    figures = {"agreement": overall, "disagreements": int((~same).sum()), "n": int(same.size),
               "per_class": per_class, "min_agreement": min_agreement,
               "predicted_a": np.bincount(pred_a, minlength=classes).tolist(),
               "predicted_b": np.bincount(pred_b, minlength=classes).tolist()}
    detail = f"{overall:.4%} of {same.size} windows"
    if per_class:
        detail += " (" + ", ".join(f"class {c}: {v['agreement']:.4%}" for c, v in per_class.items()) + ")"
    if same.size and len(np.unique(pred_a)) == 1 and len(np.unique(pred_b)) == 1:
        # Two constant predictors agree trivially; say so rather than let 100% look like evidence.
        detail += f"; note: A and B each predict one class only ({pred_a[0]}, {pred_b[0]})"
    if min_agreement is None:
        return Check("argmax agreement", INFO, detail, figures)
    return Check("argmax agreement", _status(overall >= min_agreement),
                 detail + f", need >= {min_agreement:.2%}", figures)


def rates(probs: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """Window-level TPR and FPR, with 'seizure' (class 1) predicted when it is the argmax; counted
    by the training metrics' ``Counts`` so both report the same numbers."""
    c = Counts.from_labels(labels, predicted_class(probs))
    return {"tp": c.tp, "fn": c.fn, "fp": c.fp, "tn": c.tn, "tpr": c.tpr, "fpr": c.fpr}


def rates_side_by_side(a: np.ndarray, b: np.ndarray, labels: np.ndarray | None) -> Check:
    """Both models' TPR and FPR (information for trained mode)."""
    if labels is None:
        return Check("TPR / FPR", INFO, "n/a (input has no labels)", {})
    ra, rb = rates(a, labels), rates(b, labels)

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.4f}"
    detail = (f"A: TPR {fmt(ra['tpr'])} FPR {fmt(ra['fpr'])}; "
              f"B: TPR {fmt(rb['tpr'])} FPR {fmt(rb['fpr'])}")
    return Check("TPR / FPR", INFO, detail, {"a": ra, "b": rb})


def fires_both_classes(probs: np.ndarray, labels: np.ndarray | None, label: str) -> Check:
    """On labelled data holding both classes, a model that predicts one class only is useless (and two
    such models agree perfectly): FAIL with what it predicts."""
    name = f"predicts both classes {label}"
    if labels is None or len(np.unique(labels)) < 2:
        return Check(name, INFO, "n/a (the input does not hold both classes)", {})
    pred = predicted_class(probs)
    counts = np.bincount(pred, minlength=probs.shape[1]).tolist()
    ok = int(np.count_nonzero(counts)) >= 2
    detail = (f"windows per predicted class {counts}" if ok else
              f"predicts class {int(pred[0])} for all {len(pred)} windows, though the labels hold both "
              f"classes ({'never fires' if int(pred[0]) == 0 else 'always fires'})")
    return Check(name, _status(ok), detail, {"predicted": counts})


def paired_statistics(a: np.ndarray, b: np.ndarray, labels: np.ndarray | None, event_id: np.ndarray | None, *,
                      margins: dict[str, float], seed: int = 0) -> Check:
    """Trained mode: window- and event-level TPR/FPR differences with 95 % bootstrap-by-event intervals
    against the seed-to-seed margins, plus McNemar on the paired window predictions (information)."""
    name = "TPR / FPR difference vs seed spread"
    if labels is None or event_id is None:
        return Check(name, FAIL, "needs labelled data with events (--data CSV)", {})
    pred_a, pred_b = predicted_class(a), predicted_class(b)
    table = stats.EventTable.build(pred_a, pred_b, labels, event_id)
    intervals = stats.bootstrap(table, draws=stats.BOOTSTRAP.draws, seed=seed, confidence=stats.BOOTSTRAP.level)
    test = stats.mcnemar(pred_a == labels, pred_b == labels)
    beyond = [r for r in stats.RATES if stats.beyond_margin(intervals[r], margins[r])]

    def fmt(rate: str) -> str:
        i = intervals[rate]
        if i["diff"] is None:
            return f"{rate} n/a"
        return f"{rate} {i['diff']:+.3f} [{i['low']:+.3f}, {i['high']:+.3f}] (margin {margins[rate]:.2f})"
    detail = "; ".join(fmt(r) for r in stats.RATES) + f"; McNemar p {test['p_value']:.2g} (info)"
    if beyond:
        detail = f"beyond the seed spread: {', '.join(beyond)}; " + detail
    figures = {"intervals": intervals, "margins": margins, "beyond_margin": beyond, "mcnemar": test,
               "events": len(table.pos), "confidence": stats.BOOTSTRAP.level, "draws": stats.BOOTSTRAP.draws}
    return Check(name, _status(not beyond), detail, figures)


def from_gate(row: Any) -> Check:
    """A row of the shared quantised gate (``converters.check.quantized_gate``) as a report line."""
    return Check(row.name, INFO if row.ok is None else _status(row.ok), row.detail, dict(row.figures))


def rates_at_decision(rows: list[Any]) -> Check:
    """Quantized mode: both models' figures at A's Decision (window TPR/FPR by ``Counts``, events by the
    decision's logics), from the gate's drop row: the same numbers that gated the file."""
    drop = next((r for r in rows if r.name == "quantised accuracy drop"), None)
    if drop is None:
        return Check("TPR / FPR at the decision", INFO, "n/a (input has no labels)", {})
    fa, fb = drop.figures["a"], drop.figures["b"]
    logic = fa["primary"]

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.4f}"

    def side(f: dict) -> str:
        e = f["event"][logic]
        return (f"window TPR {fmt(f['window']['tpr'])} FPR {fmt(f['window']['fpr'])}, events "
                f"{e['detected']}/{e['seizure_events']} ({logic}), false alarms {e['false_alarms']}")
    return Check("TPR / FPR at the decision", INFO, f"A: {side(fa)}; B: {side(fb)}",
                 {"decision": fa["decision"], "a": fa, "b": fb})
