"""The windows a quantised export is calibrated and checked on: the run's own training and validation events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepepi.runs.resolve import Run
from deepepi.scoring.evaldata import EvalData

CALIBRATION_WINDOWS = 256  # set int8's activation ranges
# Every quantised export is held to its argmax agreement on this many windows (validation windows
# first): on 256 windows, 99 % allows 2 flips, too few to tell 98.5 % from 99 %.
CHECK_WINDOWS = 2048


def split_windows(run: Run, csv: str | Path | None) -> dict[str, Any]:
    """Raw milli-g windows of the run's "train" and "val" events (its config's split of ``csv``,
    default the built-in dataset), and under "val_windows" the labelled validation ``Windows``."""
    from deepepi.data.csvio import load_csv
    from deepepi.data.synth import default_dataset
    from deepepi.data.windows import windows_from_config
    from deepepi.data.dataset import prepare

    csv = Path(csv) if csv is not None else default_dataset()
    datasets = prepare(run.config, csv)
    windows = windows_from_config(load_csv(csv), run.config, raw=True)
    masks = {part: np.isin(windows.event_id, np.unique(getattr(datasets, part).event_id)) for part in ("train", "val")}
    return {**{part: windows.X[mask] for part, mask in masks.items()}, "val_windows": windows.subset(masks["val"])}


def gate_data(run: Run, val_windows: Any) -> EvalData:
    """The labelled windows every quantised export is gated on at the run's Decision: all of the run's
    validation windows, scored as ``verify --mode quantized`` scores a CSV of those events."""
    from deepepi.data.windows import gap_from_config
    from deepepi.scoring.decision import windows_data

    cfg = run.config
    rate = float(cfg.model["sampleFreq"])
    return windows_data(val_windows, hop_s=int(cfg.processing["step"]) / rate, gap_seconds=gap_from_config(cfg),
                        window_seconds=cfg.window / rate)


def _draw(raw: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` of ``raw``'s windows, drawn with ``seed`` (kept in their order)."""
    pick = np.random.default_rng(seed).permutation(len(raw))[:n]
    return np.ascontiguousarray(raw[np.sort(pick)], dtype=np.float32)


def quantisation_windows(run: Run, csv: str | Path | None, *,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray, EvalData]:
    """(calibration, check, gate data): CALIBRATION_WINDOWS training windows that calibrate int8, and the
    CHECK_WINDOWS windows every quantised export must agree on: the run's validation windows first,
    topped up with training windows when there are fewer. Validation windows first, because a model
    agrees with its int8 copy more often on windows it was trained on (a 20-epoch reference network:
    99.3 % on training windows, 98.9 % on others). The gate data (``gate_data``) are the validation
    windows, labelled, for the decision-level gate."""
    raw = split_windows(run, csv)
    val = _draw(raw["val"], CHECK_WINDOWS, seed)
    top_up = _draw(raw["train"], CHECK_WINDOWS - len(val), seed + 1)
    return (_draw(raw["train"], CALIBRATION_WINDOWS, seed), np.concatenate([val, top_up]),
            gate_data(run, raw["val_windows"]))
