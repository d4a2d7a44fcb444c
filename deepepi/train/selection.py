"""Best-checkpoint selection shared by both trainers: the reference's rules, one implementation.

Each evaluation's history record (val_sensitivity, val_far, val_loss; window level, argmax) goes
through ``Selector.update``, which says whether that evaluation becomes the saved model. The rules
follow nnTraining2's ``trainModel_pytorch`` (modelSelectionMetric, saveBest* keys, fBeta):

1. gate: fails when val_far > saveBestMaxFpr (when set) or val_sensitivity < saveBestMinSensitivity
   (equality passes).
2. gate passed: ``dual_improvement`` saves when sensitivity rose and false alarms fell, or when the
   relative false-alarm reduction exceeds saveBestOnFarReduction with sensitivity within
   +-saveBestOnSensitivityTolerance of the saved one; ``f1``/``f_beta`` (specificity in place of
   precision), ``youden`` (sens - far), ``min_fpr`` (-far) and ``val_loss`` (-loss) save when the
   metric is strictly higher than the best so far (ties keep the earlier checkpoint).
3. gate never passed yet: the fallback saves on the same metric's strict improvement, so an
   unlucky run still yields a model; ``metrics.json`` then says the gate was never met.
4. gate failed after it once passed: no save.
5. epoch mode only: a gate-passing evaluation that saved nothing still saves when its val_loss is
   below that of the saved checkpoint.

``alarm_rule`` (deepepi's own, not the reference's) selects on validation *events* through the rule
that later chooses the shipped threshold (``scoring.operating.training_threshold``: app logic,
movement gate, ``alarmBudgetPer24h``), so the checkpoint and its threshold answer one question. The
trainer adds the rule's figures to each history record (``train.threshold.epoch_figures``). Gate: a
threshold meets the budget with validation *event* sensitivity >= saveBestMinSensitivity (a budget
of no false alarm is met by nearly any model that detects one seizure at 0.98, and once the gate is
met rule 4 locks the choice in); metric: the event sensitivity there, ties to the higher event AUC
(max window probability per event); fallback until the gate is met: event Youden J, ties likewise.
saveBestMaxFpr, the dual_improvement keys and the val_loss rescue (rule 5) do not apply: window labels
cover a whole 3-minute event, of which the seizure is a part, so window figures and val_loss reward
labelling quiet minutes.

Deviations from the reference, on purpose:
- ``val_loss`` is a selection metric here (the reference raises ValueError for it).
- the ``min_fpr`` fallback scores Youden's J (sens - far) instead of -far: -far alone crowns a
  detector that never fires (far 0), which is how a single-class model got shipped.
- ``saveBestOnBothImprovement`` (read, never used by the reference) switches the "both improved"
  clause of ``dual_improvement`` after the first save (false: only a false-alarm reduction at about
  the same sensitivity replaces the checkpoint); its default (true) is the reference behaviour.
- undefined rates (no seizure or no non-seizure windows) count as 0, as in the reference's training
  loop.
Both trainers feed the same records in the same order, so they pick the same evaluation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

METRICS = ("dual_improvement", "f1", "f_beta", "youden", "min_fpr", "val_loss", "alarm_rule")
EVENT_METRICS = ("alarm_rule",)  # need the rule's figures in each record (``train.threshold.epoch_figures``)
# The event AUC only orders checkpoints of equal sensitivity: sensitivities differ by 1/n >= 1e-3 for
# fewer than 1,000 validation seizure events, and the AUC adds at most 1e-3.
AUC_TIE_WEIGHT = 1e-3


def f_beta_score(sens: float, far: float, beta: float) -> float:
    """The reference's F-beta with specificity (1 - far) where precision would be; 0 when both are 0."""
    spec = 1.0 - far
    b2 = beta * beta
    den = b2 * spec + sens
    return 0.0 if den <= 0.0 else (1.0 + b2) * sens * spec / den


@dataclass
class Selector:
    metric: str = "dual_improvement"
    min_sensitivity: float = 0.25
    max_far: float | None = None
    f_beta: float = 2.0
    far_reduction: float = 0.10
    sens_tolerance: float = 0.05
    both_improvement: bool = True
    val_loss_rescue: bool = True  # rule 5; the reference applies it in epoch mode only
    best_epoch: int | None = None
    criteria_met_once: bool = False
    best_sens: float = 0.0
    best_far: float = math.inf
    best_val_loss: float = math.inf
    best_metric: float = -math.inf
    best_metric_fallback: float = -math.inf

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"modelSelectionMetric {self.metric!r}: expected one of {', '.join(METRICS)}")

    @classmethod
    def from_model_config(cls, model: dict[str, Any], *, step_mode: bool = False) -> "Selector":
        max_far = model["saveBestMaxFpr"]
        return cls(metric=str(model["modelSelectionMetric"]),
                   min_sensitivity=float(model["saveBestMinSensitivity"]),
                   max_far=None if max_far is None else float(max_far),
                   f_beta=float(model["fBeta"]),
                   far_reduction=float(model["saveBestOnFarReduction"]),
                   sens_tolerance=float(model["saveBestOnSensitivityTolerance"]),
                   both_improvement=bool(model["saveBestOnBothImprovement"]),
                   val_loss_rescue=not step_mode and str(model["modelSelectionMetric"]) not in EVENT_METRICS)

    @property
    def needs_events(self) -> bool:
        """Whether each record must carry the rule's validation-event figures."""
        return self.metric in EVENT_METRICS

    @staticmethod
    def _rates(record: dict[str, Any]) -> tuple[float, float]:
        sens, far = record["val_sensitivity"], record["val_far"]
        return (0.0 if sens is None else float(sens)), (0.0 if far is None else float(far))

    def gate(self, record: dict[str, Any]) -> bool:
        if self.needs_events:
            sens = record.get("val_event_sensitivity")
            return bool(record.get("val_budget_met")) and sens is not None and float(sens) >= self.min_sensitivity
        sens, far = self._rates(record)
        return not ((self.max_far is not None and far > self.max_far) or sens < self.min_sensitivity)

    def metric_value(self, record: dict[str, Any], *, fallback: bool = False) -> float:
        """The figure to maximise (not used by dual_improvement's own rule)."""
        sens, far = self._rates(record)
        if self.metric == "val_loss":
            return -float(record["val_loss"])
        if self.needs_events:
            main = record.get("val_event_youden" if fallback else "val_event_sensitivity")
            auc = record.get("val_event_auc")
            return (-1.0 if main is None else float(main)) + AUC_TIE_WEIGHT * (0.0 if auc is None else float(auc))
        if self.metric == "min_fpr":
            return sens - far if fallback else -far
        if self.metric == "youden":
            return sens - far
        return f_beta_score(sens, far, 1.0 if self.metric == "f1" else self.f_beta)

    def _dual(self, sens: float, far: float) -> bool:
        both = (self.both_improvement or self.best_epoch is None) and sens > self.best_sens and far < self.best_far
        reduction = (self.best_far - far) / self.best_far if 0.0 < self.best_far < math.inf else 0.0
        return both or (reduction > self.far_reduction and abs(sens - self.best_sens) <= self.sens_tolerance)

    def _improves(self, record: dict[str, Any], sens: float, far: float, *, fallback: bool) -> bool:
        if self.metric == "dual_improvement":
            return sens > self.best_sens and far < self.best_far if fallback else self._dual(sens, far)
        value = self.metric_value(record, fallback=fallback)
        best = self.best_metric_fallback if fallback else self.best_metric
        if value <= best:
            return False
        if fallback:
            self.best_metric_fallback = value
        else:
            self.best_metric = value
        return True

    def update(self, record: dict[str, Any]) -> bool:
        """Consider one evaluation's history record; True when it becomes the saved model."""
        sens, far = self._rates(record)
        passed = self.gate(record)
        if passed:
            self.criteria_met_once = True
            save = self._improves(record, sens, far, fallback=False)
        else:  # rule 3 while the gate was never met; rule 4 after
            save = not self.criteria_met_once and self._improves(record, sens, far, fallback=True)
        if not save and passed and self.val_loss_rescue and record["val_loss"] < self.best_val_loss:
            save = True
        if save:
            self.best_epoch = int(record["epoch"])
            self.best_sens, self.best_far, self.best_val_loss = sens, far, float(record["val_loss"])
        return save

    @property
    def gate_met(self) -> bool:
        return self.criteria_met_once

    def state(self) -> dict[str, Any]:
        """Primitives only (JSON-safe: infinities, which occur only as initial values, become None)."""
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Selector":
        defaults = {f.name: f.default for f in fields(cls)}
        return cls(**{k: (defaults[k] if v is None and isinstance(defaults[k], float) else v)
                      for k, v in state.items()})

    def describe(self) -> str:
        if self.needs_events:
            return ("alarm_rule on validation events (the shipped threshold's rule: app logic, movement gate, "
                    f"alarmBudgetPer24h), gate: within the budget at event sensitivity >= {self.min_sensitivity}; "
                    "the highest event sensitivity, ties to the higher event AUC (until a checkpoint passes the "
                    "gate, the best event Youden J)")
        far = "no limit" if self.max_far is None else f"<= {self.max_far}"
        return (f"{self.metric} on validation windows, gate: sensitivity >= {self.min_sensitivity}, "
                f"false-alarm ratio {far} (until the gate is first met, the best by the fallback rule)")


def reference_notice(model: dict[str, Any], framework: str, given: frozenset[str]) -> str | None:
    """One line for a TensorFlow config that leaves modelSelectionMetric out, else None.

    The reference's TensorFlow trainer has no metric choice: ModelCheckpoint(save_best_only, val_loss)
    keeps the lowest val_loss. Here the key's default (the reference PyTorch trainer's) applies in both
    frameworks, so a TensorFlow reference config selects differently unless it says which metric it
    wants; one that sets the key has chosen, and gets no notice. "val_loss" with
    saveBestMinSensitivity 0 (no gate) is the reference's rule (docs/MIGRATING.md, CHOICE rows).
    """
    if framework != "tensorflow" or "modelConfig.modelSelectionMetric" in given:
        return None
    return (f"modelSelectionMetric not set: the reference's TensorFlow trainer keeps the lowest val_loss; "
            f"deepepi selects by {model['modelSelectionMetric']} with a sensitivity gate (set "
            '"modelSelectionMetric": "val_loss" and "saveBestMinSensitivity": 0 to match)')


@dataclass
class EarlyStop:
    """Stop after ``patience`` evaluations without a lower val_loss, counted as Keras's EarlyStopping does.

    The PyTorch trainer and step mode use this; the Keras trainer in epoch mode uses
    keras.callbacks.EarlyStopping, whose default comparison (min_delta 0, strictly lower) this mirrors.
    """

    patience: int
    best: float | None = None
    wait: int = 0

    def update(self, value: float) -> bool:
        """Record one evaluation's val_loss; True when training should stop."""
        self.wait += 1
        if self.best is None or value < self.best:
            self.best, self.wait = float(value), 0
            return False
        return self.wait >= self.patience

    def state(self) -> dict[str, Any]:
        return asdict(self)
