"""Event-level over/undersampling of training events with imbalanced-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepepi.data.balance import balance_events
from deepepi.core.errors import ConfigError, DataError


def events(n_seizure: int = 4, n_other: int = 16) -> pd.DataFrame:
    labels = [1] * n_seizure + [0] * n_other
    return pd.DataFrame({"eventId": np.arange(10, 10 + len(labels)), "userId": 1, "label": labels})


def labels_of(ids: np.ndarray, ev: pd.DataFrame) -> np.ndarray:
    return ev.set_index("eventId").loc[ids, "label"].to_numpy()


def test_none_keeps_every_event_once() -> None:
    ev = events()
    assert balance_events(ev, oversample="none", undersample="none").tolist() == ev["eventId"].tolist()


def test_oversampling_duplicates_seizure_events_to_parity() -> None:
    ev = events()
    ids = balance_events(ev, oversample="random", undersample="none", seed=42)
    lab = labels_of(ids, ev)
    assert (lab == 1).sum() == 16 and (lab == 0).sum() == 16
    assert sorted(set(ids[lab == 0])) == list(range(14, 30))  # every non-seizure event kept once
    assert set(ids[lab == 1]) == {10, 11, 12, 13}
    assert np.array_equal(ids, balance_events(ev, oversample="random", undersample="none", seed=42))


def test_undersampling_drops_non_seizure_events_to_parity() -> None:
    ev = events()
    ids = balance_events(ev, oversample="none", undersample="random", seed=0)
    lab = labels_of(ids, ev)
    assert (lab == 1).sum() == 4 and (lab == 0).sum() == 4 and len(set(ids)) == 8
    other = balance_events(ev, oversample="none", undersample="random", seed=1)
    assert set(ids[lab == 0]) != set(other[labels_of(other, ev) == 0])


def test_both_modes_give_parity_and_bad_input_is_typed() -> None:
    ev = events()
    lab = labels_of(balance_events(ev, oversample="random", undersample="random"), ev)
    assert (lab == 1).sum() == (lab == 0).sum() == 16
    with pytest.raises(ConfigError, match="dataProcessing.oversample: got 'smote'"):
        balance_events(ev, oversample="smote", undersample="none")
    with pytest.raises(DataError, match="all of class 0"):
        balance_events(events(n_seizure=0), oversample="random", undersample="none")
