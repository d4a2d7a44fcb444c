"""The one data pipeline both trainers share: load, split by event, augment training events, window.

Both frameworks receive the very same arrays. Validation events are carved out of the training
events by event (validationProp; the reference validates on its test split, which leaks), so the
test split is never seen in training. Augmentation and balancing (deepepi.data.augment) touch the
training events only; the validation and test windows keep the real data and class ratio.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepepi.core.config import Config
from deepepi.data.augment import Augmented, AugmentSettings, augment
from deepepi.data.windows import Windows
from deepepi.core.errors import DataError


@dataclass
class Datasets:
    train: Windows
    val: Windows
    test: Windows
    notes: list[str]
    augmentation: pd.DataFrame  # provenance of the synthetic training events (deepepi.data.augment)
    osd_alarm_test: np.ndarray | None = None
    val_source: str = "train events"  # validation is always carved out of the training events
    test_raw_X: np.ndarray | None = None  # the test windows in milli-g (the movement gate reads raw samples)


@dataclass(frozen=True)
class EventSplit:
    """Explicit event ids per split, replacing the config's testProp / nFolds split (nested k-fold:
    an inner fold's training events, its test fold as validation, the outer fold's test events)."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    note: str  # for the log, e.g. "outer fold 0 of 3, inner fold 1 of 2"
    val_source: str  # what the validation events are, e.g. "inner test fold"

    def to_dict(self) -> dict[str, object]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test), "note": self.note,
                "val_source": self.val_source}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> "EventSplit":
        ids = (tuple(int(i) for i in raw[k]) for k in ("train", "val", "test"))  # type: ignore[union-attr]
        return cls(*ids, note=str(raw["note"]), val_source=str(raw["val_source"]))


def _windows_of(windows: Windows, event_ids: np.ndarray) -> Windows:
    """The windows of ``event_ids`` in that order; an id listed twice (oversampling) repeats its windows."""
    order = np.argsort(windows.event_id, kind="stable")
    sorted_ids = windows.event_id[order]
    starts = np.searchsorted(sorted_ids, event_ids, side="left")
    stops = np.searchsorted(sorted_ids, event_ids, side="right")
    parts = [order[a:b] for a, b in zip(starts, stops)]
    idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return windows.subset(idx)


def _check(name: str, w: Windows, source: str) -> None:
    if len(w) == 0:
        raise DataError(f"the {name} split has no windows (too few events, or events shorter than "
                        f"one window)", source=source)


def osd_alarm(df: pd.DataFrame, windows: Windows, *, missing_negative: bool = False) -> np.ndarray | None:
    """osdAlarmState at each window's last datapoint, for the OSD baseline; None when unknown
    (or, with ``missing_negative``, an empty state counts as 0, as the reference's tester does)."""
    if "osdAlarmState" not in df.columns:
        return None
    table = df[["eventId", "dataTime", "osdAlarmState"]].drop_duplicates(["eventId", "dataTime"])
    keys = table.set_index(["eventId", "dataTime"])["osdAlarmState"]
    wanted = pd.MultiIndex.from_arrays([windows.event_id, windows.end_time])
    found = keys.reindex(wanted).to_numpy(dtype=np.float64)
    if missing_negative:
        return np.nan_to_num(found, nan=0.0).astype(np.int64)
    return None if np.isnan(found).any() else found.astype(np.int64)


def _augment_note(aug: Augmented, before: int) -> str:
    added = ", ".join(f"{kind} +{n}" for kind, n in aug.added.items())
    removed = f", undersampled -{aug.removed}" if aug.removed else ""
    after = aug.frame["eventId"].nunique()
    return f"augmentation (training events only): {before} -> {after} events ({added}{removed})"


def prepare(cfg: Config, csv_path: str | Path, split: EventSplit | None = None) -> Datasets:
    """Load ``csv_path`` and return train/val/test windows per the config's dataProcessing section
    (or per ``split`` when given; augmentation and windowing still follow the config)."""
    from deepepi.data.csvio import WINDOW_COLUMNS, X_COLUMNS, Y_COLUMNS, Z_COLUMNS, load_csv
    from deepepi.data.split import events_table, kfold_events, split_events
    from deepepi.data.windows import rows_from_config, windows_from_config

    proc, seed, source = cfg.processing, cfg.seed, str(csv_path)
    settings = AugmentSettings.from_processing(proc, seed)
    columns = (*WINDOW_COLUMNS, "osdAlarmState") + ((*X_COLUMNS, *Y_COLUMNS, *Z_COLUMNS)
                                                     if settings.needs_xyz else ())
    df = rows_from_config(load_csv(csv_path, columns=columns), cfg)[0]  # gap filling precedes augmentation
    events = events_table(df)
    labels = set(events["label"].tolist())
    if labels != {0, 1}:
        missing = "seizure (type 1)" if 1 not in labels else "non-seizure (type 0)"
        raise DataError(f"no {missing} events: a detector cannot be trained or its sensitivity and "
                        "false-alarm ratio measured without both classes", source=source)
    if len(events) < 3:
        raise DataError(f"{len(events)} event(s); a train/validation/test split needs at least 3",
                        source=source)
    group = bool(proc["groupByUser"])
    if split is not None:
        unknown = sorted(set(split.train + split.val + split.test) - set(events["eventId"].tolist()))
        if unknown:
            raise DataError(f"split names event(s) not in the data: {unknown[:5]}", source=source)
        train_ids, val_ids, test_ids = (np.asarray(ids, dtype=np.int64) for ids in
                                        (split.train, split.val, split.test))
        notes = [f"split: {split.note}; validation: the {split.val_source}"]
    elif int(proc["nFolds"]) > 1:
        folds = kfold_events(events, n_folds=int(proc["nFolds"]), seed=seed, group_by_user=group)
        train_ids, test_ids = folds[int(proc["fold"])]
        notes = [f"split: fold {proc['fold']} of {proc['nFolds']} (by event)"]
    else:
        train_ids, test_ids = split_events(events, test_prop=float(proc["testProp"]), seed=seed,
                                           group_by_user=group)
        notes = [f"split: test {proc['testProp']} of events (by event, seed {seed})"]
    val_prop = float(proc["validationProp"])
    val_source = split.val_source if split is not None else "train events"
    if split is None:
        train_events = events[events["eventId"].isin(train_ids)]
        try:
            train_ids, val_ids = split_events(train_events, test_prop=val_prop, seed=seed, group_by_user=group)
        except DataError as err:
            raise DataError(f"validation split of the training events (validationProp={val_prop}): {err}; "
                            "use more events", source=source) from None
        notes.append(f"validation: {val_prop} of the training events, by event (validationProp={val_prop}); "
                     "the test split is never seen in training")
    in_train = df["eventId"].isin(train_ids).to_numpy()
    aug = augment(df[in_train], settings, first_id=int(events["eventId"].max()) + 1)
    if settings.active:
        notes.append(_augment_note(aug, len(train_ids)))
    train = windows_from_config(aug.frame, cfg)
    held_out = df[~in_train]
    windows = windows_from_config(held_out, cfg)
    val = _windows_of(windows, np.sort(np.asarray(val_ids, dtype=np.int64)))
    test = _windows_of(windows, np.sort(np.asarray(test_ids, dtype=np.int64)))
    test_raw = _windows_of(windows_from_config(df[~in_train], cfg, raw=True), np.sort(np.asarray(test_ids, dtype=np.int64)))
    for name, w in (("training", train), ("validation", val), ("test", test)):
        _check(name, w, source)
        if not (w.y == 1).any():
            warnings.warn(f"{source}: the {name} split has no seizure windows; its sensitivity is "
                          "undefined (n/a). Use more seizure events or another split", UserWarning,
                          stacklevel=2)
    notes.append(f"windows: train {len(train)} (seizure {int((train.y == 1).sum())}), "
                 f"val {len(val)} (seizure {int((val.y == 1).sum())}), "
                 f"test {len(test)} (seizure {int((test.y == 1).sum())})")
    return Datasets(train=train, val=val, test=test, notes=notes, augmentation=aug.provenance,
                    osd_alarm_test=osd_alarm(held_out, test), val_source=val_source, test_raw_X=test_raw.X)
