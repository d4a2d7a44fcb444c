"""Event-level figures from per-window probabilities: alarms, detection, latency, false alarms per 24 h.

Two alarm logics, both reported:
- ``raw``: every window with p > threshold is an alarm window (nnTester's event rule, strict as in
  the app).
- ``app``: the phone's rules (``deepepi.scoring.alarm``): movement gate, p > threshold, and the WarnTime /
  AlarmTime state machine, restarted at every event and recording gap; alarm windows are those in
  ALARM.

Definitions (the same for both logics):
- an *alarm* is an *alarm episode* (``episode_starts``): it starts at an alarm window and covers
  every alarm window of the same event that ends less than ``AlarmParams.episode_s`` (90 s) after
  that first window's end; the first alarm window after it starts the next episode. So a run of
  alarm windows is one alarm, runs closer than 90 s (the app's one-negative revert and longer
  gaps) are merged, and an alarm that goes on counts again every 90 s. Unlike "runs of alarm
  windows, close runs merged", this count never grows when alarm windows are removed (it is the
  largest number of alarm windows per event that are pairwise at least 90 s apart), so FP/24 h is
  non-increasing in the threshold for both logics, and app-logic counts never exceed raw ones (app
  ALARM windows are a subset of the raw alarm windows);
- an event is *detected* when an alarm is raised anywhere in it (events too short for a window
  cannot be detected); *latency* = time of the first alarm window (its last datapoint's dataTime)
  minus the onset (``seizureTimes`` start when known, else the recording start; negative when
  the alarm comes before the annotated onset);
- *false alarms* are alarms in non-seizure events; *FP/24 h* = false alarms / (non-seizure windows
  x hop) x 24 h, with the hop (5 s) turning windows into recording time; the *false-alarm ratio*
  is the fraction of non-seizure events with at least one alarm (the reference's event FPR).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deepepi.scoring.alarm import ALARM, EPISODE_S, WARNING, AlarmParams, alarm_states, gate_windows
from deepepi.scoring.evaldata import EvalData
from deepepi.scoring.metrics import ratio

LOGICS = ("raw", "app")


@dataclass(frozen=True)
class AlarmLogic:
    """How window probabilities become alarms: ``raw`` or ``app`` (gate + state machine)."""

    name: str
    acc_sd_threshold: float = 0.0
    params: AlarmParams = AlarmParams()

    def decision_p(self, data: EvalData, p: np.ndarray) -> np.ndarray:
        """The probability the threshold is applied to (the movement gate zeroes still datapoints)."""
        if self.name == "app" and self.acc_sd_threshold > 0:
            return gate_windows(p, data.X, self.acc_sd_threshold)
        return p

    def states(self, data: EvalData, dp: np.ndarray, threshold: float) -> np.ndarray:
        """Per-window state: raw 0/2 (alarm), app OK/WARNING/ALARM."""
        positive = dp > threshold
        if self.name == "raw":
            return np.where(positive, ALARM, 0).astype(np.int8)
        return alarm_states(positive, data.segment, self.params)


@dataclass
class EventFigures:
    """Per event (rows of ``data.events``) for one model, logic and threshold."""

    detected: np.ndarray
    warned: np.ndarray
    alarms: np.ndarray
    first_alarm: np.ndarray
    latency: np.ndarray
    max_p: np.ndarray
    n_windows: np.ndarray


def episode_starts(alarm: np.ndarray, window_event: np.ndarray, end_time: np.ndarray,
                   episode_s: float = EPISODE_S) -> np.ndarray:
    """True at the first window of each alarm episode (see the module docstring): greedily, per event
    in time order, an alarm window starts an episode unless it ends less than ``episode_s`` after the
    current episode's first window. Vectorised: each alarm window points to the next alarm window
    that would start an episode after it, and the episode starts (the chain of pointers from each
    event's first alarm window) are found by pointer doubling in log2(n) steps."""
    alarm = np.asarray(alarm, dtype=bool)
    out = np.zeros(len(alarm), dtype=bool)
    idx = np.flatnonzero(alarm)
    if not len(idx):
        return out
    ev = np.asarray(window_event)[idx]
    t = np.asarray(end_time, dtype=np.float64)[idx]
    order = np.lexsort((t, ev))
    idx, ev, t = idx[order], ev[order], t[order]
    new_event = np.r_[True, ev[1:] != ev[:-1]]
    rank = np.cumsum(new_event) - 1
    first = np.maximum.accumulate(np.where(new_event, np.arange(len(t)), 0))
    rel = t - t[first]  # time since the event's first alarm window
    span = float(rel.max()) + 2.0 * episode_s + 1.0
    key = rank * span + rel  # increasing; events never closer than episode_s
    n = len(idx)
    nxt = np.searchsorted(key, key + episode_s - 1e-6, side="left")  # n: no further alarm window
    nxt = np.append(nxt, n)  # sentinel n points to itself
    member = np.append(new_event, False)  # each event's first alarm window starts an episode
    jump = nxt
    for _ in range(max(1, int(np.ceil(np.log2(n + 1))) + 1)):
        reached = jump[np.flatnonzero(member)]
        member[reached] = True
        member[n] = False
        jump = jump[jump]
    out[idx[member[:n]]] = True
    return out


def _first_time(mask: np.ndarray, data: EvalData, n_events: int) -> np.ndarray:
    first = np.full(n_events, np.nan)
    idx = np.flatnonzero(mask)
    ev, pos = np.unique(data.window_event[idx], return_index=True)
    first[ev] = data.end_time[idx[pos]]
    return first


def event_figures(data: EvalData, states: np.ndarray, max_p: np.ndarray, episode_s: float = EPISODE_S) -> EventFigures:
    """Per-event detection, alarm episodes (``alarms``), first alarm and latency."""
    n = len(data.events)
    alarm = states >= ALARM
    starts = episode_starts(alarm, data.window_event, data.end_time, episode_s)
    counts = np.bincount(data.window_event, weights=starts, minlength=n)
    warned = np.bincount(data.window_event, weights=states >= WARNING, minlength=n) > 0
    first = _first_time(alarm, data, n)
    seizure = data.events["label"].to_numpy() == 1
    # rounded to 1 ms: epoch seconds in float64 carry ~1e-7 s of noise
    latency = np.round(np.where(seizure, first - data.events["onset"].to_numpy(), np.nan), 3)
    return EventFigures(detected=counts > 0, warned=warned, alarms=counts.astype(np.int64), first_alarm=first,
                        latency=latency, max_p=max_p, n_windows=np.bincount(data.window_event, minlength=n))


def hours(n_windows: np.ndarray | int, hop_s: float) -> np.ndarray | float:
    return np.asarray(n_windows) * hop_s / 3600.0


def per_24h(count: int, recording_hours: float) -> float | None:
    """``count`` per 24 h of recording (FP/24 h); None for no recording time."""
    return count / recording_hours * 24.0 if recording_hours > 0 else None


def detection(seizure: np.ndarray, detected: np.ndarray, warned: np.ndarray | None = None) -> dict[str, Any]:
    """Per-event detection over events of class ``seizure``: seizure events detected (sensitivity),
    optionally how many were ``warned``, and non-seizure events with an alarm (false-alarm ratio)."""
    out: dict[str, Any] = {"seizure_events": int(seizure.sum()), "detected": int(detected[seizure].sum()),
                           "sensitivity": ratio(int(detected[seizure].sum()), int(seizure.sum()))}
    if warned is not None:
        out["warned"] = int(warned[seizure].sum())
    out.update({"non_seizure_events": int((~seizure).sum()),
                "events_with_false_alarm": int(detected[~seizure].sum()),
                "false_alarm_ratio": ratio(int(detected[~seizure].sum()), int((~seizure).sum()))})
    return out


def summary(data: EvalData, figs: EventFigures, rows: np.ndarray | None = None) -> dict[str, Any]:
    """Event sensitivity, false alarms, FP/24 h, false-alarm ratio and latency over ``rows`` (all)."""
    rows = np.arange(len(data.events)) if rows is None else rows
    seizure = data.events["label"].to_numpy()[rows] == 1
    det, alarms = figs.detected[rows], figs.alarms[rows]
    non_hours = float(hours(figs.n_windows[rows][~seizure].sum(), data.hop_s))
    false_alarms = int(alarms[~seizure].sum())
    lat = figs.latency[rows][seizure & det]
    return {**detection(seizure, det, figs.warned[rows]),
            "false_alarms": false_alarms, "non_seizure_hours": non_hours,
            "fp_per_24h": per_24h(false_alarms, non_hours), "latency_s": _latency_stats(lat)}


NEGATIVE_LATENCY = ("a negative latency means the first alarm came before the annotated onset (the onset "
                    "annotation is late, or movement before the seizure raised the alarm); such an event counts "
                    "as detected, is counted apart as 'before onset', and is kept out of the latency statistics")


def _latency_stats(lat: np.ndarray) -> dict[str, Any]:
    """Latency statistics over the non-negative latencies; alarms before the onset (negative latency,
    ``NEGATIVE_LATENCY``) are only counted, as ``before_onset``, so they cannot pull the median down."""
    lat = np.asarray(lat, dtype=np.float64)
    before = int((lat < 0).sum())
    lat = lat[lat >= 0]
    if len(lat) == 0:
        return {"n": 0, "median": None, "mean": None, "p90": None, "min": None, "max": None,
                "before_onset": before}
    return {"n": int(len(lat)), "median": float(np.median(lat)), "mean": float(np.mean(lat)),
            "p90": float(np.percentile(lat, 90)), "min": float(lat.min()), "max": float(lat.max()),
            "before_onset": before}


def table_by(data: EvalData, figs: EventFigures, column: str) -> list[dict[str, Any]]:
    """``summary`` per value of an events-table column (userId, subtype), with the non-seizure hours
    behind each FP/24 h."""
    out = []
    values = data.events[column].to_numpy()
    for value in pd.unique(values):
        rows = np.flatnonzero(values == value)
        s = summary(data, figs, rows)
        out.append({column: value.item() if hasattr(value, "item") else value,
                    **{k: s[k] for k in ("seizure_events", "detected", "sensitivity", "non_seizure_events",
                                         "events_with_false_alarm", "false_alarm_ratio", "false_alarms",
                                         "fp_per_24h", "non_seizure_hours")},
                    "latency_median_s": s["latency_s"]["median"],
                    "latency_before_onset": s["latency_s"]["before_onset"]})
    return sorted(out, key=lambda r: str(r[column]))
