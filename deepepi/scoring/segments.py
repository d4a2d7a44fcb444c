"""Where the app's alarm state machine starts afresh: one segment number per window.

The phone restarts its buffer, and with it the WarnTime/AlarmTime machine, at every new recording
(a new event, or a gap in one). Scoring runs the machine once per segment (``alarm.alarm_states``);
false alarms are then counted as alarm episodes per event, by time (``events.episode_starts``).
"""

from __future__ import annotations

import numpy as np


def restart_segments(event_id: np.ndarray, end_time: np.ndarray, *, gap_seconds: float,
                     run_windows: np.ndarray | None = None) -> np.ndarray:
    """Segment number of each window (windows in event/time order).

    With ``run_windows`` (windows per contiguous run of datapoints, as ``data.windows.contiguous_runs``
    and ``count_windows`` give them: what ``deepepi predict`` replays) each run is one segment, exactly.
    Without it (the windows alone: ``evaluate``, a training split) a segment starts at each new event
    and wherever two consecutive windows end more than ``gap_seconds`` apart. The two agree as long
    as no two consecutive windows of one run end more than ``gap_seconds`` apart; each caller keeps
    the rule its outputs were defined with.
    """
    if run_windows is not None:
        return np.repeat(np.arange(len(run_windows)), run_windows)
    event_id = np.asarray(event_id)
    new = np.ones(len(event_id), dtype=bool)
    new[1:] = (event_id[1:] != event_id[:-1]) | (np.diff(end_time) > gap_seconds)
    return np.cumsum(new) - 1
