"""Event-level class balancing of the training events with imbalanced-learn.

Balancing whole events (not windows) keeps every window of a duplicated seizure event together,
and is applied to the training events only, so validation and test keep the real class ratio.
Oversampling runs first; undersampling then trims whatever majority remains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepepi.core.errors import ConfigError, DataError

MODES = ("none", "random")


def balance_events(events: pd.DataFrame, *, oversample: str, undersample: str, seed: int = 0) -> np.ndarray:
    """Event ids after balancing (duplicates when oversampling), per mode 'none' | 'random'."""
    for key, mode in (("oversample", oversample), ("undersample", undersample)):
        if mode not in MODES:
            raise ConfigError(f"dataProcessing.{key}: got {mode!r}, expected one of 'none', 'random'")
    ids = events["eventId"].to_numpy(dtype=np.int64).reshape(-1, 1)
    labels = events["label"].to_numpy(dtype=np.int64)
    if oversample == "none" and undersample == "none":
        return ids.ravel().copy()
    if len(np.unique(labels)) < 2:
        raise DataError(f"cannot balance classes: the {len(labels)} training events are all of class "
                        f"{int(labels[0]) if len(labels) else 'none'}")
    if oversample == "random":
        from imblearn.over_sampling import RandomOverSampler  # lazy: off the bench/train_gpu.py path

        ids, labels = RandomOverSampler(random_state=seed).fit_resample(ids, labels)
    if undersample == "random":
        from imblearn.under_sampling import RandomUnderSampler

        ids, labels = RandomUnderSampler(random_state=seed).fit_resample(ids, labels)
    return np.asarray(ids, dtype=np.int64).ravel()


__all__ = ["MODES", "balance_events"]
