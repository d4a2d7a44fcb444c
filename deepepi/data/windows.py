"""Model input windows cut from the flattened CSV, fully vectorised (no Python loop over rows or runs).

Reference semantics: a rolling buffer per event that resets at every new event, filled with
datapoints (125 samples, 5 s) in dataTime order, emitting a window every ``step`` samples once it
holds ``window`` samples. A run of n contiguous datapoints therefore gives
``floor((125 n - window) / step) + 1`` windows when 125 n >= window, else none
(750 / 125: max(0, n - 5)).

Gaps and overlaps, applied per event after sorting by dataTime (stable, so file order breaks ties):
1. a datapoint less than 2.5 s after the previous row of its event (dropped or not) is an overlap
   or duplicate and is dropped;
2. among the kept datapoints, a gap of more than 7.5 s breaks the run: the buffer resets, and no
   window spans the gap. Gaps up to 7.5 s are treated as timing jitter of a contiguous recording.
With ``dataProcessing.validateDatapoints`` the reference's rule applies instead: gaps are zero-filled
first (deepepi.data.gaps) and windows run straight through each event.
Every window carries its event's label, event id, user id and the dataTime of its last datapoint.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepepi.core.config import Config
from deepepi.core.constants import SAMPLE_FREQ_HZ, SAMPLES_PER_DATAPOINT
from deepepi.data.csvio import M_COLUMNS, WINDOW_COLUMNS
from deepepi.data.gaps import fill_gaps
from deepepi.core.errors import ConfigError, DataError, DeepEpiError
from deepepi.core.io import save_npz
from deepepi.core.preprocessing import Preprocessing
from deepepi.core.preprocessing import from_config as preprocessing_from_config

OVERLAP_SECONDS = 2.5
GAP_SECONDS = 7.5
NPZ_KEYS = ("X", "y", "event_id", "user_id", "end_time")
_CHUNK_WINDOWS = 4096
_DTYPES = {"X": np.float32, "y": np.int64, "event_id": np.int64, "user_id": np.int64,
           "end_time": np.float64}


@dataclass
class Windows:
    """Windows and their per-window labels; X is model input in g unless made with preprocessing=None."""

    X: np.ndarray
    y: np.ndarray
    event_id: np.ndarray
    user_id: np.ndarray
    end_time: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.X)
        for key in NPZ_KEYS[1:]:
            if len(getattr(self, key)) != n:
                raise ValueError(f"Windows.{key} has {len(getattr(self, key))} entries, X has {n}")

    def __len__(self) -> int:
        return len(self.X)

    def subset(self, idx: np.ndarray) -> "Windows":
        """Windows at ``idx`` (integer indices or a boolean mask), in that order."""
        return Windows(*(getattr(self, key)[idx] for key in NPZ_KEYS))

    def save_npz(self, path: str | Path) -> None:
        save_npz(path, {key: getattr(self, key) for key in NPZ_KEYS})

    @classmethod
    def load_npz(cls, path: str | Path) -> "Windows":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                keys = set(npz.files)
                if keys != set(NPZ_KEYS):
                    raise DataError(f"expected exactly the arrays {', '.join(NPZ_KEYS)}; got "
                                    f"{', '.join(sorted(keys)) or 'none'}", source=str(path))
                arrays = {key: npz[key] for key in NPZ_KEYS}
        except FileNotFoundError:
            raise DataError("windows file not found", source=str(path)) from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: an empty file
            raise DataError(f"not a readable .npz windows file ({exc})", source=str(path)) from None
        if arrays["X"].ndim != 2:
            raise DataError(f"array X must be 2-D [n, window], got shape {arrays['X'].shape}", source=str(path))
        for key, dtype in _DTYPES.items():
            if not np.can_cast(arrays[key].dtype, dtype, casting="same_kind"):
                raise DataError(f"array {key} has dtype {arrays[key].dtype}, expected {np.dtype(dtype)}",
                                source=str(path))
        try:
            return cls(**{key: arrays[key].astype(_DTYPES[key], copy=False) for key in NPZ_KEYS})
        except ValueError as exc:
            raise DataError(str(exc), source=str(path)) from None


def count_windows(n_samples: int | np.ndarray, window: int, step: int) -> int | np.ndarray:
    """Windows a contiguous run of ``n_samples`` samples gives (elementwise for arrays)."""
    n = np.asarray(n_samples, dtype=np.int64)
    counts = np.where(n >= window, (n - window) // step + 1, 0)
    return int(counts) if counts.ndim == 0 else counts


def _runs(event: np.ndarray, time: np.ndarray,
          gap_seconds: float = GAP_SECONDS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row order (sorted, overlaps dropped) and the first row / length of each contiguous run."""
    order = np.lexsort((time, event))
    ev, t = event[order], time[order]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = ~((ev[1:] == ev[:-1]) & (np.diff(t) < OVERLAP_SECONDS))
    order, ev, t = order[keep], ev[keep], t[keep]
    new_run = np.ones(len(order), dtype=bool)
    new_run[1:] = (ev[1:] != ev[:-1]) | (np.diff(t) > gap_seconds)
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(starts, len(order)))
    return order, starts, lengths


def contiguous_runs(df: pd.DataFrame, gap_seconds: float = GAP_SECONDS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``df`` in event/time order with overlaps dropped, and the first position and length
    of each contiguous run (a new event, or a gap that restarts the buffer): the datapoint stream
    that both the windows here and a streaming replay (``deepepi predict --stream``) follow."""
    return _runs(df["eventId"].to_numpy(dtype=np.int64), df["dataTime"].to_numpy(dtype=np.float64), gap_seconds)


def _check_constant(values: np.ndarray, event: np.ndarray, name: str) -> None:
    changed = (event[1:] == event[:-1]) & (values[1:] != values[:-1])
    if changed.any():
        i = int(np.flatnonzero(changed)[0])
        raise DataError(f"event {int(event[i])} has rows with different {name} "
                        f"({int(values[i])} and {int(values[i + 1])})")


def _layout(df: pd.DataFrame, window: int, step: int,
            gap_seconds: float = GAP_SECONDS) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Row order (sorted, overlaps dropped), each window's first sample in those rows' flattened
    M samples, and the per-window arrays y, event_id, user_id and end_time."""
    if window < 1 or step < 1:
        raise ValueError(f"window and step must be >= 1, got {window} and {step}")
    missing = [c for c in WINDOW_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"data has no column {missing[0]}")
    event = df["eventId"].to_numpy(dtype=np.int64)
    times = df["dataTime"].to_numpy(dtype=np.float64)
    order, run_rows, run_lengths = _runs(event, times, gap_seconds)
    event = event[order]
    label = df["type"].to_numpy(dtype=np.int64)[order]
    user = df["userId"].to_numpy(dtype=np.int64)[order]
    _check_constant(label, event, "type")
    _check_constant(user, event, "userId")

    counts = count_windows(run_lengths * SAMPLES_PER_DATAPOINT, window, step)
    total = int(counts.sum())
    run_of = np.repeat(np.arange(len(counts)), counts)
    k = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    start = run_rows[run_of].astype(np.int64) * SAMPLES_PER_DATAPOINT + k * step
    first_row = start // SAMPLES_PER_DATAPOINT
    last_row = (start + window - 1) // SAMPLES_PER_DATAPOINT
    return order, start, {"y": label[first_row], "event_id": event[first_row], "user_id": user[first_row],
                          "end_time": times[order][last_row]}


def window_labels(df: pd.DataFrame, *, window: int = 750, step: int = 125,
                  gap_seconds: float = GAP_SECONDS) -> dict[str, np.ndarray]:
    """make_windows' per-window y, event_id, user_id and end_time, without cutting any samples."""
    return _layout(df, window, step, gap_seconds)[2]


def make_windows(df: pd.DataFrame, *, window: int = 750, step: int = 125,
                 preprocessing: Preprocessing | None = Preprocessing(),
                 gap_seconds: float = GAP_SECONDS) -> Windows:
    """Cut every event of ``df`` (from load_csv) into windows; ``preprocessing=None`` keeps milli-g."""
    order, start, labels = _layout(df, window, step, gap_seconds)
    total = len(start)
    # One sorted copy of the magnitude samples, filled column by column (no full-frame temporaries).
    samples = np.empty((len(order), SAMPLES_PER_DATAPOINT), dtype=np.float32)
    for j, column in enumerate(M_COLUMNS):
        samples[:, j] = df[column].to_numpy()[order]
    view = np.lib.stride_tricks.sliding_window_view(samples.reshape(-1), window) if total else None
    X = np.empty((total, window), dtype=np.float32)
    for i in range(0, total, _CHUNK_WINDOWS):
        block = view[start[i:i + _CHUNK_WINDOWS]]
        X[i:i + len(block)] = block if preprocessing is None else preprocessing.apply(block)
    return Windows(X=X, **labels)


def rows_from_config(df: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, dict[str, float | int]]:
    """The rows and layout arguments the config implies: validateDatapoints zero-fills gaps
    (deepepi.data.gaps, idempotent) and then lets windows run through them.

    The CSV is 25 Hz, so a config with another modelConfig.sampleFreq would cut windows of the
    wrong duration: that is a ConfigError, never a silent reinterpretation.
    """
    rate = cfg.model["sampleFreq"]
    if rate != SAMPLE_FREQ_HZ:
        raise ConfigError(f"modelConfig.sampleFreq: {rate} Hz, but the flattened CSV holds {SAMPLE_FREQ_HZ} Hz "
                          f"data ({SAMPLES_PER_DATAPOINT} samples per 5-s row)", source=cfg.source)
    layout: dict[str, float | int] = {"window": cfg.window, "step": int(cfg.processing["step"])}
    if cfg.processing["validateDatapoints"]:
        return fill_gaps(df), {**layout, "gap_seconds": math.inf}
    return df, layout


def gap_from_config(cfg: Config) -> float:
    """The gap (s) that restarts the buffer under the config: none with validateDatapoints (windows
    run through the zero-filled gaps), else GAP_SECONDS."""
    return math.inf if cfg.processing["validateDatapoints"] else GAP_SECONDS


def load_window_config(path: str | Path | None, window: int, error: type[DeepEpiError] = ConfigError) -> Config:
    """The config that cuts a model's windows (``--config`` of evaluate, predict and verify), loaded for
    windowing only (no training warnings); its window must be the model's input window."""
    from deepepi.core.config import load_config

    cfg = load_config(path, warn=("keys", "window"))
    if cfg.window != window:
        raise error(f"config window {cfg.window} (sampleFreq x bufferSeconds) differs from the models' "
                    f"input window {window}", source=cfg.source)
    return cfg


def windows_from_config(df: pd.DataFrame, cfg: Config, *, raw: bool = False) -> Windows:
    """Windows with the config's window, step, gap rule and normalisation; ``raw`` keeps milli-g (ONNX input)."""
    rows, layout = rows_from_config(df, cfg)
    return make_windows(rows, preprocessing=None if raw else preprocessing_from_config(cfg), **layout)


def window_labels_from_config(df: pd.DataFrame, cfg: Config) -> dict[str, np.ndarray]:
    """windows_from_config's labels without cutting samples."""
    rows, layout = rows_from_config(df, cfg)
    return window_labels(rows, **layout)


__all__ = ["Windows", "make_windows", "window_labels", "windows_from_config", "window_labels_from_config",
           "rows_from_config", "gap_from_config", "load_window_config", "count_windows", "contiguous_runs", "NPZ_KEYS",
           "OVERLAP_SECONDS", "GAP_SECONDS"]
