"""The Runtime protocol every adapter implements, and the checks and native wrapper they share.

Input everywhere: raw acceleration magnitude in milli-g, float32 [n, window], as in the CSV and the
ONNX contract. Output: probabilities float32 [n, 2], class 1 = seizure. Each adapter maps its own
convention (g vs milli-g, layout, logits vs softmax) to this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from converters.contract import GATE_KEY, THRESHOLD_KEY, ExportInfo, Exporter, metadata
from deepepi import __version__
from deepepi.core.errors import DataError, ModelError
from deepepi.core.preprocessing import Preprocessing
from deepepi.core.threshold import parse_threshold
from deepepi.scoring.decision import Decision, Layer, resolve

NUM_CLASSES = 2
PROBA_ATOL = 1e-3  # a probability row must sum to 1 within this, and lie in [0, 1] within it


@runtime_checkable
class Runtime(Protocol):
    path: Path
    format: str
    window: int
    metadata: dict[str, str]

    def predict_proba(self, acc_milli_g: np.ndarray) -> np.ndarray:
        """Probabilities float32 [n, 2] for raw milli-g windows float32 [n, window]."""

    def describe(self) -> dict[str, Any]:
        """Format, runtime name and version, providers or delegates: for reports."""


def check_acc(acc_milli_g: Any, window: int, source: str) -> np.ndarray:
    """Contiguous float32 [n, window]; a wrong shape is a DataError naming the model."""
    x = np.asarray(acc_milli_g)
    if x.ndim != 2 or x.shape[1] != window:
        raise DataError(f"model input: got shape {x.shape}, expected [n, {window}] milli-g windows",
                        source=source)
    return np.ascontiguousarray(x, dtype=np.float32)


def check_proba(p: Any, n: int, source: str) -> np.ndarray:
    """float32 [n, 2] of probabilities, else ModelError: the model breaks the contract."""
    p = np.asarray(p)
    if p.shape != (n, NUM_CLASSES):
        raise ModelError(f"output shape {p.shape}, expected [{n}, {NUM_CLASSES}] probabilities", source=source)
    if n and not (np.isfinite(p).all() and p.min() >= -PROBA_ATOL and p.max() <= 1 + PROBA_ATOL
                  and np.abs(p.sum(axis=1) - 1.0).max() <= PROBA_ATOL):
        raise ModelError("output rows are not probabilities (finite, in [0, 1], summing to 1)", source=source)
    return p.astype(np.float32, copy=False)


def decision_threshold(meta: dict[str, str], source: str) -> float | None:
    """The model's recorded ``decision_threshold`` metadata, or None."""
    raw = meta.get(THRESHOLD_KEY)
    if raw is None:
        return None
    return parse_threshold(raw, field=f"metadata {THRESHOLD_KEY}", source=source, error=ModelError,
                           from_text=True)


def decision_layer(meta: dict[str, str], source: str) -> Layer:
    """The model metadata's part of the Decision (``scoring.decision``): the recorded decision threshold
    and movement gate (ONNX metadata, the app sidecar, a run's threshold.json and config); absent: None."""
    gate = None
    raw = meta.get(GATE_KEY)
    if raw is not None:
        try:
            gate = float(raw)
        except (TypeError, ValueError):
            gate = raw  # refused, naming the file, by the resolver
    return Layer(f"model metadata {source}", {"threshold": decision_threshold(meta, source),
                                               "acc_sd_threshold": gate})


def run_layers(run_dir: Path, cfg: Any) -> tuple[Layer, Layer]:
    """A run directory's parts of the Decision, each named by its file in the run (not by an absolute
    path, so two copies of one run record the same decision): the threshold its threshold.json
    records (model metadata) and its config's movement gate (run config)."""
    from deepepi.runs.layout import CONFIG, THRESHOLD, read_threshold

    return (Layer(f"the run's {THRESHOLD}", {"threshold": read_threshold(Path(run_dir))}),
            Layer(f"the run's {CONFIG}", {"acc_sd_threshold": cfg.processing.get("accSdThreshold")}))


def run_decision(run_dir: Path, cfg: Any) -> Decision:
    """A run's Decision with no flag given: its threshold.json, then its config, then the defaults."""
    return resolve(*run_layers(run_dir, cfg))


@dataclass
class NativeRuntime:
    """A framework model behind the protocol: milli-g -> preprocessing -> ``predict_g`` (windows in g
    to softmax probabilities). Metadata uses the ONNX contract's keys, computed from the run's config."""

    path: Path
    format: str
    window: int
    preprocessing: Preprocessing
    predict_g: Callable[[np.ndarray], np.ndarray]
    metadata: dict[str, str]
    runtime: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, acc_milli_g: np.ndarray) -> np.ndarray:
        x = check_acc(acc_milli_g, self.window, str(self.path))
        return check_proba(self.predict_g(self.preprocessing.apply(x)), len(x), str(self.path))

    def describe(self) -> dict[str, Any]:
        return {"format": self.format, "path": str(self.path), **self.runtime}


def native_metadata(model_file: Path, cfg: Any, spec: Any, framework: str, framework_version: str) -> dict[str, str]:
    """The metadata an ONNX export of this model would carry (decision_threshold included)."""
    from deepepi.runs.resolve import source_for

    info = ExportInfo(source_for(model_file, cfg), spec.window, spec.num_classes,
                      spec.expected_counts().trainable, spec.to_json())
    return metadata(info, Exporter(framework, framework_version, "native", __version__))
