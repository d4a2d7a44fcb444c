"""SzCORE event scoring through the ``timescoring`` package (the field's open scoring standard).

Every event is scored as its own recording, from its start (5 s before the first datapoint) to its
last datapoint. Reference: a seizure event's ``seizureTimes`` interval when known, else the whole
recording; no reference event in a non-seizure recording. Hypothesis: each alarm window contributes
the datapoint that completed it ([t - hop, t]), so consecutive alarm windows form one interval.
``timescoring.scoring.EventScoring`` scores each recording; its counts (TP, FP, reference events,
duration) are summed over recordings and the library's own ``computeScores`` turns the sums into
sensitivity, precision, F1 and FP/24 h (the SzCORE aggregation over a dataset).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepepi.evaluate.data import ONSET_SEIZURE_TIMES, EvalData

ANNOTATION_FS = 10  # Hz; timescoring's EventScoring works at 10 Hz
PARAMETERS = {"toleranceStart": 30.0, "toleranceEnd": 60.0, "minOverlap": 0.0,
              "maxEventDuration": 300.0, "minDurationBetweenEvents": 90.0}
DIFFERENCES = (
    "tolerance: SzCORE counts an alarm from 30 s before an annotated seizure to 60 s after its end as "
    "a detection; deepepi counts any alarm inside a seizure event's recording",
    "alarms in a seizure event outside that tolerance are false positives in SzCORE; deepepi counts "
    "false alarms in non-seizure events only",
    "SzCORE merges alarms less than 90 s apart into one and splits alarms longer than 5 min; deepepi "
    "counts every start of a run of alarm windows",
    "FP/24 h: SzCORE divides by the duration of every recording (seizure events included); deepepi "
    "by the non-seizure windows' time (windows x 5 s hop)",
    "without seizureTimes (CSV input) the whole seizure recording is the reference event, so SzCORE "
    "and deepepi agree on detection there",
)


def _intervals(mask: np.ndarray, times: np.ndarray, hop: float) -> list[tuple[float, float]]:
    """Merged [t - hop, t] intervals of the windows in ``mask`` (times relative to the start)."""
    out: list[tuple[float, float]] = []
    for t in times[mask]:
        lo, hi = max(0.0, float(t) - hop), float(t)
        if out and lo <= out[-1][1] + 1e-9:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def score(data: EvalData, alarm: np.ndarray) -> dict[str, Any]:
    """SzCORE figures for per-window alarms, with the parameters and the summed counts."""
    from timescoring import scoring
    from timescoring.annotations import Annotation

    params = scoring.EventScoring.Parameters(**PARAMETERS)
    ev = data.events
    bounds = np.searchsorted(data.window_event, np.arange(len(ev) + 1))
    tp = fp = ref_true = samples = 0
    for i, row in enumerate(ev.itertuples(index=False)):
        duration = float(row.end - row.start)
        n = int(round(duration * ANNOTATION_FS))
        ref_events: list[tuple[float, float]] = []
        if row.label == 1:
            if row.onset_source == ONSET_SEIZURE_TIMES:
                lo, hi = max(0.0, row.onset - row.start), min(duration, row.seizure_end - row.start)
                ref_events = [(lo, hi)] if hi > lo else []
            else:
                ref_events = [(0.0, duration)]
        sl = slice(bounds[i], bounds[i + 1])
        hyp_events = _intervals(alarm[sl], data.end_time[sl] - row.start, data.hop_s)
        result = scoring.EventScoring(Annotation(ref_events, ANNOTATION_FS, n),
                                      Annotation(hyp_events, ANNOTATION_FS, n), params)
        tp, fp, ref_true, samples = tp + result.tp, fp + result.fp, ref_true + result.refTrue, \
            samples + result.numSamples
    total = scoring._Scoring()  # the library's own formulas over the summed counts
    total.tp, total.fp, total.refTrue, total.numSamples, total.fs = tp, fp, ref_true, samples, ANNOTATION_FS
    total.computeScores()
    def num(v: float) -> float | None:
        return None if not np.isfinite(v) else float(v)

    return {"sensitivity": num(total.sensitivity), "precision": num(total.precision), "f1": num(total.f1),
            "fp_per_24h": num(total.fpRate), "tp": int(tp), "fp": int(fp), "reference_events": int(ref_true),
            "hours": samples / ANNOTATION_FS / 3600.0}


def description() -> dict[str, Any]:
    import timescoring

    return {"package": "timescoring", "version": getattr(timescoring, "__version__", _version()),
            "parameters": {**PARAMETERS, "units": "seconds (minOverlap: fraction)"},
            "recordings": "one per event", "differences_from_deepepi": list(DIFFERENCES)}


def _version() -> str:
    from importlib.metadata import version

    return version("timescoring")
