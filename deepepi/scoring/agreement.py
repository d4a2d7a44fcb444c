"""How often two models make the same call on the same windows.

Argmax agreement is what the export gates, ``verify``'s lockstep and quantized modes, the int8
bisection and the lockstep drift report all measure; one definition serves them all.
"""

from __future__ import annotations

import numpy as np


def predicted_class(probabilities_or_logits: np.ndarray) -> np.ndarray:
    """The argmax class of each row (softmax keeps the argmax, so logits and probabilities agree)."""
    return np.asarray(probabilities_or_logits).argmax(axis=-1)


def same_class(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row: do ``a`` and ``b`` (probabilities or logits, [n, classes]) pick the same class?"""
    return predicted_class(a) == predicted_class(b)


def argmax_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows whose argmax class agrees; 0.0 for no rows (nothing was shown to agree)."""
    same = same_class(a, b)
    return float(same.mean()) if same.size else 0.0


def label_agreement(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """Fraction of equal class labels (already argmaxed), 0.0 for none."""
    same = np.asarray(labels_a) == np.asarray(labels_b)
    return float(same.mean()) if same.size else 0.0
