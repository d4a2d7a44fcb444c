"""Alarm episodes: what counts as one false alarm, and why FP/24 h cannot grow with the threshold.

The property (hypothesis, random probability streams over several events with recording gaps): for
both alarm logics, false alarms per 24 h are non-increasing in the threshold, and the app logic never
counts more than the raw one. ``episode_starts`` is held equal to the plain greedy definition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from deepepi.scoring.events import AlarmLogic, episode_starts, event_figures
from deepepi.scoring.operating import sweep
from deepepi.scoring.per_event import max_per_event
from scoring_streams import HOP, eval_data

def greedy(alarm: np.ndarray, event: np.ndarray, t: np.ndarray, span: float) -> np.ndarray:
    """The definition, one window at a time: a new episode when the alarm window ends >= span after the
    current episode's first window (or is the event's first alarm window)."""
    out, current = np.zeros(len(alarm), bool), {}
    for i in np.lexsort((t, event)):
        if alarm[i] and (event[i] not in current or t[i] - current[event[i]] >= span):
            out[i], current[event[i]] = True, t[i]
    return out


def test_a_run_split_by_a_higher_threshold_is_still_one_false_alarm() -> None:
    # The case: at 0.47 one run, at 0.48 the middle drops out; runs-of-windows counted 2 there.
    p = [0.9, 0.9, 0.9, 0.475, 0.475, 0.475, 0.9, 0.9, 0.9] + [0.0] * 40
    data = eval_data([p], [0])
    sw = sweep(data, np.array(p), AlarmLogic("raw"), grid=np.array([0.47, 0.48]))
    hours = len(p) * HOP / 3600
    assert sw.fp_per_24h.tolist() == pytest.approx([24 / hours, 24 / hours], rel=1e-9)


def test_long_alarm_counts_again_every_episode_span() -> None:
    alarm = np.ones(40, bool)  # 200 s of alarm windows 5 s apart: episodes start at 0, 90, 180 s
    t = 5.0 * np.arange(40)
    starts = episode_starts(alarm, np.zeros(40, int), t, 90.0)
    assert np.flatnonzero(starts).tolist() == [0, 18, 36]


def test_episodes_are_per_event() -> None:
    alarm = np.array([True, True, True, True])
    starts = episode_starts(alarm, np.array([0, 0, 1, 1]), np.array([0.0, 5.0, 0.0, 5.0]), 90.0)
    assert starts.tolist() == [True, False, True, False]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from([5.0, 5.0, 10.0, 60.0, 200.0]), st.booleans()),
                max_size=120), st.sampled_from([5.0, 30.0, 90.0]))
def test_episode_starts_match_the_definition(rows: list[tuple[int, float, bool]], span: float) -> None:
    event = np.array([r[0] for r in rows], dtype=int)
    t = np.zeros(len(rows))
    for e in set(event.tolist()):
        m = event == e
        t[m] = np.cumsum(np.array([r[1] for r in rows])[m])
    alarm = np.array([r[2] for r in rows], dtype=bool)
    assert (episode_starts(alarm, event, t, span) == greedy(alarm, event, t, span)).all()


_STREAM = st.lists(st.lists(st.sampled_from([0.0, 0.05, 0.3, 0.45, 0.5, 0.55, 0.7, 0.9, 0.99]) |
                            st.floats(0.0, 1.0), min_size=1, max_size=60), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_STREAM, st.data())
def test_fp_per_24h_is_non_increasing_in_the_threshold_for_both_logics(streams: list[list[float]],
                                                                       draw: st.DataObject) -> None:
    labels = draw.draw(st.lists(st.integers(0, 1), min_size=len(streams), max_size=len(streams)))
    labels[0] = 0  # at least one non-seizure event
    gaps = [draw.draw(st.lists(st.booleans(), min_size=len(s), max_size=len(s))) for s in streams]
    data = eval_data(streams, labels, gaps)
    p = np.concatenate([np.asarray(s) for s in streams])
    fp = {}
    for name in ("raw", "app"):
        fp[name] = sweep(data, p, AlarmLogic(name)).fp_per_24h
        assert np.isfinite(fp[name]).all()
        assert (np.diff(fp[name]) <= 1e-9).all(), (name, fp[name])
    assert (fp["app"] <= fp["raw"] + 1e-9).all()
    # the episode count at each threshold is the event figures' ``alarms``, summed over non-seizure events
    t = 0.5
    figs = event_figures(data, AlarmLogic("raw").states(data, p, t), max_per_event(p, data.window_event, len(streams)))
    non = np.asarray(labels) == 0
    hours = np.bincount(data.window_event, minlength=len(streams))[non].sum() * HOP / 3600
    assert figs.alarms[non].sum() / hours * 24 == pytest.approx(fp["raw"][50], rel=1e-9)
