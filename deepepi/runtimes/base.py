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

from converters.contract import ALARM_KEY, GATE_KEY, THRESHOLD_KEY, WARN_KEY, ExportInfo, Exporter, metadata
from deepepi import __version__
from deepepi.core.errors import DataError, ModelError
from deepepi.core.preprocessing import Preprocessing
from deepepi.core.threshold import parse_threshold
from deepepi.scoring.decision import Decision, Layer, config_parts, resolve

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


def _rows(rows: np.ndarray, first_row: int) -> str:
    shown = ", ".join(str(int(r) + first_row) for r in rows[:5])
    return f"input row{'s' if len(rows) > 1 else ''} {shown}{', ...' if len(rows) > 5 else ''}"


def check_proba(p: Any, n: int, source: str, *, first_row: int = 0) -> np.ndarray:
    """float32 [n, 2] of probabilities, else ModelError naming the model and the input rows at fault
    (numbered from ``first_row``): a NaN or out-of-range output never reaches a result."""
    p = np.asarray(p)
    if p.shape != (n, NUM_CLASSES):
        raise ModelError(f"output shape {p.shape}, expected [{n}, {NUM_CLASSES}] probabilities", source=source)
    if not n:
        return p.astype(np.float32, copy=False)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(p).all(axis=1)
        ok = finite & (p.min(axis=1) >= -PROBA_ATOL) & (p.max(axis=1) <= 1 + PROBA_ATOL) \
            & (np.abs(p.sum(axis=1) - 1.0) <= PROBA_ATOL)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        what = ("non-finite probabilities" if not finite[bad[0]] else
                "rows that are not probabilities (in [0, 1], summing to 1)")
        raise ModelError(f"{what} for {len(bad)} of {n} windows, {_rows(bad, first_row)} "
                         f"(first {p[bad[0]].tolist()})", source=source)
    return p.astype(np.float32, copy=False)


class Adapter:
    """Base class of every runtime adapter: ``predict_proba`` checks the input, calls the adapter's
    ``_proba`` and checks its output, in this one place. A subclass cannot override ``predict_proba``,
    and ``open_model`` returns adapters only, so a new format gets the checks by construction."""

    path: Path
    window: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "predict_proba" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: runtime adapters implement _proba, not predict_proba "
                            "(deepepi.runtimes.base.Adapter checks both sides)")

    def _proba(self, x_milli_g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, acc_milli_g: np.ndarray) -> np.ndarray:
        """Probabilities float32 [n, 2] for raw milli-g windows float32 [n, window]."""
        x = check_acc(acc_milli_g, self.window, str(self.path))
        return check_proba(self._proba(x), len(x), str(self.path))


def decision_threshold(meta: dict[str, str], source: str) -> float | None:
    """The model's recorded ``decision_threshold`` metadata, or None."""
    raw = meta.get(THRESHOLD_KEY)
    if raw is None:
        return None
    return parse_threshold(raw, field=f"metadata {THRESHOLD_KEY}", source=source, error=ModelError,
                           from_text=True)


def _number(meta: dict[str, str], key: str) -> Any:
    """A recorded number, or None when absent; text that is no number is passed on as it is, for the
    resolver to refuse naming the file."""
    raw = meta.get(key)
    if raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return raw


def decision_layer(meta: dict[str, str], source: str) -> Layer:
    """The model metadata's part of the Decision (``scoring.decision``): the recorded decision threshold,
    movement gate and WarnTime/AlarmTime (ONNX metadata, the app sidecar, a run's threshold.json and
    config); absent: None."""
    return Layer(f"model metadata {source}", {"threshold": decision_threshold(meta, source),
                                               "acc_sd_threshold": _number(meta, GATE_KEY),
                                               "warn_time": _number(meta, WARN_KEY),
                                               "alarm_time": _number(meta, ALARM_KEY)})


def run_layers(run_dir: Path, cfg: Any) -> tuple[Layer, Layer]:
    """A run directory's parts of the Decision, each named by its file in the run (not by an absolute
    path, so two copies of one run record the same decision): the threshold its threshold.json
    records (model metadata) and its config's movement gate and WarnTime/AlarmTime (run config)."""
    from deepepi.runs.layout import CONFIG, THRESHOLD, read_threshold

    return (Layer(f"the run's {THRESHOLD}", {"threshold": read_threshold(Path(run_dir))}),
            Layer(f"the run's {CONFIG}", config_parts(cfg.processing)))


def run_decision(run_dir: Path, cfg: Any) -> Decision:
    """A run's Decision with no flag given: its threshold.json, then its config, then the defaults."""
    return resolve(*run_layers(run_dir, cfg))


@dataclass
class NativeRuntime(Adapter):
    """A framework model behind the protocol: milli-g -> preprocessing -> ``predict_g`` (windows in g
    to softmax probabilities). Metadata uses the ONNX contract's keys, computed from the run's config."""

    path: Path
    format: str
    window: int
    preprocessing: Preprocessing
    predict_g: Callable[[np.ndarray], np.ndarray]
    metadata: dict[str, str]
    runtime: dict[str, Any] = field(default_factory=dict)

    def _proba(self, x_milli_g: np.ndarray) -> np.ndarray:
        return self.predict_g(self.preprocessing.apply(x_milli_g))

    def describe(self) -> dict[str, Any]:
        return {"format": self.format, "path": str(self.path), **self.runtime}


def native_metadata(model_file: Path, cfg: Any, spec: Any, framework: str, framework_version: str) -> dict[str, str]:
    """The metadata an ONNX export of this model would carry (decision_threshold included)."""
    from deepepi.runs.resolve import source_for

    info = ExportInfo(source_for(model_file, cfg), spec.window, spec.num_classes,
                      spec.expected_counts().trainable, spec.to_json())
    return metadata(info, Exporter(framework, framework_version, "native", __version__))
