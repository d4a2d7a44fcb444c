"""``validateDatapoints``: the reference's gap filling, applied before splitting and windowing.

Reference (flattenData): per event, datapoints in dataTime order (dataTime = time of the last
sample, so a datapoint covers dataTime - 5 s .. dataTime). gap = start - previous kept end
= diff - 5 s. A datapoint with gap < -2 s (diff < 3 s) overlaps and is dropped; a gap > 2 s gets
floor(gap / 5 s) all-zero datapoints (magnitude and x/y/z 0, hr and o2sat -1, osdAlarmState and the
spectral powers 0) at previous + 5 s, + 10 s, ... carrying the event's ids and label; gaps of 2-7 s
insert nothing. The windows then run straight through every event (no buffer restart), because a
filled event is treated as one continuous recording, as in the reference.

With validateDatapoints false deepepi keeps its own rule (deepepi.data.windows: drop datapoints
< 2.5 s after the previous one, restart the buffer after a gap > 7.5 s) rather than the
reference's silent splicing of recordings across gaps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepepi.core.constants import DATAPOINT_SECONDS
from deepepi.data.csvio import M_COLUMNS, X_COLUMNS, Y_COLUMNS, Z_COLUMNS

OVERLAP_S = 3.0   # diff < 3 s: gap < -2 s
FILL_GAP_S = 2.0  # gap > 2 s: insert floor(gap / 5 s) zero datapoints
_ZERO = (*M_COLUMNS, *X_COLUMNS, *Y_COLUMNS, *Z_COLUMNS, "osdAlarmState", "osdSpecPower", "osdRoiPower")
_MINUS_ONE = ("hr", "o2sat")


def _kept(event: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Mask of sorted rows kept: each row is compared with the previous *kept* row of its event."""
    keep = np.ones(len(time), dtype=bool)
    candidates = np.flatnonzero((event[1:] == event[:-1]) & (np.diff(time) < OVERLAP_S)) + 1
    last = -1
    for i in candidates:  # only rows near an overlap are visited; chains need the sequential rule
        prev = i - 1
        while prev > last and not keep[prev]:
            prev -= 1
        if event[prev] == event[i] and time[i] - time[prev] < OVERLAP_S:
            keep[i] = False
        last = i if keep[i] else last
    return keep


def fill_gaps(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by (eventId, dataTime), overlaps dropped and gaps zero-filled (see the module doc)."""
    order = np.lexsort((df["dataTime"].to_numpy(), df["eventId"].to_numpy()))
    rows = df.iloc[order]
    event, time = rows["eventId"].to_numpy(), rows["dataTime"].to_numpy(dtype=np.float64)
    keep = _kept(event, time)
    rows, event, time = rows[keep], event[keep], time[keep]
    gap = np.r_[0.0, np.diff(time) - DATAPOINT_SECONDS]
    same = np.r_[False, event[1:] == event[:-1]]
    inserts = np.where(same & (gap > FILL_GAP_S), np.floor(gap / DATAPOINT_SECONDS), 0).astype(np.int64)
    if not inserts.any():
        return rows.reset_index(drop=True)
    at = np.repeat(np.arange(len(rows)), inserts)            # new rows go just before row ``at``
    k = np.arange(len(at)) - np.repeat(np.cumsum(inserts) - inserts, inserts) + 1
    filler = rows.iloc[at - 1].copy()                         # the previous row's ids and label
    filler["dataTime"] = time[at - 1] + DATAPOINT_SECONDS * k
    for column in (c for c in _ZERO if c in filler.columns):
        filler[column] = 0
    for column in (c for c in _MINUS_ONE if c in filler.columns):
        filler[column] = -1
    merged = pd.concat([rows, filler], ignore_index=True)  # fillers fall strictly between their neighbours
    return merged.iloc[np.lexsort((merged["dataTime"].to_numpy(), merged["eventId"].to_numpy()))].reset_index(
        drop=True)


__all__ = ["fill_gaps"]
