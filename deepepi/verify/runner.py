"""`verify(a, b)`: run two contract ONNX graphs on the same windows through onnxruntime and compare.

Modes: ``same-weights`` (the two files hold the same weights, so outputs must agree within
atol/rtol) and ``trained`` (independently trained models: argmax agreement must reach
``min_agreement``; difference figures are information).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from deepepi.config import number_rule, require_number
from deepepi.errors import UnusableInputError
from deepepi.verify import checks
from deepepi.verify.inputs import (csv_inputs, load_onnx, open_session, random_inputs,
                                   resolve_providers, run_session)
from deepepi.verify.limits import DEFAULT_RANDOM, MAX_RANDOM
from deepepi.verify.report import Report

MODES = ("same-weights", "trained")


def verify(model_a: str | Path, model_b: str | Path, *, data: str | Path | None = None,
           random_n: int = DEFAULT_RANDOM, seed: int = 0, config: str | Path | None = None,
           mode: str = "same-weights", atol: float = 1e-5, rtol: float = 1e-4,
           min_agreement: float = 0.99, providers: Sequence[str] | None = None) -> Report:
    """Compare A and B; raise UnusableInputError when they cannot be compared at all."""
    if mode not in MODES:
        raise UnusableInputError(f"--mode: got {mode!r}, expected one of {', '.join(MODES)}")
    for name, value, rule in (("--atol", atol, number_rule(0)), ("--rtol", rtol, number_rule(0)),
                              ("--min-agreement", min_agreement, number_rule(0, 1)),
                              ("--random", random_n, number_rule(1, MAX_RANDOM, integer=True))):
        require_number(name, value, rule, UnusableInputError)
    labels = (str(model_a), str(model_b))
    proto_a, proto_b = load_onnx(model_a), load_onnx(model_b)
    window, num_classes = checks.comparable(proto_a, proto_b, labels)
    chosen = resolve_providers(providers)
    session_a, session_b = open_session(model_a, chosen), open_session(model_b, chosen)
    inputs = (csv_inputs(data, window, config) if data is not None
              else random_inputs(random_n, window, seed=seed))
    probs_a = run_session(session_a, inputs.raw, label=labels[0])
    probs_b = run_session(session_b, inputs.raw, label=labels[1])
    expected = (len(inputs.raw), num_classes)
    for label, probs in zip(labels, (probs_a, probs_b)):
        if probs.shape != expected:
            raise UnusableInputError(f"output shape {probs.shape} differs from the declared "
                                     f"{expected}", source=label)

    trained = mode == "trained"
    used = set(session_a.get_providers()) & set(session_b.get_providers())
    report = Report(
        model_a=labels[0], model_b=labels[1], mode=mode,
        settings={"atol": atol, "rtol": rtol, "min_agreement": min_agreement if trained else None,
                  "window": window, "num_classes": num_classes},
        inputs=dict(inputs.source, labelled=inputs.labels is not None),
        providers={"requested": chosen, "a": session_a.get_providers(),
                   "b": session_b.get_providers(), "not_started": [p for p in chosen if p not in used]})
    report.checks += [
        checks.checker(proto_a, "A"), checks.checker(proto_b, "B"),
        checks.contract_match(proto_a, proto_b, window=window, num_classes=num_classes),
        checks.parameter_counts(proto_a, proto_b),
        checks.softmax_sanity(probs_a, "A"), checks.softmax_sanity(probs_b, "B"),
        checks.tolerance(probs_a, probs_b, atol=atol, rtol=rtol, enforce=not trained),
        checks.agreement(probs_a, probs_b, inputs.labels,
                         min_agreement=min_agreement if trained else None),
    ]
    if trained:
        report.checks.append(checks.rates_side_by_side(probs_a, probs_b, inputs.labels))
    return report
