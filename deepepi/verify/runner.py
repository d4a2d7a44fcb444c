"""`verify(a, b)`: run two models on the same windows, each in its own runtime, and compare.

A and B may each be an ONNX file (onnxruntime), a .tflite (LiteRT) or a .pte (ExecuTorch); each
runtime maps the shared raw milli-g windows onto its file's convention and returns probabilities.
Modes: ``same-weights`` (the two files hold the same weights, so outputs must agree within
atol/rtol); ``lockstep`` (trained from the same initial weights on the same batch stream: argmax
agreement must reach ``min_agreement``); ``trained`` (independently trained, e.g. different seeds
or machines; needs labelled data: the TPR/FPR differences, window and event level, must not
exceed the seed-to-seed spread beyond doubt; see verify.stats); and ``quantized`` (B is a
quantised A: argmax agreement >= ``min_agreement`` and, on labelled data, event sensitivity and
window TPR may drop by at most ``max_drop``, all at A's Decision: ``converters.check.quantized_gate``,
the very gate every quantised export passed). In lockstep and trained modes a model that predicts one
class only (argmax) on data holding both FAILS; in quantized mode one that fires on one class only at
the Decision's threshold FAILS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from deepepi.core.config import number_rule, require_number
from deepepi.core.errors import UnusableInputError
from converters.check import QUANTIZED_MAX_DROP, quantized_gate
from deepepi.runtimes.base import decision_layer
from deepepi.scoring.decision import config_layer, resolve
from deepepi.verify import checks, stats
from converters.session import resolve_providers
from deepepi.runtimes.windowing import windowing
from deepepi.verify.inputs import csv_inputs, open_subject, random_inputs
from deepepi.verify.limits import DEFAULT_RANDOM, MAX_RANDOM
from deepepi.verify.report import Report

MODES = ("same-weights", "lockstep", "trained", "quantized")
LOCKSTEP_MIN_AGREEMENT = 0.99  # see docs/PERFORMANCE.md "Lockstep drift"


def verify(model_a: str | Path, model_b: str | Path, *, data: str | Path | None = None,
           random_n: int = DEFAULT_RANDOM, seed: int = 0, config: str | Path | None = None,
           mode: str = "same-weights", atol: float = 1e-5, rtol: float = 1e-4,
           min_agreement: float = LOCKSTEP_MIN_AGREEMENT, margins: dict[str, float] | None = None,
           providers: Sequence[str] | None = None, max_drop: float = QUANTIZED_MAX_DROP) -> Report:
    """Compare A and B; raise UnusableInputError when they cannot be compared at all."""
    if mode not in MODES:
        raise UnusableInputError(f"--mode: got {mode!r}, expected one of {', '.join(MODES)}")
    if mode == "trained" and data is None:
        raise UnusableInputError("--mode trained compares TPR/FPR by event: it needs labelled --data CSV")
    for name, value, rule in (("--atol", atol, number_rule(0)), ("--rtol", rtol, number_rule(0)),
                              ("--min-agreement", min_agreement, number_rule(0, 1)),
                              ("--max-drop", max_drop, number_rule(0, 1)),
                              ("--random", random_n, number_rule(1, MAX_RANDOM, integer=True))):
        require_number(name, value, rule, UnusableInputError)
    labels = (str(model_a), str(model_b))
    chosen = resolve_providers(providers)
    a, b = open_subject(model_a, chosen), open_subject(model_b, chosen)
    window, num_classes = checks.comparable(a, b, labels)
    inputs = (csv_inputs(data, windowing([a.runtime, b.runtime], config, UnusableInputError,
                                         default_without_metadata=True)) if data is not None
              else random_inputs(random_n, window, seed=seed))
    quantized = mode == "quantized"
    if quantized and inputs.labels is None:
        raise UnusableInputError("--mode quantized needs labelled windows: give --data CSV")
    probs_a = a.runtime.predict_proba(inputs.raw)
    probs_b = b.runtime.predict_proba(inputs.raw)
    expected = (len(inputs.raw), num_classes)
    for label, probs in zip(labels, (probs_a, probs_b)):
        if probs.shape != expected:
            raise UnusableInputError(f"output shape {probs.shape} differs from the declared "
                                     f"{expected}", source=label)

    trained, quantized = mode == "trained", mode == "quantized"
    gated = mode in ("lockstep", "quantized")
    margins = dict(stats.SEED_MARGINS, **(margins or {}))
    decision = None
    if quantized:  # A's Decision: its metadata, then --config, then the defaults
        win = inputs.windowing
        decision = resolve(decision_layer(a.runtime.metadata, labels[0]),
                           config_layer(win.cfg.processing, win.source) if win.from_file else None,
                           error=UnusableInputError)
    onnx_used = [set(s.used) for s in (a, b) if s.proto is not None]
    report = Report(
        model_a=labels[0], model_b=labels[1], mode=mode,
        settings={"atol": atol, "rtol": rtol, "min_agreement": min_agreement if gated else None,
                  "max_drop": max_drop if quantized else None, "margins": margins if trained else None,
                  "window": window, "num_classes": num_classes,
                  "decision": None if decision is None else decision.to_dict()},
        inputs=dict(inputs.source, labelled=inputs.labels is not None),
        providers={"requested": chosen, "a": a.used, "b": b.used,
                   "not_started": [p for p in chosen if any(p not in u for u in onnx_used)],
                   "runtimes": {"a": a.runtime.describe(), "b": b.runtime.describe()}})
    report.checks += [
        checks.file_check(a, "A"), checks.file_check(b, "B"),
        checks.contract_match(a, b, window=window, num_classes=num_classes),
        checks.parameter_counts(a, b),
        checks.softmax_sanity(probs_a, "A"), checks.softmax_sanity(probs_b, "B"),
        checks.tolerance(probs_a, probs_b, atol=atol, rtol=rtol, enforce=mode == "same-weights"),
    ]
    if not quantized:
        report.checks.append(checks.agreement(probs_a, probs_b, inputs.labels,
                                              min_agreement=min_agreement if gated else None))
    if mode in ("lockstep", "trained"):
        report.checks += [checks.fires_both_classes(probs_a, inputs.labels, "A"),
                          checks.fires_both_classes(probs_b, inputs.labels, "B")]
    if mode in ("lockstep", "trained"):
        report.checks.append(checks.rates_side_by_side(probs_a, probs_b, inputs.labels))
    if trained:
        report.checks.append(checks.paired_statistics(probs_a, probs_b, inputs.labels, inputs.event_id,
                                                      margins=margins, seed=seed))
    if quantized:
        rows = quantized_gate(probs_a, probs_b, data=inputs.data, decision=decision, min_agreement=min_agreement,
                              max_drop=max_drop)
        report.checks += [checks.from_gate(row) for row in rows]
        report.checks.append(checks.rates_at_decision(rows))
    return report

