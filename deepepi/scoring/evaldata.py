"""What a detector is scored on: windows in event/time order and one row per event (``EvalData``).

Scoring needs only arrays and the events table, not how they were read: ``deepepi.evaluate.data``
builds an ``EvalData`` from CSV / OSDB JSON files, ``from_windows`` from already-cut windows (a
training validation split, for the training threshold rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deepepi.scoring.segments import restart_segments

ONSET_SEIZURE_TIMES = "seizureTimes"
ONSET_RECORDING_START = "recording start"


@dataclass
class EvalData:
    """Windows (raw milli-g) in event/time order, and the events table (one row per event).

    ``window_event`` maps each window to its row in ``events``; ``segment`` numbers contiguous
    stretches of windows (a new event, or a recording gap that restarts the buffer), where the
    app's alarm state machine starts afresh.
    """

    X: np.ndarray
    y: np.ndarray
    end_time: np.ndarray
    osd: np.ndarray
    segment: np.ndarray
    window_event: np.ndarray
    events: pd.DataFrame
    hop_s: float
    sources: list[str]

    def __len__(self) -> int:
        return len(self.X)


def from_windows(windows: Any, hop_s: float, *, gap_seconds: float) -> EvalData:
    """EvalData over already-cut windows (``data.windows.Windows``, e.g. a training validation split):
    no raw samples, OSD states or seizureTimes; enough for the raw-window event figures. Segments
    restart at a new event or where windows end more than ``gap_seconds`` apart."""
    ids, first = np.unique(windows.event_id, return_index=True)
    events = pd.DataFrame({"eventId": ids, "userId": windows.user_id[first], "label": windows.y[first]})
    events["start"] = events["onset"] = events["seizure_end"] = np.nan
    events["onset_source"] = ONSET_RECORDING_START
    return EvalData(X=np.empty((len(windows), 0), np.float32), y=windows.y, end_time=windows.end_time,
                    osd=np.zeros(len(windows), np.int64),
                    segment=restart_segments(windows.event_id, windows.end_time, gap_seconds=gap_seconds),
                    window_event=np.searchsorted(ids, windows.event_id), events=events, hop_s=hop_s, sources=[])
