"""The one data pipeline both trainers share: load, split by event, balance training events, window.

Both frameworks receive the very same arrays. Validation events are carved out of the training
events (validationProp), or the test split doubles as validation when validationProp is 0 or >= 1;
the log says which. Balancing (imbalanced-learn, at event level) touches the training split only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepepi.config import Config
from deepepi.data.windows import Windows
from deepepi.errors import DataError


@dataclass
class Datasets:
    train: Windows
    val: Windows
    test: Windows
    val_source: str  # "train events" | "test split"
    notes: list[str]
    osd_alarm_test: np.ndarray | None = None


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


def prepare(cfg: Config, csv_path: str | Path) -> Datasets:
    """Load ``csv_path`` and return train/val/test windows per the config's dataProcessing section."""
    from deepepi.data.balance import balance_events
    from deepepi.data.csvio import WINDOW_COLUMNS, load_csv
    from deepepi.data.split import events_table, kfold_events, split_events
    from deepepi.data.windows import windows_from_config

    proc, seed, source = cfg.processing, cfg.seed, str(csv_path)
    df = load_csv(csv_path, columns=(*WINDOW_COLUMNS, "osdAlarmState"))
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
    if int(proc["nFolds"]) > 1:
        folds = kfold_events(events, n_folds=int(proc["nFolds"]), seed=seed, group_by_user=group)
        train_ids, test_ids = folds[int(proc["fold"])]
        notes = [f"split: fold {proc['fold']} of {proc['nFolds']} (by event)"]
    else:
        train_ids, test_ids = split_events(events, test_prop=float(proc["testProp"]), seed=seed,
                                           group_by_user=group)
        notes = [f"split: test {proc['testProp']} of events (by event, seed {seed})"]
    val_prop = float(proc["validationProp"])
    if 0.0 < val_prop < 1.0:
        train_events = events[events["eventId"].isin(train_ids)]
        try:
            train_ids, val_ids = split_events(train_events, test_prop=val_prop, seed=seed, group_by_user=group)
        except DataError as err:
            raise DataError(f"validation split of the training events (validationProp={val_prop}): {err}; "
                            "use more events, or validationProp 0 to validate on the test split",
                            source=source) from None
        val_source = "train events"
        notes.append(f"validation: {val_prop} of the training events (validationProp={val_prop})")
    else:
        val_ids = test_ids
        val_source = "test split"
        notes.append(f"validation: the test split (validationProp={val_prop})")
    train_events = events[events["eventId"].isin(train_ids)]
    balanced = balance_events(train_events, oversample=proc["oversample"],
                              undersample=proc["undersample"], seed=seed)
    if proc["oversample"] != "none" or proc["undersample"] != "none":
        notes.append(f"balance (training events only): oversample={proc['oversample']} "
                     f"undersample={proc['undersample']}: {len(train_events)} -> {len(balanced)} events")
    windows = windows_from_config(df, cfg)
    train = _windows_of(windows, np.asarray(balanced, dtype=np.int64))
    val = _windows_of(windows, np.sort(np.asarray(val_ids, dtype=np.int64)))
    test = _windows_of(windows, np.sort(np.asarray(test_ids, dtype=np.int64)))
    for name, w in (("training", train), ("validation", val), ("test", test)):
        _check(name, w, source)
        if not (w.y == 1).any():
            warnings.warn(f"{source}: the {name} split has no seizure windows; its sensitivity is "
                          "undefined (n/a). Use more seizure events or another split", UserWarning,
                          stacklevel=2)
    notes.append(f"windows: train {len(train)} (seizure {int((train.y == 1).sum())}), "
                 f"val {len(val)} (seizure {int((val.y == 1).sum())}), "
                 f"test {len(test)} (seizure {int((test.y == 1).sum())})")
    return Datasets(train=train, val=val, test=test, val_source=val_source, notes=notes,
                    osd_alarm_test=osd_alarm(df, test))
