"""The training threshold rule on hand-made validation probabilities (framework-free): the budget in
app-logic alarm episodes, ties to the higher threshold, the loud Youden-J fallback, and the bootstrap
interval when validation holds fewer than 10 seizure events."""

from __future__ import annotations

import numpy as np
import pytest

from deepepi.scoring.events import AlarmLogic
from deepepi.scoring.operating import RULE_BUDGET, RULE_FALLBACK, training_threshold
from scoring_streams import eval_data


def stream(peak: float, n: int = 36, at: int = 10) -> list[float]:
    """3 minutes of 5 s windows at p 0.05 with three consecutive windows at ``peak`` (one app alarm)."""
    p = [0.05] * n
    p[at:at + 3] = [peak] * 3
    return p


def rule(peaks: list[float], labels: list[int], budget: float) -> dict:
    streams = [stream(x) for x in peaks]
    return training_threshold(np.concatenate(streams), eval_data(streams, labels), budget_per_24h=budget,
                              logic=AlarmLogic("app"), seed=3)


def test_highest_sensitivity_within_the_budget_ties_to_the_higher_threshold() -> None:
    # seizure events peak at 0.9 and 0.5; non-seizure events at 0.6 and 0.05 (6 minutes of recording)
    peaks, labels = [0.9, 0.5, 0.6, 0.05], [1, 1, 0, 0]
    rec = rule(peaks, labels, budget=1.0)  # 1 per 24 h on 0.1 h allows no false alarm: t >= 0.60
    assert rec["decision_threshold"] == 0.89 and rec["rule_kind"] == RULE_BUDGET and rec["budget_met"] is True
    assert rec["event_sensitivity"] == 0.5 and rec["false_alarms"] == 0 and rec["fp_per_24h"] == 0.0
    assert rec["budget_allows_false_alarms"] == 0 and rec["validation_non_seizure_hours"] == pytest.approx(0.1)
    generous = rule(peaks, labels, budget=500.0)  # one false alarm in 0.1 h is 240 per 24 h: allowed
    assert generous["decision_threshold"] == 0.49 and generous["event_sensitivity"] == 1.0
    assert generous["false_alarms"] == 1 and generous["fp_per_24h"] == pytest.approx(240.0)
    assert rec["alarm_logic"]["name"] == "app" and rec["alarm_budget_per_24h"] == 1.0


def test_no_threshold_within_the_budget_falls_back_to_youden_j_and_says_so() -> None:
    # a non-seizure event alarms above every seizure: any threshold that detects a seizure alarms falsely
    peaks, labels = [0.9, 0.8, 0.95, 0.3, 0.05], [1, 1, 0, 0, 0]
    rec = rule(peaks, labels, budget=1.0)
    # J = sensitivity - false-alarm ratio: 1 - 2/3 below 0.3, 1 - 1/3 on [0.30, 0.80), 0.5 - 1/3 on [0.80, 0.90)
    assert rec["rule_kind"] == RULE_FALLBACK and rec["budget_met"] is False
    assert rec["decision_threshold"] == 0.79 and rec["youden_j"] == pytest.approx(2 / 3)
    assert rec["warnings"][0].startswith("THRESHOLD FALLBACK") and "0.79" in rec["warnings"][0]
    assert rec["event_sensitivity"] == 1.0 and rec["false_alarms"] == 1


def test_few_seizure_events_warn_with_the_bootstrap_interval() -> None:
    few = rule([0.9, 0.5, 0.6, 0.05], [1, 1, 0, 0], budget=1.0)
    lo, hi = few["sensitivity_interval"]
    assert lo == 0.0 and hi == 1.0  # 2 events, 1 detected: resamples give 0, 0.5 and 1
    assert any(w.startswith("threshold uncertain: the validation split holds 2 seizure") for w in few["warnings"])
    many = rule([0.9] * 9 + [0.5, 0.6, 0.05], [1] * 10 + [0, 0], budget=1.0)
    assert many["sensitivity_interval"] is None and many["warnings"] == []
    assert many["event_sensitivity"] == 0.9 and many["decision_threshold"] == 0.89


def test_app_logic_needs_three_consecutive_positives() -> None:
    # a non-seizure event with two windows at 0.99 raises WARNING, not ALARM: no false alarm
    streams = [stream(0.9), [0.05] * 10 + [0.99, 0.99] + [0.05] * 24]
    rec = training_threshold(np.concatenate(streams), eval_data(streams, [1, 0]), budget_per_24h=0.0)
    assert rec["decision_threshold"] == 0.89 and rec["false_alarms"] == 0
