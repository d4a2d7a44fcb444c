"""The app's alarm logic: hand-worked sequences, the movement gate, and streaming == vectorised."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepepi.scoring.alarm import ALARM, OK, WARNING, AlarmParams, AlarmStateMachine, alarm_states, first_alarm, gate_windows, movement_cv_pct, positive, still


def stream(decisions, segments=None, params=AlarmParams()) -> list[int]:
    machine, out = AlarmStateMachine(params), []
    for i, d in enumerate(decisions):
        if segments is not None and i and segments[i] != segments[i - 1]:
            machine.reset()
        out.append(machine.step(bool(d)))
    return out


# (decisions, states) worked by hand from the app's rules: +5 s per positive, > 5 s WARNING,
# > 10 s ALARM; a negative after ALARM -> WARNING with the counter at 6 s; else OK and 0.
HAND = [
    ("1", [OK]),
    ("11", [OK, WARNING]),
    ("111", [OK, WARNING, ALARM]),
    ("11111", [OK, WARNING, ALARM, ALARM, ALARM]),
    ("1101", [OK, WARNING, OK, OK]),  # a negative in WARNING resets
    ("11101", [OK, WARNING, ALARM, WARNING, ALARM]),  # 6 + 5 = 11 > 10: alarm again at once
    ("111011", [OK, WARNING, ALARM, WARNING, ALARM, ALARM]),
    ("111001", [OK, WARNING, ALARM, WARNING, OK, OK]),  # two negatives: back to 0
    ("1110101", [OK, WARNING, ALARM, WARNING, ALARM, WARNING, ALARM]),
    ("0000", [OK, OK, OK, OK]),
]


@pytest.mark.parametrize("seq,want", HAND)
def test_hand_worked_sequences(seq: str, want: list[int]) -> None:
    decisions = np.array([c == "1" for c in seq])
    assert stream(decisions) == want
    assert alarm_states(decisions).tolist() == want


def test_segments_restart_the_machine() -> None:
    decisions = np.array([1, 1, 1, 0, 1, 1, 1], dtype=bool)
    segments = np.array([7, 7, 7, 9, 9, 9, 9])
    # the negative opens a new segment: OK (fresh machine), and the next run counts from 0
    want = [OK, WARNING, ALARM, OK, OK, WARNING, ALARM]
    assert alarm_states(decisions, segments).tolist() == want
    assert stream(decisions, segments) == want
    assert alarm_states(np.array([1, 1, 1], bool), np.array([1, 2, 3])).tolist() == [OK, OK, OK]


def test_other_timings() -> None:
    params = AlarmParams(warn_time=10, alarm_time=20, sample_period=5)  # warning 3rd, alarm 5th
    d = np.array([1, 1, 1, 1, 1, 0, 1, 1], dtype=bool)
    want = [OK, OK, WARNING, WARNING, ALARM, WARNING, WARNING, ALARM]  # revert 11: 16 W, 21 A
    assert stream(d, params=params) == want
    assert alarm_states(d, params=params).tolist() == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=60), st.lists(st.integers(0, 2), max_size=60),
       st.sampled_from([(5, 10, 5), (10, 20, 5), (5, 30, 5), (0, 5, 5), (2, 3, 1)]))
def test_vectorised_equals_streaming(decisions, seg_steps, timing) -> None:
    params = AlarmParams(*timing)
    d = np.array(decisions, dtype=bool)
    segments = np.cumsum((seg_steps + [0] * len(d))[:len(d)]) if seg_steps else None
    assert alarm_states(d, segments, params).tolist() == stream(d, segments, params)


def test_threshold_is_strict() -> None:
    assert positive(np.array([0.5, 0.50001, 0.49]), 0.5).tolist() == [False, True, False]


def datapoint(mean: float, amp: float) -> np.ndarray:
    """125 samples alternating mean +- amp, last sample at the mean: mean exact, std amp*sqrt(124/125)."""
    x = np.full(125, mean)
    x[:124] += amp * np.tile([1.0, -1.0], 62)
    return x


def test_movement_gate() -> None:
    moving, quiet = datapoint(1000.0, 60.0), datapoint(1000.0, 40.0)
    cv = movement_cv_pct(np.stack([moving, quiet]))
    assert cv == pytest.approx([6.0 * np.sqrt(124 / 125), 4.0 * np.sqrt(124 / 125)], rel=1e-12)
    assert still(np.stack([moving, quiet]), 5.0).tolist() == [False, True]
    assert still(np.zeros((1, 125)), 5.0).tolist() == [False]  # mean 0: NaN ratio, never gated (as Java)
    windows = np.stack([np.r_[quiet, moving], np.r_[moving, quiet]])  # the newest datapoint decides
    p = np.array([0.9, 0.8], dtype=np.float32)
    assert gate_windows(p, windows, 5.0).tolist() == pytest.approx([0.9, 0.0])
    assert gate_windows(p, windows, 0.0).tolist() == pytest.approx([0.9, 0.8])  # 0 %: gate off


def test_first_alarm() -> None:
    assert first_alarm(np.array([0, 1, 2, 2])) == 2
    assert first_alarm(np.array([0, 1, 0]), level=WARNING) == 1
    assert first_alarm(np.array([0, 1, 0])) is None
