"""The phone app's alarm logic: movement gate, strict threshold and the WarnTime/AlarmTime state machine.

One implementation, used by ``deepepi evaluate --alarm-logic app`` and by streaming prediction.
Rules, as the OpenSeizureDetector app applies them to one 5 s datapoint at a time:

1. Movement gate: when ``100 * std / mean`` of the current datapoint's magnitude samples (milli-g,
   population std) is below ``accSdThreshold`` (%), the seizure probability is 0. As in the app's
   Java, a datapoint whose ratio is undefined (mean 0: NaN or inf) is not gated.
2. A datapoint is positive iff ``p > threshold`` (strict: p equal to the threshold is negative).
3. State machine (``SamplePeriod`` 5 s, ``WarnTime`` 5 s, ``AlarmTime`` 10 s): a positive adds the
   sample period to a counter; counter > AlarmTime is ALARM (the 3rd consecutive positive), counter >
   WarnTime is WARNING (the 2nd), else OK. A negative right after ALARM gives WARNING with the counter
   set to WarnTime + 1 (so one more positive alarms again at once); any other negative gives OK and
   counter 0.

``AlarmStateMachine`` is the streaming form (one datapoint at a time, what a phone does);
``alarm_states`` computes the same states for whole sequences at once, vectorised over runs of
positives, and is held equal to the streaming form by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepepi.core.constants import APP_ALARM_TIME_S, APP_WARN_TIME_S, DATAPOINT_SECONDS, SAMPLES_PER_DATAPOINT

OK, WARNING, ALARM = 0, 1, 2
EPISODE_S = 90.0  # an alarm episode's span from its first alarm window (``scoring.events.episode_starts``)
STATE_NAMES = ("OK", "WARNING", "ALARM")


@dataclass(frozen=True)
class AlarmParams:
    """The app's timing settings, in seconds (defaults: the app's)."""

    warn_time: float = APP_WARN_TIME_S
    alarm_time: float = APP_ALARM_TIME_S
    sample_period: float = DATAPOINT_SECONDS
    episode_s: float = EPISODE_S  # counting only: alarm windows this close to an episode's start are that episode

    @property
    def revert_count(self) -> float:
        """Counter after a negative that ends an ALARM ("pretend we have only just entered warning")."""
        return self.warn_time + 1.0

    def state_for(self, count: np.ndarray | float) -> np.ndarray:
        """State reached by a positive that brings the counter to ``count``."""
        count = np.asarray(count, dtype=np.float64)
        return np.where(count > self.alarm_time, ALARM, np.where(count > self.warn_time, WARNING, OK))

    def to_dict(self) -> dict[str, float]:
        return {"warn_time_s": self.warn_time, "alarm_time_s": self.alarm_time,
                "sample_period_s": self.sample_period, "revert_count_s": self.revert_count,
                "episode_s": self.episode_s}


def movement_cv_pct(samples_milli_g: np.ndarray) -> np.ndarray:
    """100 * population std / mean over the last axis (one datapoint's samples, milli-g)."""
    x = np.asarray(samples_milli_g, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * x.std(axis=-1) / x.mean(axis=-1)


def still(samples_milli_g: np.ndarray, acc_sd_threshold: float) -> np.ndarray:
    """True where the movement gate forces p = 0 (ratio below the threshold; NaN never gates)."""
    return movement_cv_pct(samples_milli_g) < acc_sd_threshold


def gate_windows(p: np.ndarray, windows_milli_g: np.ndarray, acc_sd_threshold: float) -> np.ndarray:
    """``p`` with 0 wherever the window's newest datapoint (its last 125 samples) is still."""
    quiet = still(np.asarray(windows_milli_g)[:, -SAMPLES_PER_DATAPOINT:], acc_sd_threshold)
    return np.where(quiet, np.zeros_like(p), p)


def positive(p: np.ndarray | float, threshold: float) -> np.ndarray:
    """The app's decision: p strictly above the threshold."""
    return np.asarray(p) > threshold


class AlarmStateMachine:
    """Streaming state machine: feed one decision per datapoint, get OK / WARNING / ALARM back."""

    def __init__(self, params: AlarmParams = AlarmParams()) -> None:
        self.params = params
        self.reset()

    def reset(self) -> None:
        self.count = 0.0
        self.state = OK

    def step(self, is_positive: bool) -> int:
        if is_positive:
            self.count += self.params.sample_period
            self.state = int(self.params.state_for(self.count))
        elif self.state == ALARM:
            self.state, self.count = WARNING, self.params.revert_count
        else:
            self.state, self.count = OK, 0.0
        return self.state


def _segment_starts(n: int, segments: np.ndarray | None) -> np.ndarray:
    """Boolean mask of positions where the machine starts afresh (the first, and each new segment)."""
    start = np.zeros(n, dtype=bool)
    if n:
        start[0] = True
    if segments is not None and n > 1:
        seg = np.asarray(segments)
        start[1:] |= seg[1:] != seg[:-1]
    return start


def alarm_states(decisions: np.ndarray, segments: np.ndarray | None = None,
                 params: AlarmParams = AlarmParams()) -> np.ndarray:
    """States (int8) for a sequence of positive/negative decisions, equal to stepping
    ``AlarmStateMachine`` through it, with a fresh machine at every change of ``segments``
    (e.g. per event, or per contiguous recording).

    Vectorised over runs of consecutive positives: a run starts from counter 0, or from
    ``revert_count`` when exactly one negative separates it from a run that ended in ALARM; whether
    a run ends in ALARM can depend on its predecessor, which is resolved by carrying the last run
    whose outcome does not depend on its predecessor forward.
    """
    pos = np.asarray(decisions, dtype=bool)
    n = len(pos)
    states = np.zeros(n, dtype=np.int8)
    if n == 0:
        return states
    fresh = _segment_starts(n, segments)
    run_start = pos & (fresh | np.r_[True, ~pos[:-1]])
    run_id = np.cumsum(run_start) - 1  # valid where pos
    starts = np.flatnonzero(run_start)
    if len(starts) == 0:
        return states
    # Run lengths: positives per run (a run never crosses a segment start, by construction).
    lengths = np.bincount(run_id[pos], minlength=len(starts))
    ends = starts + lengths - 1
    # A run may inherit the revert counter when one negative in the same segment precedes it and
    # the run before ended just before that negative.
    seg_id = np.cumsum(fresh)
    prev_end = np.r_[-10, ends[:-1]]
    single_gap = (starts - prev_end == 2) & (seg_id[starts] == seg_id[np.maximum(prev_end, 0)])
    single_gap[0] = False
    p = params
    alarm_from_zero = p.state_for(p.sample_period * lengths) == ALARM
    alarm_from_revert = p.state_for(p.revert_count + p.sample_period * lengths) == ALARM
    depends = single_gap & alarm_from_revert & ~alarm_from_zero
    # Outcome of runs that do not depend on their predecessor; dependent runs copy the last such run.
    own = np.where(single_gap, alarm_from_revert, alarm_from_zero)
    anchor = np.maximum.accumulate(np.where(depends, 0, np.arange(len(starts))))
    ended_alarm = np.where(depends, own[anchor], own)
    inherits = single_gap & np.r_[False, ended_alarm[:-1]]
    c0 = np.where(inherits, p.revert_count, 0.0)
    k = np.arange(n) - starts[run_id] + 1  # 1-based position within its run, valid where pos
    states[pos] = p.state_for(c0[run_id[pos]] + p.sample_period * k[pos])
    # A negative right after a positive in ALARM (same segment) is WARNING; other negatives are OK.
    after_alarm = ~pos & ~fresh & np.r_[False, states[:-1] == ALARM]
    states[after_alarm] = WARNING
    return states


def first_alarm(states: np.ndarray, level: int = ALARM) -> int | None:
    """Index of the first state >= ``level``, or None."""
    hits = np.flatnonzero(np.asarray(states) >= level)
    return int(hits[0]) if len(hits) else None


__all__ = ["OK", "WARNING", "ALARM", "EPISODE_S", "STATE_NAMES", "AlarmParams", "AlarmStateMachine", "alarm_states",
           "movement_cv_pct", "still", "gate_windows", "positive", "first_alarm"]
