"""Intervals that keep a width (Wilson, Garwood) when the event bootstrap collapses, the latency
interval, negative latencies counted apart, and the per-event outcome order. Numbers worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepepi.scoring.bootstrap import Rule, intervals, poisson_rate, weighted_medians, wilson
from deepepi.scoring.evaldata import EvalData
from deepepi.scoring.events import EventFigures, summary, table_by
from deepepi.scoring.per_event import (DETECTED, FALSE_ALARM, MISSED, MISSED_NO_WINDOW, NO_ALARM, NO_WINDOW,
                                       outcome_order, outcomes)

RULE = Rule(draws=500, within_class=True)


def test_wilson_by_hand() -> None:
    assert wilson(18, 18) == pytest.approx([0.824, 1.0], abs=5e-4)  # the bootstrap would say 1.000 to 1.000
    assert wilson(0, 18) == pytest.approx([0.0, 0.176], abs=5e-4)
    assert wilson(3, 4) == pytest.approx([0.301, 0.954], abs=5e-4)
    assert wilson(0, 4) == pytest.approx([0.0, 0.490], abs=5e-4)
    assert wilson(1, 0) is None


def test_garwood_by_hand() -> None:
    # exact Poisson 95 %: k = 0 -> [0, -ln 0.025 = 3.689]; k = 1 -> [0.0253, 5.572]; k = 10 -> [4.795, 18.390]
    assert poisson_rate(0, 24.0) == pytest.approx([0.0, 3.689], abs=5e-4)
    assert poisson_rate(1, 24.0) == pytest.approx([0.0253, 5.572], abs=5e-4)
    assert poisson_rate(10, 12.0) == pytest.approx([2 * 4.795, 2 * 18.390], abs=2e-3)  # per 24 h from 12 h
    assert poisson_rate(3, 0.0) is None


def test_weighted_median_is_the_median_of_the_expanded_sample() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(-20, 60, 7).astype(float)
    weights = rng.integers(0, 4, (200, 7)).astype(float)
    got = weighted_medians(values, weights)
    for row, g in zip(weights, got):
        expanded = np.repeat(values, row.astype(int))
        assert (np.isnan(g) and not len(expanded)) or g == np.median(expanded)


def _figs(detected: list[bool], latency: list[float], alarms: list[int], n_windows: list[int]) -> EventFigures:
    n = len(detected)
    return EventFigures(detected=np.array(detected), warned=np.array(detected), alarms=np.array(alarms),
                        first_alarm=np.full(n, np.nan), latency=np.array(latency, float), max_p=np.full(n, 0.9),
                        n_windows=np.array(n_windows))


def test_degenerate_bootstrap_falls_back_and_says_so() -> None:
    # 18 seizure events, all detected; 3 non-seizure events of 240 windows (x 5 s = 1 h), no false alarm
    labels = np.array([1] * 18 + [0] * 3)
    lat = [5.0 * (i % 4) for i in range(18)] + [np.nan] * 3
    figs = _figs([True] * 18 + [False] * 3, lat, [1] * 18 + [0] * 3, [10] * 18 + [240] * 3)
    b = intervals(labels, figs, 5.0, seed=0, rule=RULE)
    assert b["sensitivity"] == pytest.approx([0.824, 1.0], abs=5e-4)
    assert b["interval_methods"]["sensitivity"].startswith("Wilson score interval (the bootstrap was degenerate")
    assert b["fp_per_24h"] == pytest.approx([0.0, 3.689 * 24 / 1.0], abs=0.02)  # 0 in 1 h of non-seizure time
    assert "Garwood" in b["interval_methods"]["fp_per_24h"]
    assert b["false_alarm_ratio"] == pytest.approx(wilson(0, 3))
    lo, hi = b["latency_median_s"]  # latencies 0, 5, 10, 15 (median 7.5): a real width
    assert 0.0 <= lo <= 7.5 <= hi <= 15.0 and hi > lo
    assert b["interval_methods"]["latency_median_s"].startswith("bootstrap percentile")


def test_spread_bootstrap_stays_percentile() -> None:
    labels = np.array([1] * 10 + [0] * 4)
    figs = _figs([True] * 6 + [False] * 4 + [True, False, True, False], [10.0] * 6 + [np.nan] * 8,
                 [1] * 6 + [0] * 4 + [2, 0, 1, 0], [10] * 14)
    b = intervals(labels, figs, 5.0, seed=0, rule=RULE)
    lo, hi = b["sensitivity"]
    assert b["interval_methods"]["sensitivity"] == "bootstrap percentile" and lo < 0.6 < hi
    assert b["interval_methods"]["fp_per_24h"] == "bootstrap percentile"
    # six equal latencies: every resample's median is 10 s, and the method says why the width is 0
    assert b["latency_median_s"] == [10.0, 10.0] and "share one value" in b["interval_methods"]["latency_median_s"]


def test_negative_latency_is_counted_apart() -> None:
    """A planted alarm 15 s before the onset: counted in before_onset, not in the latency figures."""
    events = pd.DataFrame({"eventId": [1, 2, 3, 4], "userId": [7, 7, 8, 8], "label": [1, 1, 1, 0],
                           "subtype": ["TC", "TC", "TC", None]})
    data = EvalData(X=np.zeros((4, 0)), y=np.array([1, 1, 1, 0]), end_time=np.zeros(4), osd=np.zeros(4, int),
                    segment=np.arange(4), window_event=np.arange(4), events=events, hop_s=5.0, sources=[])
    figs = _figs([True, True, True, False], [-15.0, 20.0, 30.0, np.nan], [1, 1, 1, 0], [1, 1, 1, 720])
    lat = summary(data, figs)["latency_s"]
    assert lat["before_onset"] == 1
    assert (lat["n"], lat["median"], lat["min"], lat["mean"]) == (2, 25.0, 20.0, 25.0)
    by_user = {r["userId"]: r for r in table_by(data, figs, "userId")}
    assert by_user[7]["latency_before_onset"] == 1 and by_user[7]["latency_median_s"] == 20.0
    assert by_user[8]["non_seizure_hours"] == pytest.approx(1.0)  # 720 windows x 5 s
    b = intervals(events["label"].to_numpy(), figs, 5.0, seed=0, rule=RULE)
    assert b["latency_median_s"][0] >= 20.0  # the negative latency never enters a resample's median
    assert "2 non-negative latencies" in b["interval_methods"]["latency_median_s"]


def test_outcome_order_puts_errors_first() -> None:
    seizure = np.array([1, 1, 0, 1, 0, 1, 0, 1], bool)
    detected = np.array([1, 0, 1, 0, 0, 0, 1, 1], bool)
    n_windows = np.array([4, 4, 6, 3, 5, 0, 6, 2])
    max_p = np.array([.9, .4, .7, .2, .3, np.nan, .95, .8])
    alarms = np.array([1, 0, 1, 0, 0, 0, 3, 2])
    o = outcomes(seizure, detected, n_windows)
    assert o.tolist() == [DETECTED, MISSED, FALSE_ALARM, MISSED, NO_ALARM, MISSED_NO_WINDOW, FALSE_ALARM, DETECTED]
    order = outcome_order(o, max_p, alarms).tolist()
    # misses, lowest max p first (3, 1); the no-window miss (5); false alarms, most alarms first (6, 2);
    # detected, most alarms first (7, 0); quiet non-seizure events (4)
    assert order == [3, 1, 5, 6, 2, 7, 0, 4]
    assert sorted(order) == list(range(8))  # one row per event
    assert outcomes([False], [False], [0]).tolist() == [NO_WINDOW]
