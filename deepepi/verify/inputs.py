"""What verification runs on: model files opened in their runtimes, and input windows.

ONNX files are opened here, leniently: a graph that breaks the contract must still run so the checks
can report *how* it breaks it (exit 1), where ``deepepi.runtimes``' ONNX adapter refuses it. Every
other format (.tflite, .pte, ...) opens through ``deepepi.runtimes.open_model``. Every failure here
means verification cannot start, so it raises UnusableInputError (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx

from converters.contract import input_window, read_metadata, realistic_windows
from converters.session import OnnxFile, load_onnx, open_session
from deepepi.core.errors import DeepEpiError, UnusableInputError

@dataclass(frozen=True)
class Inputs:
    """Raw milli-g windows, their labels and event ids when known, and a description for the report."""

    raw: np.ndarray
    labels: np.ndarray | None
    source: dict
    event_id: np.ndarray | None = None
    data: Any = None    # scoring.evaldata.EvalData over labelled windows (for decision-level figures)
    windowing: Any = None  # runtimes.windowing.Windowing (a config file's accSdThreshold is the Decision's config part)


def random_inputs(n: int, window: int, *, seed: int) -> Inputs:
    if n < 1:
        raise UnusableInputError(f"--random: got {n}, expected a positive number of windows")
    return Inputs(realistic_windows(n, window, seed=seed), None,
                  {"kind": "random", "n": n, "seed": seed})


def csv_inputs(csv: str | Path, win: Any) -> Inputs:
    """Raw milli-g windows and labels from a flattened OSDB CSV, cut as ``win`` says
    (``runtimes.windowing.Windowing``: --config, the run's config, or model A's metadata)."""
    from deepepi.data.csvio import load_csv
    from deepepi.data.windows import gap_from_config, windows_from_config
    from deepepi.scoring.decision import windows_data

    cfg = win.cfg
    try:
        windows = windows_from_config(load_csv(csv), cfg, raw=True)
    except DeepEpiError as exc:
        raise UnusableInputError(str(exc)) from None
    if len(windows) == 0:
        raise UnusableInputError("no complete windows in the data", source=str(csv))
    rate = float(cfg.model["sampleFreq"])
    data = windows_data(windows, hop_s=int(cfg.processing["step"]) / rate, gap_seconds=gap_from_config(cfg),
                        window_seconds=cfg.window / rate)
    return Inputs(np.ascontiguousarray(windows.X, dtype=np.float32), np.asarray(windows.y),
                  {"kind": "csv", "path": str(csv), "config": win.source, "n": len(windows),
                   "events": int(len(np.unique(windows.event_id)))},
                  np.asarray(windows.event_id), data, win)


@dataclass
class Subject:
    """One side of a comparison: its runtime, and the parsed graph when it is an ONNX file."""

    runtime: Any  # deepepi.runtimes.Runtime
    proto: onnx.ModelProto | None

    @property
    def used(self) -> list[str]:
        """Providers (onnxruntime) or delegates (LiteRT, ExecuTorch) the runtime runs on."""
        info = self.runtime.describe()
        return list(info.get("providers") or info.get("delegates") or [info.get("runtime", "?")])


def _open_onnx(path: Path, providers: Sequence[str]) -> Subject:
    proto = load_onnx(path)
    window = input_window(proto)
    runtime = OnnxFile(path, proto, open_session(path, providers), metadata=read_metadata(proto),
                       window=0 if window is None else window)
    return Subject(runtime, proto)


def _open_other(path: Path, providers: Sequence[str]) -> Subject:
    from deepepi.runtimes import open_model

    if not path.is_file():  # verify compares files: a directory or device is not one
        raise UnusableInputError("not a regular file" if path.exists() else "model file not found",
                                 source=str(path))
    try:
        return Subject(open_model(path), None)
    except DeepEpiError as exc:
        raise UnusableInputError(str(exc)) from None


OPENERS = {".onnx": _open_onnx}  # every other suffix: the runtime adapters' own open_model


def open_subject(path: str | Path, providers: Sequence[str]) -> Subject:
    """Open ``path`` for comparison (``providers`` apply to ONNX files)."""
    path = Path(path)
    return OPENERS.get(path.suffix.lower(), _open_other)(path, providers)
