"""Hand-made EvalData for the scoring tests: probability streams per event, 5 s apart."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepepi.scoring.evaldata import EvalData
from deepepi.scoring.segments import restart_segments

HOP = 5.0


def eval_data(p_events: list[list[float]], labels: list[int], gaps: list[list[bool]] | None = None) -> EvalData:
    """Windows 5 s apart per event (a ``gaps`` flag adds a 60 s recording gap before that window)."""
    event, t = [], []
    for e, ps in enumerate(p_events):
        steps = [HOP + (60.0 if gaps and gaps[e][i] else 0.0) for i in range(len(ps))]
        t += list(1e9 + 1e5 * e + np.cumsum(steps))
        event += [e] * len(ps)
    event_arr, t_arr = np.array(event), np.array(t)
    events = pd.DataFrame({"eventId": np.arange(len(p_events)), "userId": 1, "label": labels})
    events["start"] = events["onset"] = events["seizure_end"] = np.nan
    events["onset_source"] = "recording start"
    y = np.asarray(labels)[event_arr]
    return EvalData(X=np.empty((len(y), 0)), y=y, end_time=t_arr, osd=np.zeros(len(y), np.int64),
                    segment=restart_segments(event_arr, t_arr, gap_seconds=7.5), window_event=event_arr,
                    events=events, hop_s=HOP, sources=[])
