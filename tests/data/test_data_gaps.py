"""validateDatapoints: overlaps dropped, gaps zero-filled as the reference does, windows through fills."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepepi.core.config import from_dict
from deepepi.data.csvio import M_COLUMNS
from deepepi.data.gaps import fill_gaps
from deepepi.data.windows import window_labels, windows_from_config


def _frame(times: list[float], event: int = 7) -> pd.DataFrame:
    rows = {"eventId": event, "userId": 3, "type": 1, "dataTime": np.asarray(times, dtype=np.float64),
            "osdAlarmState": 2.0, "hr": 80.0}
    df = pd.DataFrame(rows)
    samples = np.arange(1, len(times) + 1, dtype=np.float32)[:, None] * np.ones(125, dtype=np.float32)
    return pd.concat([df, pd.DataFrame(samples, columns=list(M_COLUMNS))], axis=1)


def test_gaps_fill_and_overlaps_drop_per_reference_rule() -> None:
    # diffs: 5 (ok), 2.9 (overlap: drop), then vs kept 10: 17 -> gap 12 -> 2 fills,
    # 7 -> gap 2 -> none, 12.5 -> gap 7.5 -> 1 fill
    df = _frame([0, 5, 7.9, 22, 29, 41.5])
    out = fill_gaps(df.sample(frac=1.0, random_state=0))
    assert out["dataTime"].tolist() == [0, 5, 10, 15, 22, 29, 34, 41.5]
    filled = out["dataTime"].isin([10, 15, 34]).to_numpy()
    assert (out.loc[filled, list(M_COLUMNS)].to_numpy() == 0).all()
    assert (out.loc[filled, "hr"] == -1).all() and (out.loc[filled, "osdAlarmState"] == 0).all()
    assert (out.loc[filled, ["eventId", "userId", "type"]].to_numpy() == [7, 3, 1]).all()
    assert out.loc[~filled, "M000"].tolist() == [1, 2, 4, 5, 6]
    pd.testing.assert_frame_equal(fill_gaps(out), out)  # idempotent


def test_overlap_chain_compares_with_the_previous_kept_row() -> None:
    out = fill_gaps(_frame([0, 1, 3.5, 4]))  # 1 drops (vs 0); 3.5 kept (vs 0); 4 drops (vs 3.5)
    assert out["dataTime"].tolist() == [0, 3.5]


def test_validate_datapoints_windows_run_through_filled_gaps() -> None:
    df = pd.concat([_frame([5.0 * i for i in range(6)] + [30 + 20 + 5.0 * i for i in range(6)]),
                    _frame([5.0 * i for i in range(8)], event=8)], ignore_index=True)
    plain = window_labels(df)  # gap of 20 s restarts: 1 + 1 windows, event 8: 3
    assert len(plain["y"]) == 5
    raw = {"dataProcessing": {"validateDatapoints": True}}
    w = windows_from_config(df, from_dict(raw, warn=False), raw=True)
    # event 7: diff 25 s -> gap 20 s -> 4 fills: 16 contiguous rows -> 11 windows; event 8: 3
    assert len(w) == 14 and (w.event_id == 7).sum() == 11
    assert (w.X[w.event_id == 7] == 0).any(axis=1).sum() == 9  # windows starting at rows 1..9 hold a fill
