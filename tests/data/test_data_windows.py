"""Windowing: counts per the rolling-buffer rule, gaps/overlaps, ordering, content and preprocessing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepepi.core.config import from_dict
from deepepi.data.csvio import M_COLUMNS
from deepepi.data.windows import NPZ_KEYS, Windows, count_windows, make_windows, windows_from_config
from deepepi.core.errors import DataError
from deepepi.core.preprocessing import Preprocessing

T0 = 1_700_000_000.0


def frame(events: list[tuple[int, int, int, list[float]]], *, shuffle_seed: int | None = None) -> pd.DataFrame:
    """Rows for (eventId, userId, label, datapoint times); every sample value is unique (row*125+j)."""
    rows = [(e, u, lab, T0 + t) for e, u, lab, times in events for t in times]
    df = pd.DataFrame(rows, columns=["eventId", "userId", "type", "dataTime"])
    samples = (np.arange(len(df) * 125, dtype=np.float32) + 500).reshape(len(df), 125)
    df = pd.concat([df, pd.DataFrame(samples, columns=list(M_COLUMNS))], axis=1)
    if shuffle_seed is not None:
        df = df.sample(frac=1.0, random_state=shuffle_seed).reset_index(drop=True)
    return df


def contiguous(n: int, start: float = 0.0) -> list[float]:
    return [start + 5.0 * i for i in range(n)]


def reference_windows(df: pd.DataFrame, window: int, step: int) -> tuple[np.ndarray, list[int], list[float]]:
    """Plain-Python rolling buffer per event (the reference semantics), for comparison."""
    out, ids, ends = [], [], []
    for event_id in sorted(df["eventId"].unique()):
        ev = df[df["eventId"] == event_id].sort_values("dataTime", kind="stable")
        kept, previous = [], None
        for _, row in ev.iterrows():
            if previous is None or row["dataTime"] - previous >= 2.5:
                kept.append(row)
            previous = row["dataTime"]
        runs, current = [], []
        for row in kept:
            if current and row["dataTime"] - current[-1]["dataTime"] > 7.5:
                runs.append(current)
                current = []
            current.append(row)
        if current:
            runs.append(current)
        for run in runs:
            buffer = np.concatenate([r[list(M_COLUMNS)].to_numpy(dtype=np.float32) for r in run])
            times = [r["dataTime"] for r in run]
            for s in range(0, len(buffer) - window + 1, step):
                out.append(buffer[s:s + window])
                ids.append(int(event_id))
                ends.append(times[(s + window - 1) // 125])
    return np.array(out, dtype=np.float32).reshape(-1, window), ids, ends


@pytest.mark.parametrize("n, expected", [(0, 0), (1, 0), (5, 0), (6, 1), (7, 2), (36, 31)])
def test_count_follows_n_minus_5(n: int, expected: int) -> None:
    assert count_windows(125 * n, 750, 125) == expected
    if n:
        w = make_windows(frame([(1, 7, 0, contiguous(n))]))
        assert len(w) == expected


def test_count_general_formula_with_other_step() -> None:
    n = np.array([0, 700, 750, 760, 4500])
    assert count_windows(n, 750, 100).tolist() == [0, 0, 1, 1, 38]
    w = make_windows(frame([(1, 7, 0, contiguous(10))]), step=100)
    assert len(w) == (1250 - 750) // 100 + 1 == 6


def test_gap_breaks_the_run_and_jitter_does_not() -> None:
    times = contiguous(8) + contiguous(7, start=35.0 + 8.0)  # 8 s gap after the 8th datapoint
    assert len(make_windows(frame([(1, 7, 0, times)]))) == 3 + 2
    jitter = contiguous(8) + contiguous(7, start=35.0 + 7.0)  # 7 s: still contiguous
    assert len(make_windows(frame([(1, 7, 0, jitter)]))) == 15 - 5


def test_overlaps_and_duplicates_are_dropped() -> None:
    times = contiguous(7) + [5.0, 12.0, 30.0 + 1.0]  # exact duplicate, 2 s after, 1 s after
    w = make_windows(frame([(1, 7, 0, times)]), preprocessing=None)
    assert len(w) == 2
    expected, _, _ = reference_windows(frame([(1, 7, 0, times)]), 750, 125)
    np.testing.assert_array_equal(w.X, expected)


def test_events_never_share_a_window_and_carry_their_labels() -> None:
    df = frame([(3, 11, 1, contiguous(7)), (2, 10, 0, contiguous(6, start=35.0)), (9, 10, 0, contiguous(4))])
    w = make_windows(df)
    assert w.event_id.tolist() == [2, 3, 3]
    assert w.y.tolist() == [0, 1, 1]
    assert w.user_id.tolist() == [10, 11, 11]
    np.testing.assert_allclose(w.end_time, T0 + np.array([35.0 + 25.0, 25.0, 30.0]))


def test_content_is_the_manual_slice_in_g_and_shuffling_rows_changes_nothing() -> None:
    df = frame([(1, 7, 0, contiguous(9)), (2, 8, 1, contiguous(6, start=100.0))])
    w = make_windows(df)
    samples = df[list(M_COLUMNS)].to_numpy(dtype=np.float32).reshape(-1)
    first_event = samples[:9 * 125]
    for k in range(4):
        np.testing.assert_array_equal(w.X[k], first_event[125 * k:125 * k + 750] * np.float32(1e-3))
    np.testing.assert_array_equal(w.X[4], samples[9 * 125:15 * 125] * np.float32(1e-3))
    assert w.X.dtype == np.float32 and w.X.shape == (5, 750)
    shuffled = make_windows(frame([(1, 7, 0, contiguous(9)), (2, 8, 1, contiguous(6, start=100.0))],
                                  shuffle_seed=3))
    for key in NPZ_KEYS:
        np.testing.assert_array_equal(getattr(shuffled, key), getattr(w, key))


def test_normalisation_and_raw_match_preprocessing() -> None:
    df = frame([(1, 7, 0, contiguous(8))])
    raw = make_windows(df, preprocessing=None)
    norm = make_windows(df, preprocessing=Preprocessing(normalise=True))
    np.testing.assert_array_equal(norm.X, Preprocessing(normalise=True).apply(raw.X))
    np.testing.assert_allclose(norm.X.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(norm.X.std(axis=1), 1.0, atol=1e-4)
    assert raw.X.min() >= 500.0  # raw milli-g untouched


def test_windows_from_config_uses_window_step_and_normalise() -> None:
    cfg = from_dict({"modelConfig": {"bufferSeconds": 10}, "dataProcessing": {"step": 50, "normalise": True}},
                    warn=False)
    df = frame([(1, 7, 0, contiguous(4))])
    w = windows_from_config(df, cfg)
    assert w.X.shape == ((500 - 250) // 50 + 1, 250)
    np.testing.assert_array_equal(w.X, Preprocessing(normalise=True).apply(
        windows_from_config(df, cfg, raw=True).X))


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=3),
       gaps=st.lists(st.sampled_from([5.0, 1.0, 0.0, 6.5, 8.0, 20.0]), min_size=3, max_size=3),
       window=st.sampled_from([250, 375, 750]), step=st.sampled_from([25, 125, 200]),
       seed=st.integers(0, 5))
def test_matches_a_plain_rolling_buffer(lengths: list[int], gaps: list[float], window: int, step: int,
                                        seed: int) -> None:
    events = []
    for e, n in enumerate(lengths):
        times = contiguous(n)
        times[n // 2:] = [t + gaps[e] - 5.0 for t in times[n // 2:]]
        events.append((e + 1, 100 + e % 2, e % 2, times))
    df = frame(events, shuffle_seed=seed)
    w = make_windows(df, window=window, step=step, preprocessing=None)
    expected, ids, ends = reference_windows(df, window, step)
    np.testing.assert_array_equal(w.X, expected)
    assert w.event_id.tolist() == ids
    np.testing.assert_array_equal(w.end_time, np.array(ends, dtype=np.float64))


def test_subset_and_npz_round_trip(tmp_path) -> None:  # noqa: ANN001
    w = make_windows(frame([(1, 7, 0, contiguous(8)), (2, 8, 1, contiguous(7))]))
    part = w.subset(np.array([3, 0]))
    assert part.event_id.tolist() == [2, 1]
    np.testing.assert_array_equal(part.X[1], w.X[0])
    w.save_npz(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(NPZ_KEYS)
    back = Windows.load_npz(tmp_path / "w.npz")
    for key in NPZ_KEYS:
        np.testing.assert_array_equal(getattr(back, key), getattr(w, key))
        assert getattr(back, key).dtype == getattr(w, key).dtype


def test_npz_with_wrong_keys_or_missing_file_is_a_data_error(tmp_path) -> None:  # noqa: ANN001
    np.savez(tmp_path / "bad.npz", X=np.zeros((2, 750), np.float32), y=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="bad.npz.*exactly the arrays"):
        Windows.load_npz(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="not found"):
        Windows.load_npz(tmp_path / "none.npz")


def test_inconsistent_event_labels_are_rejected() -> None:
    df = frame([(1, 7, 0, contiguous(6))])
    df.loc[3, "type"] = 1
    with pytest.raises(DataError, match="event 1 has rows with different type"):
        make_windows(df)


def test_empty_result_keeps_the_window_shape() -> None:
    w = make_windows(frame([(1, 7, 0, contiguous(3))]))
    assert w.X.shape == (0, 750) and w.X.dtype == np.float32 and len(w) == 0
