"""Window-level figures: confusion counts and rates at a threshold, ROC and PR curves with AUC.

A window is positive when p > threshold (strict, as the app decides); the confusion counts reuse
``deepepi.scoring.metrics``. Undefined rates and AUCs (no positives or no negatives) are None.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deepepi.scoring.metrics import Counts, ratio


def at_threshold(y: np.ndarray, positive: np.ndarray) -> dict[str, Any]:
    """TP/FP/TN/FN with TPR, FPR, PPV, NPV, F1 and accuracy."""
    c = Counts.from_labels(y, positive.astype(np.int64))
    return {**c.to_dict(), "tpr": c.tpr, "fpr": c.fpr, "ppv": c.ppv, "npv": ratio(c.tn, c.tn + c.fn),
            "f1": ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn), "accuracy": c.accuracy}


def curves(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """ROC (fpr, tpr) and PR (recall, precision) points with ROC AUC and average precision."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    if len(np.unique(y)) < 2:
        return {"roc_auc": None, "average_precision": None, "roc": None, "pr": None}
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    return {"roc_auc": float(roc_auc_score(y, p)), "average_precision": float(average_precision_score(y, p)),
            "roc": {"fpr": fpr, "tpr": tpr}, "pr": {"recall": recall, "precision": precision}}
