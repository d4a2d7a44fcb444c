"""The windows a quantised export is calibrated and checked on: the run's own training and validation events."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepepi.runs.resolve import Run

CALIBRATION_WINDOWS = 256  # set int8's activation ranges
# Every quantised export is held to its argmax agreement on this many windows (validation windows
# first): on 256 windows, 99 % allows 2 flips, too few to tell 98.5 % from 99 %.
CHECK_WINDOWS = 2048


def split_windows(run: Run, csv: str | Path | None) -> dict[str, np.ndarray]:
    """Raw milli-g windows of the run's "train" and "val" events (its config's split of ``csv``,
    default the built-in dataset)."""
    from deepepi.data.csvio import load_csv
    from deepepi.data.synth import default_dataset
    from deepepi.data.windows import windows_from_config
    from deepepi.data.dataset import prepare

    csv = Path(csv) if csv is not None else default_dataset()
    datasets = prepare(run.config, csv)
    windows = windows_from_config(load_csv(csv), run.config, raw=True)
    return {part: windows.X[np.isin(windows.event_id, np.unique(getattr(datasets, part).event_id))]
            for part in ("train", "val")}


def _draw(raw: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` of ``raw``'s windows, drawn with ``seed`` (kept in their order)."""
    pick = np.random.default_rng(seed).permutation(len(raw))[:n]
    return np.ascontiguousarray(raw[np.sort(pick)], dtype=np.float32)


def quantisation_windows(run: Run, csv: str | Path | None, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, check): CALIBRATION_WINDOWS training windows that calibrate int8, and the
    CHECK_WINDOWS windows every quantised export must agree on: the run's validation windows first,
    topped up with training windows when there are fewer. Validation windows first, because a model
    agrees with its int8 copy more often on windows it was trained on (a 20-epoch reference network:
    99.3 % on training windows, 98.9 % on others)."""
    raw = split_windows(run, csv)
    val = _draw(raw["val"], CHECK_WINDOWS, seed)
    top_up = _draw(raw["train"], CHECK_WINDOWS - len(val), seed + 1)
    return _draw(raw["train"], CALIBRATION_WINDOWS, seed), np.concatenate([val, top_up])
