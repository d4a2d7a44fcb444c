"""PyTorch checkpoints of any registered architecture: save, load (weights_only=True), and reading a
reference training checkpoint's state_dict.

Imported lazily (needs PyTorch). Loading rebuilds the model through the registry, so this module
sits above the architecture packages (none of them imports it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deepepi import __version__
from deepepi.core.errors import ModelError
from deepepi.core.io import atomic_path
from deepepi.models import registry
from deepepi.models.registry import spec_from_dict
from deepepi.models.weights import check_finite_weights

CHECKPOINT_KEYS = ("state_dict", "spec", "config", "deepepi_version")


def save_checkpoint(path: str | Path, model: nn.Module, spec: Any, config_dict: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> None:
    """Write {state_dict, spec, config, deepepi_version, **extra} atomically; loadable with weights_only."""
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(CHECKPOINT_KEYS))
    if clash:
        raise ModelError(f"checkpoint extra keys {clash} would overwrite reserved keys", source=str(path))
    payload = {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "spec": spec.to_dict(), "config": config_dict, "deepepi_version": __version__, **extra}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load_weights_only(path: Path) -> Any:
    """torch.load with weights_only=True (tensors and plain containers only, no code); else ModelError."""
    if not path.is_file():
        raise ModelError("checkpoint file not found", source=str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle/zip/runtime errors alike for unusable files
        raise ModelError(f"not a loadable weights-only PyTorch checkpoint ({type(exc).__name__})",
                         source=str(path)) from None


def load_checkpoint(path: str | Path) -> tuple[nn.Module, Any, dict[str, Any]]:
    """Load with torch.load(weights_only=True), rebuild the model (any registered architecture) from the
    stored spec, eval mode."""
    path = Path(path)
    payload = _load_weights_only(path)
    if not isinstance(payload, dict):
        raise ModelError(f"checkpoint holds a {type(payload).__name__}, expected a dict", source=str(path))
    missing = [k for k in CHECKPOINT_KEYS if k not in payload]
    if missing:
        raise ModelError(f"checkpoint lacks keys {missing}", source=str(path))
    spec = spec_from_dict(payload["spec"], source=str(path))
    model = registry.build(spec, "pytorch")
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, TypeError) as exc:  # TypeError: state_dict is not a dict
        first = str(exc).strip().splitlines()
        raise ModelError(f"state_dict does not match its spec: {' '.join(s.strip() for s in first[:3])}",
                         source=str(path)) from None
    check_finite_weights({k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()
                          if v.is_floating_point()}, source=str(path))
    model.eval()
    return model, spec, payload


def read_reference_state(path: str | Path) -> dict[str, np.ndarray]:
    """The ``model_state_dict`` of a reference training checkpoint (or a bare state_dict) as numpy arrays,
    loaded with weights_only=True; the reference's own classes are never imported."""
    path = Path(path)
    payload = _load_weights_only(path)
    if isinstance(payload, dict) and "model_state_dict" in payload:
        state = payload["model_state_dict"]
    elif isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        state = payload
    else:
        keys = sorted(map(str, payload))[:6] if isinstance(payload, dict) else type(payload).__name__
        raise ModelError(f"holds no 'model_state_dict' (found {keys}); expected a reference training "
                         f"checkpoint", source=str(path))
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)] if isinstance(state, dict) else ["?"]
    if bad:
        raise ModelError(f"model_state_dict entry {bad[0]!r} is not a tensor", source=str(path))
    return {str(k): v.detach().cpu().numpy() for k, v in state.items()}
