"""The validation-chosen decision threshold, recorded in the run directory as threshold.json.

The rule and its figures are scoring's (``deepepi.scoring.operating.training_threshold``: the highest
grid threshold keeping the validation event sensitivity, raw windows, at its maximum); this module
only turns the validation split into scoring's input and writes the record. Export copies the
threshold into the ONNX metadata as ``decision_threshold``; evaluate and predict use it by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepepi.core import io
from deepepi.data.windows import GAP_SECONDS
from deepepi.runs.layout import THRESHOLD
from deepepi.scoring.evaldata import from_windows
from deepepi.scoring.operating import training_threshold


def choose_threshold(p_seizure: np.ndarray, windows: Any, hop_s: float) -> dict[str, Any]:
    """The threshold record for ``windows`` (validation split) and their seizure probabilities."""
    return training_threshold(p_seizure, from_windows(windows, hop_s, gap_seconds=GAP_SECONDS))


def record(run_dir: Path, p_seizure: np.ndarray, windows: Any, hop_s: float, val_source: str) -> dict[str, Any]:
    """Choose the threshold on the validation split and write RUN/threshold.json."""
    rec = {**choose_threshold(p_seizure, windows, hop_s), "validation_source": val_source}
    io.write_json(Path(run_dir) / THRESHOLD, rec)
    return rec
