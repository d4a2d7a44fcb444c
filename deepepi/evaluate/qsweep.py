"""``evaluate --sweep-q``: a Harrell-Davis ensemble's sensitivity / false-alarm trade-off over q.

q is the knob Spahr et al. tune after training. An ensemble graph (``deepepi ensemble``) takes q as
an optional input (metadata ``hd_q_input``), so each q is one more pass of the same graph over the
same windows; the threshold and alarm logic stay those of the evaluation, and the event figures are
computed exactly as for the operating point.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from converters.contract import INPUT_NAME, OUTPUT_NAME
from deepepi.core.errors import ConfigError, ModelError
from deepepi.scoring.evaldata import EvalData
from deepepi.scoring.events import AlarmLogic, event_figures, summary
from deepepi.scoring.per_event import max_per_event
from deepepi.runtimes import Runtime
from deepepi.runtimes.base import check_proba
from converters.session import RUN_CHUNK

DEFAULT_QS = tuple(round(0.1 * i, 1) for i in range(1, 10))
Q_INPUT_KEY = "hd_q_input"


MAX_QS = 99  # one pass of the ensemble graph over every window per q


def check_qs(qs: Sequence[float]) -> tuple[float, ...]:
    bad = [q for q in qs if not 0.0 < q < 1.0]
    if not qs or bad:
        raise ConfigError(f"--sweep-q: got {bad[0] if bad else 'no value'}, expected values with 0 < q < 1")
    if len(set(qs)) > MAX_QS:
        raise ConfigError(f"--sweep-q: got {len(set(qs))} values, expected at most {MAX_QS} "
                          "(each is one more pass over every window)")
    return tuple(sorted(set(float(q) for q in qs)))


def ensemble_p(rt: Runtime, x_milli_g: np.ndarray, q: float) -> np.ndarray:
    """p(seizure) of an ensemble graph at quantile ``q`` (its ``q`` input fed explicitly)."""
    q_name = rt.metadata.get(Q_INPUT_KEY)
    session = getattr(rt, "session", None)
    if q_name is None or session is None:
        raise ModelError("--sweep-q needs a Harrell-Davis ensemble ONNX file (deepepi ensemble); this model "
                         "has no q input", source=str(rt.path))
    q_value = np.asarray(q, dtype=np.float32)
    parts = []
    for i in range(0, len(x_milli_g), RUN_CHUNK):  # the runtimes' one probability rule, per chunk
        out = session.run([OUTPUT_NAME], {INPUT_NAME: x_milli_g[i:i + RUN_CHUNK], q_name: q_value})[0]
        parts.append(check_proba(out, len(x_milli_g[i:i + RUN_CHUNK]), f"{rt.path} at q={q!r}", first_row=i)[:, 1])
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


def sweep_q(rt: Runtime, data: EvalData, qs: Sequence[float], threshold: float,
            logic: AlarmLogic) -> list[dict[str, Any]]:
    """Per q: event sensitivity, FP/24 h, false-alarm ratio and detections at ``threshold``."""
    rows = []
    for q in qs:
        p = ensemble_p(rt, data.X, q)
        states = logic.states(data, logic.decision_p(data, p), threshold)
        max_p = max_per_event(p, data.window_event, len(data.events))
        event = summary(data, event_figures(data, states, max_p))
        rows.append({"q": q, "threshold": threshold, "alarm_logic": logic.name,
                     "sensitivity": event["sensitivity"], "detected": event["detected"],
                     "seizure_events": event["seizure_events"], "fp_per_24h": event["fp_per_24h"],
                     "false_alarm_ratio": event["false_alarm_ratio"]})
    return rows
