"""``modelSelectionMetric: alarm_rule``: checkpoints chosen on validation events through the rule that
chooses the shipped threshold (budget gate, event sensitivity, ties to the event AUC, Youden fallback,
no val_loss rescue), the figures each epoch adds, and a real run choosing the epoch its history says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepepi.core.config import from_dict
from deepepi.data.windows import Windows
from deepepi.train.selection import Selector
from deepepi.train.threshold import epoch_figures

REPO = Path(__file__).resolve().parents[2]


def rule_selector(step_mode: bool = False) -> Selector:
    cfg = from_dict({"modelConfig": {"modelSelectionMetric": "alarm_rule"}}, warn=False)
    return Selector.from_model_config(cfg.model, step_mode=step_mode)


def rec(epoch: int, *, met: bool | None, sens: float | None, auc: float | None, youden: float | None = 0.0,
        val_loss: float = 1.0) -> dict:
    # window figures that every other metric would rank the other way round
    return {"epoch": epoch, "val_sensitivity": 1.0 - (sens or 0.0), "val_far": 0.0, "val_loss": val_loss,
            "val_budget_met": met, "val_event_sensitivity": sens, "val_event_youden": youden,
            "val_event_auc": auc}


def test_sensitivity_within_budget_then_auc_then_earlier() -> None:
    s = rule_selector()
    assert s.needs_events and not s.val_loss_rescue
    picks = [s.update(r) for r in (
        rec(1, met=False, sens=1.0, auc=0.99, youden=0.2),   # over budget: fallback on Youden J
        rec(2, met=False, sens=0.9, auc=0.50, youden=0.1),   # lower J: kept out
        rec(3, met=True, sens=0.5, auc=0.70),                # first within budget: saved
        rec(4, met=True, sens=0.5, auc=0.80),                # same sensitivity, higher AUC: saved
        rec(5, met=True, sens=0.5, auc=0.80, val_loss=0.1),  # a tie and a lower val_loss: not saved
        rec(6, met=False, sens=1.0, auc=1.00, youden=0.9),   # over budget after the gate was met: never
        rec(7, met=True, sens=0.625, auc=0.60),              # higher sensitivity beats any AUC
        rec(8, met=True, sens=0.5, auc=1.00),
    )]
    assert picks == [True, False, True, True, False, False, True, False]
    assert s.best_epoch == 7 and s.gate_met


def test_auc_only_breaks_ties_between_sensitivities_one_event_apart() -> None:
    s = rule_selector()
    n = 999  # 1/n > the AUC's largest weight, 1e-3
    assert s.update(rec(1, met=True, sens=500 / n, auc=1.0))
    assert s.update(rec(2, met=True, sens=501 / n, auc=0.0))


def test_a_budget_met_by_detecting_almost_nothing_is_no_gate() -> None:
    # seed 1 of the shipped config: one epoch met the 0-false-alarm budget by detecting 1 of 8 seizures
    # at 0.98; as the gate it would have locked the choice in against every later epoch
    s = rule_selector()
    assert s.min_sensitivity == 0.25  # the config default (saveBestMinSensitivity)
    assert s.update(rec(1, met=False, sens=1.0, auc=0.90, youden=0.80))
    assert not s.update(rec(2, met=True, sens=0.125, auc=0.91, youden=0.125))
    assert s.update(rec(3, met=False, sens=1.0, auc=0.97, youden=0.95))
    assert not s.gate_met and s.best_epoch == 3
    assert s.update(rec(4, met=True, sens=0.25, auc=0.50))  # at the minimum: the gate passes
    assert s.gate_met and s.best_epoch == 4


def test_no_seizure_event_in_validation_never_passes_the_gate() -> None:
    s = rule_selector()
    assert s.update(rec(1, met=None, sens=None, auc=None, youden=None))  # fallback saves something
    assert not s.gate_met and s.best_epoch == 1


def test_the_rule_is_in_the_description_and_the_config_schema() -> None:
    assert "alarmBudgetPer24h" in rule_selector().describe()
    from deepepi.core.errors import ConfigError

    with pytest.raises(ConfigError, match="modelSelectionMetric"):
        from_dict({"modelConfig": {"modelSelectionMetric": "alarm-rule"}}, warn=False)


def test_epoch_figures_are_the_threshold_rule_without_its_interval() -> None:
    from deepepi.train.threshold import choose_threshold

    t = np.concatenate([1000.0 * e + 5.0 * np.arange(3) for e in (1, 2, 3)])
    w = Windows(X=np.zeros((9, 1), np.float32), y=np.array([1, 1, 1, 1, 1, 1, 0, 0, 0]),
                event_id=np.repeat([1, 2, 3], 3), user_id=np.ones(9, np.int64), end_time=t)
    p = np.array([.96, .95, .97, .7, .8, .75, .6, .9, .65])
    cfg = from_dict({"dataProcessing": {"accSdThreshold": 0.0, "step": 125}}, warn=False)
    fig = epoch_figures(p, w, cfg)
    full = choose_threshold(p, w, 5.0, budget_per_24h=1.0)
    assert full["decision_threshold"] == 0.69
    assert fig == {"val_budget_met": True, "val_event_threshold": 0.69,
                   "val_event_sensitivity": 1.0, "val_false_alarms": 0, "val_event_youden": 1.0,
                   "val_event_auc": 0.5}  # event max p: .97 and .80 against .90
    assert full["sensitivity_interval"] is not None  # 2 seizure events: the full record has the interval


@pytest.mark.torch
def test_a_real_run_keeps_the_epoch_its_history_ranks_first(tmp_path: Path) -> None:
    from deepepi.train.run import train

    raw = json.loads((REPO / "configs" / "smoke.json").read_text())
    raw["modelConfig"].update(framework="pytorch", modelSelectionMetric="alarm_rule", epochs=3)
    cfg = from_dict(raw, warn=False)
    result = train(cfg, out=tmp_path / "run", quiet=True)
    hist = result.history
    assert all("val_event_sensitivity" in r and "val_event_auc" in r for r in hist)
    again = Selector.from_model_config(cfg.model)
    chosen = [r["epoch"] for r in hist if again.update(dict(r))][-1]
    assert result.best_epoch == chosen
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    threshold = json.loads((tmp_path / "run" / "threshold.json").read_text())
    best = next(r for r in hist if r["epoch"] == chosen)
    assert metrics["best_epoch"] == chosen and metrics["selection"]["metric"] == "alarm_rule"
    # the shipped threshold is the rule's on the chosen checkpoint, as recorded in its epoch
    assert threshold["decision_threshold"] == pytest.approx(best["val_event_threshold"], abs=1e-9)
    assert threshold["event_sensitivity"] == pytest.approx(best["val_event_sensitivity"], abs=1e-9)
