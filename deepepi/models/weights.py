"""Neutral weights: one .npz keyed ``<layer>/<param>`` (Keras layout) plus the spec, readable by both frameworks.

Conv kernels are (k, in, out), dense kernels (in, out), BatchNorm layers store gamma, beta,
moving_mean and moving_variance. The spec travels as a 0-d string array, so nothing needs a pickle.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from deepepi.core.errors import ModelError, SpecError
from deepepi.core.io import save_npz
from deepepi.models.deepepi_cnn.spec import SPEC_KEY


VARIANCE_NAMES = ("moving_variance", "running_var")  # BatchNorm running variance: Keras, PyTorch
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_finite_weights(named: Mapping[str, Any], *, source: str | None = None) -> None:
    """Every float value finite in float32 and every BatchNorm variance >= 0, else ModelError naming the
    key and the value. The one check where weights enter (import, every loader, save): one NaN weight
    makes every later output NaN, and a negative variance makes BatchNorm take a square root of it."""
    for key, value in named.items():
        arr = np.asarray(value)
        if arr.dtype.kind != "f":
            continue
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(arr) <= _FLOAT32_MAX)  # NaN, +-inf, and float64 values float32 cannot hold
        if bad.any():
            flat = np.flatnonzero(bad.ravel())
            raise ModelError(f"weight {key!r}: {len(flat)} non-finite value(s), first {float(arr.ravel()[flat[0]])!r} "
                             f"at flat index {int(flat[0])}; expected finite float32 values", source=source)
        name = str(key).replace(".", "/").rsplit("/", 1)[-1]
        if name in VARIANCE_NAMES and (arr < 0).any():
            neg = np.flatnonzero(arr.ravel() < 0)
            raise ModelError(f"BatchNorm variance {key!r}: {len(neg)} negative value(s), first "
                             f"{float(arr.ravel()[neg[0]])!r} at index {int(neg[0])}; expected >= 0",
                             source=source)


def check_weights(weights: dict[str, np.ndarray], spec: Any, *, source: str | None = None) -> None:
    """Every key the spec needs is present with its shape, and nothing else, and every value passes
    check_finite_weights; else ModelError naming the key."""
    shapes = spec.weight_shapes()
    for key, shape in shapes.items():
        if key not in weights:
            raise ModelError(f"weights lack {key!r} (expected shape {shape})", source=source)
        got = tuple(np.shape(weights[key]))
        if got != shape:
            raise ModelError(f"weight {key!r}: got shape {got}, expected {shape}", source=source)
        if not np.issubdtype(np.asarray(weights[key]).dtype, np.floating):
            raise ModelError(f"weight {key!r}: got dtype {np.asarray(weights[key]).dtype}, expected float",
                             source=source)
    extra = sorted(set(weights) - set(shapes))
    if extra:
        raise ModelError(f"weights hold keys the spec does not know: {extra[:5]}", source=source)
    check_finite_weights(weights, source=source)


# Torch -> neutral (Keras) axis order of each kernel layout; the inverse permutation goes back.
TORCH_TO_NEUTRAL = {"conv1d": (2, 1, 0), "conv2d": (2, 3, 1, 0), "dense": (1, 0)}


def from_torch_layout(layout: str | None, arr: np.ndarray) -> np.ndarray:
    """A torch tensor's values in the neutral layout: conv1d (out, in, k) -> (k, in, out), conv2d
    (out, in, kh, kw) -> (kh, kw, in, out), dense (out, in) -> (in, out); None: as is. Transposes
    only, so transfers are bit-exact."""
    perm = TORCH_TO_NEUTRAL.get(layout) if layout else None
    return np.ascontiguousarray(arr if perm is None else arr.transpose(perm))


def to_torch_layout(layout: str | None, arr: np.ndarray) -> np.ndarray:
    """Inverse of from_torch_layout."""
    perm = TORCH_TO_NEUTRAL.get(layout) if layout else None
    return np.ascontiguousarray(arr if perm is None else arr.transpose(np.argsort(perm)))


def swap_torch_layout(kind: str, param: str, arr: np.ndarray) -> np.ndarray:
    """Torch <-> neutral (Keras) kernel layout: conv (out, in, k) <-> (k, in, out); dense (out, in) <-> (in, out).

    Both are pure transposes (their own inverse), so transfers are bit-exact.
    """
    return from_torch_layout(("conv1d" if kind == "conv" else "dense") if param == "kernel" else None, arr)


def save_weights(path: str | Path, weights: dict[str, np.ndarray], spec: Any) -> None:
    """Check the weights against the spec, then write them and the spec JSON atomically."""
    check_weights(weights, spec, source=str(path))
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    arrays[SPEC_KEY] = np.array(spec.to_json())
    save_npz(path, arrays)


def load_weights(path: str | Path) -> tuple[dict[str, np.ndarray], Any]:
    """Read a neutral weights file (np.load allow_pickle=False); the result is checked against its spec
    (whichever architecture the stored spec names)."""
    from deepepi.models.registry import spec_from_json

    path = Path(path)
    if not path.is_file():
        raise ModelError("weights file not found", source=str(path))
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive")
        with data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # EOFError: an empty file
        raise ModelError(f"not a readable .npz weights file ({exc})", source=str(path)) from None
    if SPEC_KEY not in arrays:
        raise ModelError(f"no {SPEC_KEY!r} entry: not a deepepi weights file", source=str(path))
    raw = arrays.pop(SPEC_KEY)
    if raw.shape != () or raw.dtype.kind != "U":
        raise ModelError(f"{SPEC_KEY!r} must be a 0-d string array, got {raw.dtype} {raw.shape}", source=str(path))
    try:
        spec = spec_from_json(str(raw[()]), source=str(path))
    except SpecError as err:
        raise ModelError(str(err)) from None
    check_weights(arrays, spec, source=str(path))
    return arrays, spec
