"""The last step of every export: check, then write. One mechanism for every file deepepi writes
that a runtime will run: the ONNX exports (``finish_onnx``), the ensemble graph (``finish_graph``)
and the deployment files (.tflite, .pte, quantised ONNX: ``finish``).

The exported bytes are loaded into the runtime that will run them (onnxruntime, LiteRT, ExecuTorch)
and compared with the source model (``compare``) before anything is written: float32 exports must
match within 1e-5 (max abs, probabilities; 1e-6 for the ensemble graph) on realistic windows at the
self-check's batch sizes; quantised exports must keep argmax agreement >= 99 % on the check windows
(in `deepepi export`, up to 2,048 windows of the run's validation events) and pass ``quantized_gate``
at the run's Decision on its labelled validation windows: the one gate ``deepepi verify --mode
quantized`` also runs, so export never writes a file verify would reject on those windows (argmax and
decision agreement, both classes fired at the threshold, event sensitivity and window TPR drop).
Only then are the file and its metadata sidecar written
atomically. A failed check is a typed ExportError, after HF optimum's exporters: ShapeError,
AtolError, AgreementError. Framework-free (onnx, onnxruntime, numpy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx

from converters import app_meta
from converters.contract import (CLASS_NAMES, INPUT_NAME, OUTPUT_NAME, SELF_CHECK_ATOL, SELF_CHECK_BATCHES,
                                 ExportInfo, Exporter, ExportResult, Reference, conform, contract_problems,
                                 read_metadata, realistic_windows)
from converters.session import open_session_bytes
from deepepi.core.errors import AgreementError, AtolError, DeepEpiError, ExportError, ShapeError
from deepepi.core.io import write_bytes
from deepepi.scoring.agreement import argmax_agreement, same_class
from deepepi.scoring.decision import Decision, at_decision
from deepepi.scoring.evaldata import EvalData

QUANTIZED_MIN_AGREEMENT = 0.99
QUANTIZED_MAX_DROP = 0.01  # a quantised file may lose at most 1 point of event sensitivity and window TPR

# content, sidecar dict, path -> an object with predict_proba(raw milli-g) (a Runtime)
RuntimeFactory = Callable[[bytes, dict, Path], Any]


@dataclass(frozen=True)
class DeployResult:
    path: Path
    sidecar: Path | None
    size_bytes: int
    max_abs_diff: float
    agreement: float
    windows: int
    decision: Decision | None = None  # the Decision a quantised file was gated at
    gate: tuple = ()                  # its GateRows


def checker_error(model: onnx.ModelProto) -> Exception | None:
    """The ONNX checker's objection to ``model`` (full check, shape inference included), or None."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        return exc
    return None


@dataclass(frozen=True)
class Wording:
    """How a family of self-checks names the two sides and reads the outputs, kept as each family
    has always reported it. ONNX graphs: each batch compared on its own, the reference rounded to
    float32, a non-finite difference reported alone. Deployment files: one pass over all windows,
    the reference in float64, shape and finiteness reported together."""

    exported: str
    source: str
    per_batch: bool

    def shape_error(self, got: np.ndarray, want: np.ndarray, source: str | None) -> ShapeError | None:
        if self.per_batch:
            if got.shape == want.shape:
                return None
            return ShapeError(f"self-check: onnxruntime output shape {got.shape} differs from the "
                              f"native model's {want.shape}", source=source)
        if got.shape == want.shape and np.isfinite(got).all():
            return None
        return ShapeError(f"self-check: output {got.shape} (finite: {bool(np.isfinite(got).all())}) "
                          f"differs from the source model's {want.shape}", source=source)


ONNX_WORDING = Wording("onnxruntime", "native", per_batch=True)
DEPLOY_WORDING = Wording("exported", "source", per_batch=False)


def compare(run: Callable[[np.ndarray], np.ndarray], reference: Reference, batches: list[np.ndarray], *,
            quantized: bool, source: str | None, wording: Wording = DEPLOY_WORDING,
            atol: float = SELF_CHECK_ATOL, min_agreement: float = QUANTIZED_MIN_AGREEMENT
            ) -> tuple[float, float]:
    """(max abs difference, argmax agreement) of ``run`` against ``reference`` over ``batches`` of raw
    milli-g windows. ShapeError on another output shape, AtolError past ``atol`` (float32 exports),
    AgreementError under ``min_agreement`` (quantised ones)."""
    worst, gots, wants = 0.0, [], []
    for raw in batches:
        try:
            got = np.asarray(run(raw))
        except DeepEpiError as exc:
            raise ExportError(f"self-check: the exported model does not run: {exc}", source=source) from None
        want = np.asarray(reference(raw), dtype=np.float32 if wording.per_batch else np.float64)
        problem = wording.shape_error(got, want, source)
        if problem is not None:
            raise problem
        diff = float(np.max(np.abs(got.astype(np.float64) - want), initial=0.0))
        if wording.per_batch and not np.isfinite(diff):
            raise AtolError("self-check: non-finite probabilities from the exported graph", source=source)
        worst = max(worst, diff) if gots else diff  # a NaN difference (NaN reference) is reported as is
        gots.append(got)
        wants.append(want)
    agreement = argmax_agreement(np.concatenate(gots), np.concatenate(wants))
    if not quantized and worst > atol:
        raise AtolError(f"self-check failed: {wording.exported} vs {wording.source} model max abs difference "
                        f"{worst:.3g} > {atol:g}; nothing was written", source=source)
    if quantized and agreement < min_agreement:
        raise AgreementError(f"self-check failed: quantised model agrees with the source model on "
                             f"{agreement:.2%} of {sum(len(b) for b in batches)} check windows (< "
                             f"{min_agreement:.0%}); nothing was written", source=source)
    return worst, agreement


@dataclass(frozen=True)
class GateRow:
    """One line of the quantised gate: ``ok`` None is information only."""

    name: str
    ok: bool | None
    detail: str
    figures: dict


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def quantized_gate(ref: np.ndarray, got: np.ndarray, *, data: EvalData | None, decision: Decision,
                   min_agreement: float = QUANTIZED_MIN_AGREEMENT,
                   max_drop: float = QUANTIZED_MAX_DROP) -> list[GateRow]:
    """THE quantised gate, shared by every ``export --quantize`` and ``verify --mode quantized``, so
    export never writes a file verify would reject on the same windows. ``ref`` and ``got``: the
    float and the quantised model's probabilities [n, 2] on the same raw windows; ``data``: those
    windows labelled (None: agreement only). Rows, each a condition:
    argmax agreement >= ``min_agreement``; agreement of the decisions p > ``decision.threshold``
    >= ``min_agreement``; with labels holding both classes, each model fires on both classes at the
    decision (a one-class model FAILS), and the quantised model loses at most ``max_drop`` of the
    float model's event sensitivity (the decision's leading logic) and window TPR (Counts)."""
    ref, got = np.asarray(ref, dtype=np.float64), np.asarray(got, dtype=np.float64)
    n, t = len(ref), decision.threshold
    same = same_class(ref, got)
    agreement = float(same.mean()) if n else 0.0
    dec_ref, dec_got = ref[:, 1] > t, got[:, 1] > t
    dec_agreement = float((dec_ref == dec_got).mean()) if n else 0.0
    rows = [GateRow("argmax agreement", agreement >= min_agreement,
                    f"{agreement:.4%} of {n} windows, need >= {min_agreement:.2%}",
                    {"agreement": agreement, "disagreements": int((~same).sum()), "n": n,
                     "min_agreement": min_agreement}),
            GateRow("decision agreement", dec_agreement >= min_agreement,
                    f"{dec_agreement:.4%} of {n} windows agree on p > {t:g}, need >= {min_agreement:.2%}",
                    {"agreement": dec_agreement, "disagreements": int((dec_ref != dec_got).sum()), "n": n,
                     "threshold": t, "min_agreement": min_agreement})]
    if data is None:
        return rows
    labels = np.asarray(data.y)
    if len(np.unique(labels)) == 2:
        for side, dec in (("A", dec_ref), ("B", dec_got)):
            fires = int(dec.sum())
            ok = 0 < fires < len(dec)
            rows.append(GateRow(f"predicts both classes {side}", ok,
                                f"windows with p > {t:g}: {fires} of {len(dec)}" if ok else
                                f"{'never fires' if fires == 0 else 'always fires'} at p > {t:g} on {len(dec)} "
                                "windows, though the labels hold both classes", {"positive": fires, "n": len(dec)}))
    figures = {"max_drop": max_drop, "decision": decision.to_dict(),
               "a": at_decision(data, ref[:, 1], decision), "b": at_decision(data, got[:, 1], decision)}
    logic = decision.logic
    pairs = {"event sensitivity": (figures["a"]["event"][logic]["sensitivity"],
                                   figures["b"]["event"][logic]["sensitivity"]),
             "window TPR": (figures["a"]["window"]["tpr"], figures["b"]["window"]["tpr"])}
    drops = {k: None if a is None or b is None else float(a - b) for k, (a, b) in pairs.items()}
    figures["drops"] = drops
    if all(d is None for d in drops.values()):
        rows.append(GateRow("quantised accuracy drop", False, "no seizure windows in the data: cannot measure "
                            "the drop", figures))
        return rows
    ok = all(d is None or d <= max_drop + 1e-12 for d in drops.values())
    detail = "; ".join(f"{k} {_pct(a)} -> {_pct(b)} " + (f"(drop {100 * drops[k]:+.2f} points)"
                                                         if drops[k] is not None else "")
                       for k, (a, b) in pairs.items())
    rows.append(GateRow("quantised accuracy drop", ok,
                        f"{detail}; {logic} logic at threshold {t:g}; limit {100 * max_drop:g} point(s)", figures))
    return rows


def require_gate(rows: list[GateRow], source: str | None) -> None:
    """An export's use of the gate: the first failed row is an AgreementError, and nothing is written."""
    failed = [r for r in rows if r.ok is False]
    if failed:
        r = failed[0]
        raise AgreementError(f"self-check failed: quantised model, {r.name}: {r.detail}; nothing was written",
                             source=source)


def self_check_batches(window: int, seed: int) -> list[np.ndarray]:
    """The float32 self-check's windows: realistic windows at each of the self-check's batch sizes."""
    return [realistic_windows(b, window, seed=seed + i) for i, b in enumerate(SELF_CHECK_BATCHES)]


def self_check_windows(window: int, seed: int) -> np.ndarray:
    """``self_check_batches`` as one array (the deployment files run them in one pass)."""
    return np.concatenate(self_check_batches(window, seed))


def self_check(model_bytes: bytes, reference: Reference, *, window: int, seed: int = 0,
               atol: float = SELF_CHECK_ATOL, source: str | None = None) -> float:
    """An ONNX graph's max abs difference from ``reference`` through onnxruntime (CPU), each batch
    size in turn so the dynamic batch axis is exercised too; AtolError above ``atol``."""
    session = open_session_bytes(model_bytes, label=source, error=ExportError, what="the exported graph",
                                 whole_message=True)
    diff, _ = compare(lambda raw: session.run([OUTPUT_NAME], {INPUT_NAME: raw})[0], reference,
                      self_check_batches(window, seed), quantized=False, source=source,
                      wording=ONNX_WORDING, atol=atol)
    return diff


def _write(out: Path, content: bytes, sidecar: dict | None = None) -> Path | None:
    """The write that follows every passed check: the file, then its sidecar (both atomic)."""
    write_bytes(out, content)
    return app_meta.write(out, sidecar) if sidecar is not None else None


def finish_graph(model: onnx.ModelProto, out: str | Path, reference: Callable[[], Reference], *, window: int,
                 num_classes: int = len(CLASS_NAMES), what: str = "export", seed: int = 0,
                 atol: float = SELF_CHECK_ATOL) -> ExportResult:
    """Check a contract graph (ONNX checker, contract, onnxruntime vs ``reference()``) and write ``out``
    atomically; ``what`` ("export", "ensemble") names it in the refusals. ``reference`` is made only
    once the graph has passed the checker and the contract (the ensemble's opens every member)."""
    out = Path(out)
    source = str(out)
    problem = checker_error(model)
    if problem is not None:
        raise ExportError(f"ONNX checker rejected the {what}: {problem}", source=source)
    problems = contract_problems(model, window=window, num_classes=num_classes)
    if problems:
        raise ExportError(f"{what} breaks the ONNX contract: " + "; ".join(problems), source=source)
    data = model.SerializeToString()
    diff = self_check(data, reference(), window=window, seed=seed, atol=atol, source=source)
    _write(out, data)
    return ExportResult(out, diff, read_metadata(model))


def finish_onnx(model: onnx.ModelProto, out: str | Path, info: ExportInfo, exporter: Exporter,
                reference: Reference, *, seed: int = 0) -> ExportResult:
    """The ONNX exporters' last step: conform names and metadata, then ``finish_graph``."""
    return finish_graph(conform(model, info, exporter), out, lambda: reference, window=info.window,
                        num_classes=info.num_classes, seed=seed)


def finish(content: bytes, out: str | Path, sidecar: dict | None, runtime: RuntimeFactory,
           reference: Reference, check_windows: np.ndarray, *, quantized: bool,
           min_agreement: float = QUANTIZED_MIN_AGREEMENT, gate_data: EvalData | None = None,
           decision: Decision | None = None, max_drop: float = QUANTIZED_MAX_DROP) -> DeployResult:
    """Load ``content`` in its runtime, compare with ``reference``, then write it (and the sidecar).
    ``min_agreement`` is the quantised bar (bench/deploy.py lowers it to measure refused files).
    A quantised file must also pass ``quantized_gate`` at ``decision`` on the labelled ``gate_data``
    (the run's validation windows: what ``verify --mode quantized`` is given)."""
    out = Path(out)
    loaded = runtime(content, sidecar, out)
    diff, agreement = compare(loaded.predict_proba, reference, [check_windows], quantized=quantized,
                              source=str(out), min_agreement=min_agreement)
    rows: list[GateRow] = []
    if quantized and decision is not None:
        x = check_windows if gate_data is None else np.ascontiguousarray(gate_data.X, dtype=np.float32)
        rows = quantized_gate(reference(x), loaded.predict_proba(x), data=gate_data, decision=decision,
                              min_agreement=min_agreement, max_drop=max_drop)
        require_gate(rows, str(out))
    side = _write(out, content, sidecar)
    return DeployResult(out, side, len(content), diff, agreement, len(check_windows),
                        decision if quantized else None, tuple(rows))
