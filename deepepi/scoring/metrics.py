"""Training and test metrics from predictions, one numpy implementation shared by both frameworks.

Both trainers hand this module labels and logits (or confusion counts accumulated from their
argmax); nothing here depends on Keras metric objects or torch, so the two frameworks report
numbers computed the same way. Undefined ratios (e.g. sensitivity with no seizure windows) are
``None`` so they serialise as JSON ``null`` rather than a made-up 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from deepepi.core.constants import OSD_ALARM_STATE
from deepepi.scoring.agreement import predicted_class
from deepepi.scoring.per_event import any_per_event, event_index, max_per_event

POSITIVE = 1  # the seizure class
EPOCH_KEYS = ("loss", "accuracy", "sensitivity", "far")
HISTORY_KEYS = ("epoch",) + EPOCH_KEYS + tuple("val_" + k for k in EPOCH_KEYS) + ("lr",)


@dataclass(frozen=True)
class Counts:
    """Binary confusion counts with seizure (class 1) as the positive class."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @classmethod
    def from_labels(cls, y_true: np.ndarray, y_pred: np.ndarray) -> "Counts":
        t = np.asarray(y_true) == POSITIVE
        p = np.asarray(y_pred) == POSITIVE
        return cls(tp=int(np.sum(t & p)), fp=int(np.sum(~t & p)),
                   tn=int(np.sum(~t & ~p)), fn=int(np.sum(t & ~p)))

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def tpr(self) -> float | None:
        """Sensitivity TP/(TP+FN); None without positives."""
        return ratio(self.tp, self.tp + self.fn)

    @property
    def fpr(self) -> float | None:
        """False-alarm ratio FP/(FP+TN); None without negatives."""
        return ratio(self.fp, self.fp + self.tn)

    @property
    def ppv(self) -> float | None:
        """Precision TP/(TP+FP); None without positive calls."""
        return ratio(self.tp, self.tp + self.fp)

    @property
    def accuracy(self) -> float | None:
        return ratio(self.tp + self.tn, self.total)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def ratio(num: int, den: int) -> float | None:
    """num/den, or None when the denominator is empty (the rate is undefined, not zero)."""
    return float(num) / float(den) if den else None


def rates(c: Counts) -> dict[str, float | None]:
    """Accuracy, sensitivity TP/(TP+FN) and false-alarm ratio FP/(FP+TN)."""
    return {"accuracy": c.accuracy, "sensitivity": c.tpr, "far": c.fpr}


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy from logits (the loss both trainers minimise)."""
    y = np.asarray(y, dtype=np.int64)
    if len(y) == 0:
        raise ValueError("cross_entropy of an empty set")
    return float(-log_softmax(logits)[np.arange(len(y)), y].mean())


def summarise(loss: float, counts: Counts) -> dict[str, float | None]:
    """The per-epoch figures of one split: loss plus the rates of its confusion counts."""
    return {"loss": float(loss), **rates(counts)}


def evaluate(y: np.ndarray, logits: np.ndarray) -> dict[str, float | None]:
    """Loss, accuracy, sensitivity and false-alarm ratio of a whole split's predictions."""
    return summarise(cross_entropy(logits, y), Counts.from_labels(y, predicted_class(logits)))


def epoch_record(epoch: int, train: dict[str, Any], val: dict[str, Any], lr: float) -> dict[str, Any]:
    """One history.json entry, keys in HISTORY_KEYS order; ``epoch`` counts from 1."""
    record: dict[str, Any] = {"epoch": int(epoch)}
    record.update({k: train[k] for k in EPOCH_KEYS})
    record.update({"val_" + k: val[k] for k in EPOCH_KEYS})
    record["lr"] = float(lr)
    return record


def window_report(y: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Window-level TP/FP/TN/FN with TPR, FPR, PPV and accuracy."""
    c = Counts.from_labels(y, y_pred)
    return {**c.to_dict(), "tpr": c.tpr, "fpr": c.fpr, "ppv": c.ppv, "accuracy": c.accuracy}


def event_report(y: np.ndarray, y_pred: np.ndarray, event_id: np.ndarray) -> dict[str, Any]:
    """Event-level counts: an event is detected when any of its windows is positive."""
    ids, inverse = event_index(event_id)
    truth = any_per_event(np.asarray(y) == POSITIVE, inverse, len(ids))
    alarm = any_per_event(np.asarray(y_pred) == POSITIVE, inverse, len(ids))
    c = Counts.from_labels(truth.astype(np.int64), alarm.astype(np.int64))
    return {**c.to_dict(), "tpr": c.tpr, "fpr": c.fpr}


def seizure_probability(logits: np.ndarray) -> np.ndarray:
    """Softmax p(seizure) of each row of logits, float64 (what a Decision's threshold is applied to)."""
    return np.exp(log_softmax(logits))[:, POSITIVE]


def final_report(y: np.ndarray, logits: np.ndarray, event_id: np.ndarray,
                osd_alarm: np.ndarray | None = None, *, at_decision: dict[str, Any] | None = None) -> dict[str, Any]:
    """metrics.json body: the model per window and per event, plus the OSD baseline when known.

    With ``at_decision`` (``scoring.decision.at_decision`` on these windows) the window and event counts
    are at the Decision's threshold (p > t, strict), the alarm-logic event figures and the decision are
    recorded, and the argmax figures stay as a labelled extra; without it they are argmax figures."""
    argmax = predicted_class(logits)
    pred = argmax if at_decision is None else \
        (seizure_probability(logits) > at_decision["decision"]["threshold"]).astype(np.int64)
    report: dict[str, Any] = {"windows": len(y), "loss": cross_entropy(logits, y),
                              "window": window_report(y, pred), "event": event_report(y, pred, event_id)}
    if at_decision is not None:
        report = {**report, "decision": at_decision["decision"], "primary_logic": at_decision["primary"],
                  "alarm_events": at_decision["event"],
                  "argmax": {"rule": "argmax (p > 0.5), an extra: not the shipped decision",
                             "window": window_report(y, argmax), "event": event_report(y, argmax, event_id)}}
    if osd_alarm is not None:
        osd_pred = (np.asarray(osd_alarm) >= OSD_ALARM_STATE).astype(np.int64)
        report["osd_baseline"] = {"rule": f"osdAlarmState >= {OSD_ALARM_STATE} at the window's last datapoint",
                                  "window": window_report(y, osd_pred),
                                  "event": event_report(y, osd_pred, event_id)}
    return report


def event_max(p1: np.ndarray, event_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(event ids, max seizure probability over each event's windows), ids sorted; a NaN window makes
    its event's maximum NaN."""
    ids, inverse = event_index(event_id)
    return ids, max_per_event(p1, inverse, len(ids), skip_nan=False)


def sensitivity_at_far(pos: np.ndarray, neg: np.ndarray, max_far: float) -> tuple[float, float, float]:
    """(sensitivity, false-alarm ratio, threshold) at the lowest threshold t whose false-alarm ratio
    (negatives with score > t, strict as the app) is at most ``max_far``; scores are per-event maxima."""
    neg = np.sort(np.asarray(neg, dtype=np.float64))[::-1]
    allowed = int(np.floor(max_far * len(neg) + 1e-9))
    t = float(neg[allowed]) if allowed < len(neg) else -np.inf
    far = float(np.mean(neg > t)) if len(neg) else 0.0
    return float(np.mean(np.asarray(pos) > t)) if len(pos) else float("nan"), far, t


def fmt(value: float | None, digits: int = 3) -> str:
    """A rate for a log line; undefined rates print as 'n/a'."""
    return "n/a" if value is None else f"{value:.{digits}f}"
