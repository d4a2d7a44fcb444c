"""Framework-free parts of `deepepi train`: metrics, schedule, selection, early stopping, plot, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deepepi.scoring import metrics
from deepepi.train.history_plot import plot_history
from deepepi.train.batches import usable_samples
from deepepi.train.schedule import ThreePhase
from deepepi.train.selection import EarlyStop


def test_counts_and_rates_match_hand_count() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    c = metrics.Counts.from_labels(y, p)
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 1, 4, 1)
    r = metrics.rates(c)
    assert r["accuracy"] == pytest.approx(6 / 8)
    assert r["sensitivity"] == pytest.approx(2 / 3)
    assert r["far"] == pytest.approx(1 / 5)
    assert metrics.rates(metrics.Counts(tn=3))["sensitivity"] is None  # no seizures: undefined, not 0


def test_cross_entropy_matches_definition_and_is_stable() -> None:
    logits = np.array([[2.0, -1.0], [0.5, 0.5], [-3.0, 4.0]])
    y = np.array([0, 1, 1])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(3), y]))
    assert metrics.cross_entropy(logits, y) == pytest.approx(expected, rel=1e-12)
    assert math.isfinite(metrics.cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1])))


def test_evaluate_and_epoch_record_keys() -> None:
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    y = np.array([1, 1, 0, 0])
    ev = metrics.evaluate(y, logits)
    assert ev["accuracy"] == pytest.approx(0.5)
    assert ev["sensitivity"] == pytest.approx(0.5) and ev["far"] == pytest.approx(0.5)
    rec = metrics.epoch_record(3, ev, ev, 1e-3)
    assert tuple(rec) == metrics.HISTORY_KEYS and rec["epoch"] == 3


def test_event_report_detects_event_with_any_positive_window() -> None:
    event = np.array([10, 10, 10, 20, 20, 30, 30])
    y = np.array([1, 1, 1, 1, 1, 0, 0])
    pred = np.array([0, 0, 1, 0, 0, 1, 0])
    rep = metrics.event_report(y, pred, event)
    assert (rep["tp"], rep["fn"], rep["fp"], rep["tn"]) == (1, 1, 1, 0)
    assert rep["tpr"] == pytest.approx(0.5) and rep["fpr"] == pytest.approx(1.0)


def test_final_report_includes_osd_baseline() -> None:
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    rep = metrics.final_report(np.array([1, 0, 0]), logits, np.array([1, 2, 2]), np.array([2, 0, 5]))
    assert rep["window"]["tpr"] == 1.0 and rep["window"]["ppv"] == 1.0
    assert rep["osd_baseline"]["window"]["fp"] == 1 and rep["osd_baseline"]["event"]["fpr"] == 1.0


def test_three_phase_schedule_shape() -> None:
    s = ThreePhase(lr_start=1e-5, lr_peak=1e-3, lr_main_end=1e-4, warmup_steps=10, main_steps=100,
                   cooldown_steps=20)
    assert s(0) == pytest.approx(1e-5)
    assert s(5) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert s(10) == pytest.approx(1e-3)
    assert s(60) == pytest.approx(1e-4 + 0.5 * (1e-3 - 1e-4))  # cosine half-way
    assert s(110) == pytest.approx(1e-4)
    assert s(120) == pytest.approx(0.5e-4)
    assert s(130) == 0.0 and s(10_000) == 0.0
    rates = [s(i) for i in range(10, 110)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_early_stop_counts_like_keras() -> None:
    es = EarlyStop(patience=2)
    assert [es.update(v) for v in (1.0, 0.9, 0.95, 0.92, 0.5, 0.6, 0.6)] == \
        [False, False, False, True, False, False, True]


def test_usable_samples_drops_lone_last_sample() -> None:
    assert usable_samples(65, 64) == 64 and usable_samples(64, 64) == 64 and usable_samples(66, 64) == 66
    assert usable_samples(1, 64) == 1


def test_plot_history_writes_png(tmp_path) -> None:  # noqa: ANN001
    hist = [metrics.epoch_record(e, {"loss": 1 / e, "accuracy": 0.5, "sensitivity": None, "far": 0.1},
                                 {"loss": 1.2 / e, "accuracy": 0.4, "sensitivity": 0.5, "far": 0.2}, 1e-3)
            for e in (1, 2)]
    out = tmp_path / "training.png"
    plot_history(out, hist, title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["training.png"]


def test_event_max_and_sensitivity_at_far_by_hand() -> None:
    ids, best = metrics.event_max(np.array([0.1, 0.7, 0.2, 0.9, 0.3]), np.array([5, 5, 3, 3, 8]))
    assert ids.tolist() == [3, 5, 8] and best.tolist() == [0.9, 0.7, 0.3]
    neg = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.95] * 2)  # 20 negatives
    pos = np.array([0.99, 0.96, 0.9, 0.85, 0.5])
    sens, far, t = metrics.sensitivity_at_far(pos, neg, 0.05)  # one allowed, but 0.95 is tied twice
    assert (sens, far, t) == (pytest.approx(0.4), 0.0, 0.95)
    sens, far, t = metrics.sensitivity_at_far(pos, neg, 0.0)   # none allowed: t = the top negative
    assert t == 0.95 and far == 0.0 and sens == pytest.approx(0.4)
    sens, far, t = metrics.sensitivity_at_far(pos, neg, 0.1)   # two allowed: t = 0.8
    assert t == 0.8 and far == pytest.approx(0.1) and sens == pytest.approx(0.8)
