"""The last step of every deployment export (.tflite, .pte, quantised ONNX): check, then write.

The converted bytes are loaded into the runtime that will run them (LiteRT, ExecuTorch,
onnxruntime) and compared with the source model before anything is written: float32 exports must
match within 1e-5 (max abs, probabilities) on realistic windows at the self-check's batch sizes;
quantised exports must keep argmax agreement >= 99 % on the check windows (in `deepepi export`, up to
2,048 windows of the run's validation events), the
same bar as ``deepepi verify --mode quantized``. Only then are the model and its metadata sidecar
written atomically. Framework-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from converters.contract import SELF_CHECK_ATOL, SELF_CHECK_BATCHES, Reference, realistic_windows
from deepepi.core.errors import DeepEpiError, ExportError
from deepepi.core.io import write_bytes

QUANTIZED_MIN_AGREEMENT = 0.99

# content, sidecar dict, path -> an object with predict_proba(raw milli-g) (a Runtime)
RuntimeFactory = Callable[[bytes, dict, Path], Any]


@dataclass(frozen=True)
class DeployResult:
    path: Path
    sidecar: Path | None
    size_bytes: int
    max_abs_diff: float
    agreement: float
    windows: int


def self_check_windows(window: int, seed: int) -> np.ndarray:
    """The fp32 self-check's windows: the ONNX exporters' realistic windows at both batch sizes."""
    return np.concatenate([realistic_windows(b, window, seed=seed + i)
                           for i, b in enumerate(SELF_CHECK_BATCHES)])


def compare(runtime: Any, reference: Reference, raw: np.ndarray, *, quantized: bool, source: str,
            min_agreement: float = QUANTIZED_MIN_AGREEMENT) -> tuple[float, float]:
    """(max abs difference, argmax agreement) of ``runtime`` against ``reference`` on ``raw``;
    ExportError past the fp32 tolerance or the quantised agreement bar ``min_agreement``."""
    try:
        got = np.asarray(runtime.predict_proba(raw), dtype=np.float64)
    except DeepEpiError as exc:
        raise ExportError(f"self-check: the exported model does not run: {exc}", source=source) from None
    want = np.asarray(reference(raw), dtype=np.float64)
    if got.shape != want.shape or not np.isfinite(got).all():
        raise ExportError(f"self-check: output {got.shape} (finite: {bool(np.isfinite(got).all())}) "
                          f"differs from the source model's {want.shape}", source=source)
    diff = float(np.max(np.abs(got - want)))
    agreement = float(np.mean(got.argmax(axis=1) == want.argmax(axis=1)))
    if not quantized and diff > SELF_CHECK_ATOL:
        raise ExportError(f"self-check failed: exported vs source model max abs difference "
                          f"{diff:.3g} > {SELF_CHECK_ATOL:g}; nothing was written", source=source)
    if quantized and agreement < min_agreement:
        raise ExportError(f"self-check failed: quantised model agrees with the source model on "
                          f"{agreement:.2%} of {len(raw)} check windows (< "
                          f"{min_agreement:.0%}); nothing was written", source=source)
    return diff, agreement


def finish(content: bytes, out: str | Path, sidecar: dict | None, runtime: RuntimeFactory,
           reference: Reference, check_windows: np.ndarray, *, quantized: bool,
           min_agreement: float = QUANTIZED_MIN_AGREEMENT) -> DeployResult:
    """Load ``content`` in its runtime, compare with ``reference``, then write it (and the sidecar).
    ``min_agreement`` is the quantised bar (bench/deploy.py lowers it to measure refused files)."""
    from converters import app_meta

    out = Path(out)
    loaded = runtime(content, sidecar, out)
    diff, agreement = compare(loaded, reference, check_windows, quantized=quantized, source=str(out),
                              min_agreement=min_agreement)
    write_bytes(out, content)
    side = app_meta.write(out, sidecar) if sidecar is not None else None
    return DeployResult(out, side, len(content), diff, agreement, len(check_windows))
