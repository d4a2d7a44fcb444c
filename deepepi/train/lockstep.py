"""Lockstep training: both frameworks from the same weights on the same batch stream, compared.

The trainers take the same step (``keras_lockstep.train_steps`` / ``torch_lockstep.train_steps``), so
what separates the two models is float rounding alone. ``drift`` trains both side by side and
measures, at chosen step counts, the largest weight difference (BatchNorm moving statistics
included) and, on held-out windows, the largest softmax difference and the argmax agreement.
In float64 the rounding is ~1e-16, so any algorithmic difference would show; float32 is what
training uses. Used by the cross-framework test and bench/lockstep_drift.py; needs both frameworks.
``deepepi prove-trainers`` (``train.prove``) is the full proof on a user's config: dropout on (shared
masks), optimiser state and BatchNorm statistics compared, every config key named.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from deepepi.scoring.agreement import argmax_agreement
from deepepi.train.batches import BatchStream

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Drift:
    steps: int
    max_weight_diff: float  # max over every neutral weight, BN moving statistics included
    max_rel_weight_diff: float  # per tensor: max |diff| / max |weight|, then the max over tensors
    max_prob_diff: float  # held-out windows, eval mode
    agreement: float  # argmax agreement on the held-out windows
    max_weight_change: float  # how far training moved the Keras weights from the start (scale of the above)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def without_dropout(m: dict[str, Any]) -> dict[str, Any]:
    """The modelConfig with dropout off: native dropout masks cannot match across frameworks, so
    ``drift`` (which keeps native dropout) needs it; ``train.prove`` feeds shared masks instead."""
    return {**m, "convDropout": 0.0, "denseDropout": 0.0}


def _max_abs_diff(wa: dict[str, np.ndarray], wb: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.max(np.abs(wa[k].astype(np.float64) - wb[k]))) for k in wa}


def compare(wa: dict[str, np.ndarray], wb: dict[str, np.ndarray], pa: np.ndarray, pb: np.ndarray,
            steps: int, start: dict[str, np.ndarray]) -> Drift:
    """Weight and output differences between two models (neutral weights, held-out softmax)."""
    diffs = _max_abs_diff(wa, wb)
    rel = [diffs[k] / max(float(np.max(np.abs(wa[k]))), 1e-12) for k in wa]
    return Drift(steps=steps, max_weight_diff=max(diffs.values()), max_rel_weight_diff=max(rel),
                 max_prob_diff=float(np.max(np.abs(pa.astype(np.float64) - pb))),
                 agreement=argmax_agreement(pa, pb),
                 max_weight_change=max(_max_abs_diff(wa, start).values()))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def drift(spec: Any, m: dict[str, Any], x: np.ndarray, y: np.ndarray, held_out: np.ndarray, *, seed: int,
          checkpoints: Sequence[int], dtype: str = "float32") -> list[Drift]:
    """Train Keras and PyTorch in lockstep from Keras's seeded weights; a Drift at each checkpoint.

    ``spec`` must have no dropout (see ``without_dropout``); ``x``/``held_out`` are windows in g.
    """
    import torch

    from deepepi.models import keras_weights as kd
    from deepepi.models import torch_weights as td
    from deepepi.train import keras_lockstep, torch_lockstep

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    x, held_out = x.astype(dtype), held_out.astype(dtype)
    start = keras_lockstep.seeded_weights(spec, seed)
    k_model = keras_lockstep.lockstep_model(spec, start, m, dtype)
    t_model = torch_lockstep.lockstep_model(spec, start, dtype)
    stream = BatchStream(len(y), int(m["batchSize"]), seed)
    stepper, done, out = None, 0, []
    for stop in sorted(checkpoints):
        keras_lockstep.train_steps(k_model, m, x, y, stream, done, stop)
        stepper = torch_lockstep.train_steps(t_model, m, x, y, stream, done, stop, stepper)
        done = stop
        k_logits = np.asarray(k_model.predict(held_out, batch_size=512, verbose=0), dtype=np.float64)
        t_model.eval()
        with torch.no_grad():
            t_logits = t_model(torch.from_numpy(held_out)).numpy().astype(np.float64)
        out.append(compare(kd.export_weights(k_model, spec), td.export_weights(t_model, spec),
                           _softmax(k_logits), _softmax(t_logits), stop, start))
    return out
