"""Trained-mode statistics: single-class models, paired McNemar, bootstrap by event against seed margins."""

from __future__ import annotations

import numpy as np
import pytest

from deepepi.verify import checks, stats

MARGINS = dict(stats.SEED_MARGINS)


def _events(n_events: int = 40, windows: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and event ids: every fourth event is a seizure (all its windows labelled 1)."""
    event_id = np.repeat(np.arange(n_events), windows)
    labels = (event_id % 4 == 0).astype(np.int64)
    return labels, event_id


def _probs(pred: np.ndarray) -> np.ndarray:
    p1 = np.where(pred == 1, 0.8, 0.2)
    return np.stack([1 - p1, p1], axis=1)


def _model(labels: np.ndarray, *, tpr: float, fpr: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(labels == 1, rng.random(len(labels)) < tpr, rng.random(len(labels)) < fpr).astype(np.int64)


def test_event_table_rates_match_hand_counts() -> None:
    labels = np.array([1, 1, 0, 0, 0, 1])
    event_id = np.array([5, 5, 7, 7, 9, 11])
    a = np.array([1, 0, 1, 0, 0, 0])
    b = np.array([1, 1, 0, 0, 0, 1])
    table = stats.EventTable.build(a, b, labels, event_id)
    r = table.rates(np.ones(4))
    assert r["window_tpr"][:, 0].tolist() == [1 / 3, 1.0]
    assert r["window_fpr"][:, 0].tolist() == [1 / 3, 0.0]
    assert r["event_tpr"][:, 0].tolist() == [0.5, 1.0]  # events 5 and 11 are seizures
    assert r["event_fpr"][:, 0].tolist() == [0.5, 0.0]  # event 7 fired in A


def test_mcnemar_counts_discordant_pairs_and_exact_p() -> None:
    ca = np.array([True] * 10 + [False] * 2 + [True] * 5)
    cb = np.array([False] * 10 + [True] * 2 + [True] * 5)
    out = stats.mcnemar(ca, cb)
    assert (out["only_a_correct"], out["only_b_correct"]) == (10, 2)
    assert out["p_value"] == pytest.approx(0.03857, abs=1e-4)  # two-sided binomial(2; 12, 0.5)
    assert stats.mcnemar(ca, ca)["p_value"] == 1.0


def test_bootstrap_interval_covers_the_observed_difference() -> None:
    labels, event_id = _events()
    a, b = _model(labels, tpr=0.8, fpr=0.05, seed=1), _model(labels, tpr=0.6, fpr=0.05, seed=2)
    out = stats.bootstrap(stats.EventTable.build(a, b, labels, event_id), seed=0)
    tpr = out["window_tpr"]
    assert tpr["low"] <= tpr["diff"] <= tpr["high"]
    assert tpr["diff"] == pytest.approx(np.mean(a[labels == 1]) - np.mean(b[labels == 1]))
    assert stats.bootstrap(stats.EventTable.build(a, b, labels, event_id), seed=0) == out  # seeded


def test_single_class_model_fails_and_names_it() -> None:
    labels, _ = _events()
    never = _probs(np.zeros_like(labels))
    check = checks.fires_both_classes(never, labels, "A")
    assert check.status == "FAIL" and "never fires" in check.detail
    assert checks.fires_both_classes(_probs(labels), labels, "A").status == "PASS"
    assert checks.fires_both_classes(never, np.zeros_like(labels), "A").status == "INFO"


def test_similar_models_pass_and_a_model_that_rarely_fires_fails() -> None:
    labels, event_id = _events(n_events=80)
    a = _model(labels, tpr=0.80, fpr=0.04, seed=1)
    similar = _model(labels, tpr=0.76, fpr=0.05, seed=2)
    ok = checks.paired_statistics(_probs(a), _probs(similar), labels, event_id, margins=MARGINS)
    assert ok.status == "PASS", ok.detail
    damaged = _model(labels, tpr=0.30, fpr=0.01, seed=3)
    bad = checks.paired_statistics(_probs(a), _probs(damaged), labels, event_id, margins=MARGINS)
    assert bad.status == "FAIL" and "window_tpr" in bad.figures["beyond_margin"], bad.detail
    assert bad.figures["mcnemar"]["p_value"] < 1e-6


def test_beyond_margin_needs_the_whole_interval_outside() -> None:
    assert stats.beyond_margin({"low": 0.11, "high": 0.3}, 0.1)
    assert stats.beyond_margin({"low": -0.3, "high": -0.11}, 0.1)
    assert not stats.beyond_margin({"low": 0.05, "high": 0.3}, 0.1)
    assert not stats.beyond_margin({"low": None, "high": None}, 0.1)
