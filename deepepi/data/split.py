"""Event-level train/test splits, stratified by the seizure label, optionally grouped by user.

Windows of one event are strongly correlated, so splitting windows would leak: every split here
assigns whole events (and, with ``group_by_user``, whole users) to one side only.
With ``group_by_user`` the test share is approximate: users are dealt into round(1 / test_prop)
stratified folds (StratifiedGroupKFold) and the first fold is the test set.

A training run records its validation and test events (``part_events``, written by
``deepepi.runs.layout`` as val_events.csv / test_events.csv); ``write_event_rows`` copies those
events' rows out of the CSV the run read, unchanged, so the guide's "choose on val.csv, then test on
test.csv" runs on exactly the run's splits (``deepepi data split RUN --part val|test``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, StratifiedShuffleSplit

from deepepi.core.errors import DataError
from deepepi.core.io import atomic_path

EVENT_COLUMNS = ("eventId", "userId", "label")
_CLASS_NAMES = {0: "non-seizure", 1: "seizure"}


def events_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per event (eventId, userId, label), sorted by eventId; rows must agree within an event."""
    table = df[["eventId", "userId", "type"]].drop_duplicates()
    if table["eventId"].duplicated().any():
        bad = int(table.loc[table["eventId"].duplicated(), "eventId"].iloc[0])
        raise DataError(f"event {bad} has rows with different userId or type")
    table = table.rename(columns={"type": "label"}).sort_values("eventId", kind="stable")
    return table[list(EVENT_COLUMNS)].reset_index(drop=True).astype(np.int64)


def _class_counts(events: pd.DataFrame) -> dict[int, int]:
    return {int(k): int(v) for k, v in events["label"].value_counts().sort_index().items()}


def _require_per_class(events: pd.DataFrame, need: int, what: str) -> None:
    for label, count in _class_counts(events).items():
        if count < need:
            raise DataError(f"too few events for {what}: class {label} ({_CLASS_NAMES.get(label, label)}) "
                            f"has {count} event(s), needs at least {need}")


def _require_users(events: pd.DataFrame, need: int, what: str) -> None:
    users = events["userId"].nunique()
    if users < need:
        raise DataError(f"too few users for {what} grouped by user: {users} user(s), needs at least {need}")


def _user_folds(events: pd.DataFrame, labels: np.ndarray, n_splits: int,
                seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """StratifiedGroupKFold folds with users as groups; the caller checks each class's presence."""
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a thin class is checked by the caller, with a clearer message
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return list(splitter.split(labels, labels, groups=events["userId"].to_numpy()))


def _ids(events: pd.DataFrame, idx: np.ndarray) -> np.ndarray:
    return np.sort(events["eventId"].to_numpy(dtype=np.int64)[idx])


def split_events(events: pd.DataFrame, *, test_prop: float, seed: int,
                 group_by_user: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(train_ids, test_ids): sorted event ids, stratified by label, no event (or user) on both sides."""
    if not 0.0 < test_prop < 1.0:
        raise DataError(f"testProp must be between 0 and 1, got {test_prop}")
    labels = events["label"].to_numpy()
    what = f"a train/test split (testProp {test_prop})"
    if group_by_user:
        n_splits = max(2, round(1.0 / test_prop))
        _require_users(events, n_splits, what)
        train_idx, test_idx = _user_folds(events, labels, n_splits, seed)[0]
        for label in np.unique(labels):
            if not (labels[train_idx] == label).any() or not (labels[test_idx] == label).any():
                users = events.loc[events["label"] == label, "userId"].nunique()
                raise DataError(f"cannot put class {label} ({_CLASS_NAMES.get(int(label), label)}) in both "
                                f"sets with users grouped: {users} user(s) have such events")
    else:
        _require_per_class(events, 2, what)
        n_test = int(np.ceil(test_prop * len(events)))
        n_classes = len(np.unique(labels))
        if n_test < n_classes or len(events) - n_test < n_classes:
            raise DataError(f"too few events for {what}: {len(events)} events cannot give both sets "
                            f"an event of each of the {n_classes} classes")
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_prop, random_state=seed)
        train_idx, test_idx = next(splitter.split(labels, labels))
    return _ids(events, train_idx), _ids(events, test_idx)


def kfold_events(events: pd.DataFrame, *, n_folds: int, seed: int,
                 group_by_user: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` (train_ids, test_ids) pairs; every event is in exactly one test fold."""
    if n_folds < 2:
        raise DataError(f"k-fold needs nFolds >= 2, got {n_folds}")
    labels = events["label"].to_numpy()
    what = f"{n_folds}-fold cross-validation"
    if group_by_user:
        _require_users(events, n_folds, what)
        folds = _user_folds(events, labels, n_folds, seed)
        for k, (_, test_idx) in enumerate(folds):
            for label in np.unique(labels):
                if not (labels[test_idx] == label).any():
                    users = events.loc[events["label"] == label, "userId"].nunique()
                    raise DataError(f"too few users for {what} grouped by user: test fold {k} has no class "
                                    f"{label} ({_CLASS_NAMES.get(int(label), label)}) events; {users} user(s) "
                                    "have such events")
    else:
        _require_per_class(events, n_folds, what)
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(labels, labels)
    return [(_ids(events, tr), _ids(events, te)) for tr, te in folds]


def part_events(event_id: np.ndarray, user_id: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """One row per event (eventId, userId, label) of a split's windows, sorted by eventId."""
    table = pd.DataFrame({"eventId": np.asarray(event_id, dtype=np.int64),
                          "userId": np.asarray(user_id, dtype=np.int64),
                          "label": np.asarray(y, dtype=np.int64)})
    table = table.groupby("eventId", sort=True).agg(userId=("userId", "first"), label=("label", "max"))
    return table.reset_index()[list(EVENT_COLUMNS)]


def write_event_rows(csv: str | Path, event_ids: Iterable[int], out: str | Path) -> int:
    """Copy the rows of ``event_ids`` from ``csv`` to ``out`` (atomically, header kept, cells as
    text so nothing is reformatted); returns how many events were found."""
    wanted = {str(int(e)) for e in event_ids}
    found: set[str] = set()
    with atomic_path(out) as tmp:
        reader = pd.read_csv(csv, dtype=str, keep_default_na=False, chunksize=20_000, encoding="utf-8-sig")
        for i, chunk in enumerate(reader):
            if "eventId" not in chunk.columns:
                raise DataError("no eventId column", source=str(csv))
            keep = chunk[chunk["eventId"].isin(wanted)]
            found.update(keep["eventId"].unique().tolist())
            keep.to_csv(tmp, mode="a", header=i == 0, index=False)
    return len(found)


__all__ = ["EVENT_COLUMNS", "events_table", "split_events", "kfold_events", "part_events", "write_event_rows"]
