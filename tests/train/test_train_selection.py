"""Checkpoint selection: every reference metric on fixed histories, gates, ties and the fallback.

The expected epochs are worked out by hand from the rules in deepepi/train/selection.py (the
reference's trainModel_pytorch); each comment gives the figures that decide.
"""

from __future__ import annotations

import json
import math

import pytest

from deepepi.core.config import from_dict
from deepepi.train.selection import Selector, f_beta_score


def _rec(epoch: int, sens: float | None, far: float | None, loss: float) -> dict:
    return {"epoch": epoch, "val_sensitivity": sens, "val_far": far, "val_loss": loss}


def _replay(sel: Selector, history: list[dict]) -> list[bool]:
    return [sel.update(r) for r in history]


# Gate: sensitivity >= 0.25, far <= 0.3. All pass; step mode (no val_loss rescue) isolates each metric.
#   epoch  sens  far   loss  youden  f1      f2      -far
#   1      0.90  0.30  0.50  0.60    0.7875  0.8514  -0.30
#   2      0.50  0.00  0.40  0.50    0.6667  0.5556   0.00
#   3      0.80  0.10  0.45  0.70    0.8471  0.8182  -0.10
#   4      0.95  0.25  0.40  0.70    0.8382  0.9019  -0.25
#   5      0.60  0.00  0.60  0.60    0.7500  0.6522   0.00
PASSING = [_rec(1, 0.9, 0.3, 0.5), _rec(2, 0.5, 0.0, 0.4), _rec(3, 0.8, 0.1, 0.45),
           _rec(4, 0.95, 0.25, 0.4), _rec(5, 0.6, 0.0, 0.6)]
EXPECTED = {
    "youden": ([True, False, True, False, False], 3),    # epoch 4 ties epoch 3: the earlier stays
    "min_fpr": ([True, True, False, False, False], 2),   # epoch 5 ties epoch 2
    "f1": ([True, False, True, False, False], 3),
    "f_beta": ([True, False, False, True, False], 4),
    # dual: 1 saves (sens > 0, far < inf); 2, 3 cut far by > 10 % but move sens by > 0.05; 4 improves both
    "dual_improvement": ([True, False, False, True, False], 4),
    "val_loss": ([True, True, False, False, False], 2),  # epoch 4's 0.40 ties epoch 2's
}


@pytest.mark.parametrize("metric", sorted(EXPECTED))
def test_each_metric_picks_the_reference_epoch(metric: str) -> None:
    sel = Selector(metric=metric, min_sensitivity=0.25, max_far=0.3, f_beta=2.0, val_loss_rescue=False)
    saves, best = EXPECTED[metric]
    assert _replay(sel, PASSING) == saves
    assert sel.best_epoch == best and sel.gate_met


def test_f_beta_formula_uses_specificity() -> None:
    assert f_beta_score(0.8, 0.1, 1.0) == pytest.approx(2 * 0.8 * 0.9 / 1.7)
    assert f_beta_score(0.95, 0.25, 2.0) == pytest.approx(5 * 0.95 * 0.75 / (4 * 0.75 + 0.95))
    assert f_beta_score(0.0, 1.0, 2.0) == 0.0


# dual_improvement in epoch mode (val_loss rescue on), defaults farReduction 0.10, tolerance 0.05.
DUAL = [_rec(1, 0.0, 0.0, 0.7),    # gate fails, never met: fallback needs sens > 0 -> no
        _rec(2, 0.5, 0.2, 0.6),    # first pass: sens > 0 and far < inf -> save
        _rec(3, 0.52, 0.15, 0.65),  # both improved -> save
        _rec(4, 0.49, 0.12, 0.7),  # far -20 %, sens within 0.03 -> save
        _rec(5, 0.6, 0.13, 0.5),   # neither clause, but val_loss 0.5 < 0.7 -> rescue save
        _rec(6, 0.1, 0.0, 0.3),    # gate fails after it was met -> never saved
        _rec(7, 0.7, 0.13, 0.55)]  # far not lower, loss not below 0.5 -> no


def test_dual_improvement_with_val_loss_rescue_in_epoch_mode() -> None:
    sel = Selector(metric="dual_improvement")
    assert _replay(sel, DUAL) == [False, True, True, True, True, False, False]
    assert sel.best_epoch == 5
    assert (sel.best_sens, sel.best_far, sel.best_val_loss) == (0.6, 0.13, 0.5)


def test_step_mode_has_no_val_loss_rescue() -> None:
    sel = Selector(metric="dual_improvement", val_loss_rescue=False)
    assert _replay(sel, DUAL) == [False, True, True, True, False, False, False]
    assert sel.best_epoch == 4


def test_both_improvement_switch_keeps_only_the_far_reduction_clause() -> None:
    history = [_rec(1, 0.5, 0.2, 0.5),    # first save: the clause always applies then
               _rec(2, 0.8, 0.1, 0.5),    # both improved, sensitivity moved by 0.3 > tolerance
               _rec(3, 0.52, 0.17, 0.5)]  # vs (0.5, 0.2): far -15 %, sens +0.02
    off = Selector(metric="dual_improvement", both_improvement=False, val_loss_rescue=False)
    assert _replay(off, history) == [True, False, True]
    on = Selector(metric="dual_improvement", val_loss_rescue=False)
    assert _replay(on, history) == [True, True, False]


def test_dual_improvement_after_a_zero_far_save_never_saves_again() -> None:
    sel = Selector(metric="dual_improvement", val_loss_rescue=False)
    assert _replay(sel, [_rec(1, 0.5, 0.0, 0.5), _rec(2, 1.0, 0.0, 0.1), _rec(3, 0.5, 0.0, 0.1)]) == \
        [True, False, False]


# Gate sensitivity >= 0.5 never met.
NEVER = [_rec(1, 0.0, 0.0, 0.7), _rec(2, 0.3, 0.2, 0.6), _rec(3, 0.4, 0.1, 0.5), _rec(4, 0.1, 0.0, 0.4)]


@pytest.mark.parametrize("metric,saves", [
    ("min_fpr", [True, True, True, False]),          # fallback scores sens - far: 0, 0.1, 0.3, 0.1
    ("youden", [True, True, True, False]),
    ("f1", [True, True, True, False]),               # 0, 0.436, 0.554, 0.182
    ("dual_improvement", [False, True, True, False]),  # strict both-improved only
    ("val_loss", [True, True, True, True]),
])
def test_fallback_when_the_gate_is_never_met(metric: str, saves: list[bool]) -> None:
    sel = Selector(metric=metric, min_sensitivity=0.5)
    assert _replay(sel, NEVER) == saves
    assert not sel.gate_met
    assert sel.best_epoch == max(i + 1 for i, s in enumerate(saves) if s)


def test_min_fpr_fallback_does_not_crown_a_silent_detector() -> None:
    """The reference's -far fallback would keep epoch 1 (far 0, sensitivity 0): a model that never fires."""
    sel = Selector(metric="min_fpr", min_sensitivity=0.5)
    _replay(sel, NEVER)
    assert sel.best_epoch == 3


def test_max_far_gate_and_undefined_rates_count_as_zero() -> None:
    sel = Selector(metric="min_fpr", min_sensitivity=0.0, max_far=0.1, val_loss_rescue=False)
    assert not sel.gate(_rec(1, 0.9, 0.11, 0.1)) and sel.gate(_rec(1, 0.9, 0.1, 0.1))
    assert sel.gate(_rec(1, None, None, 0.1))  # no windows of a class: rate 0, as the reference
    assert not Selector(metric="youden", min_sensitivity=0.1).gate(_rec(1, None, 0.0, 0.1))


def test_state_round_trip_is_json_safe_and_continues_identically() -> None:
    sel = Selector(metric="dual_improvement")
    _replay(sel, DUAL[:3])
    text = json.dumps(sel.state(), allow_nan=False)
    back = Selector.from_state(json.loads(text))
    assert back == sel
    assert _replay(back, DUAL[3:]) == _replay(sel, DUAL[3:])
    fresh = Selector.from_state(json.loads(json.dumps(Selector().state(), allow_nan=False)))
    assert fresh.best_far == math.inf and fresh.best_metric == -math.inf


def test_from_config_reads_every_selection_key() -> None:
    cfg = from_dict({"modelConfig": {"modelSelectionMetric": "f_beta", "fBeta": 0.5, "saveBestMinSensitivity": 0.4,
                                     "saveBestMaxFpr": 0.05, "saveBestOnFarReduction": 0.2,
                                     "saveBestOnSensitivityTolerance": 0.1, "saveBestOnBothImprovement": False}},
                    warn=False)
    sel = Selector.from_model_config(cfg.model, step_mode=True)
    assert (sel.metric, sel.f_beta, sel.min_sensitivity, sel.max_far, sel.far_reduction, sel.sens_tolerance,
            sel.both_improvement, sel.val_loss_rescue) == ("f_beta", 0.5, 0.4, 0.05, 0.2, 0.1, False, False)
    with pytest.raises(ValueError, match="modelSelectionMetric"):
        Selector(metric="accuracy")
