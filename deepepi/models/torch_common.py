"""DeepEpi in PyTorch, built from an ArchSpec: module, counts, neutral weights, checkpoints, inference.

Imported lazily (only by code that needs PyTorch). Submodules carry the spec's layer names, so
state_dict keys, the summary table and the neutral weight keys all line up with the Keras model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from deepepi import __version__
from deepepi.core.errors import ModelError
from deepepi.core.io import atomic_path
from deepepi.models import registry
from deepepi.models.quantile import harrell_davis
from deepepi.models.deepepi_cnn.spec import ArchSpec, Layer, ParamCounts, model_input
from deepepi.models.registry import spec_from_dict
from deepepi.models.weights import check_weights, from_torch_layout, to_torch_layout

CHECKPOINT_KEYS = ("state_dict", "spec", "config", "deepepi_version")


class _GlobalAveragePool(nn.Module):
    """Mean over time: [B, C, L] -> [B, C], as Keras GlobalAveragePooling1D does on [B, L, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-1)


class _ToChannels(nn.Module):
    """[B, window], [B, 1, window] or [B, window, 1] -> [B, 1, window], the inputs the reference model takes."""

    def __init__(self, window: int) -> None:
        super().__init__()
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.window
        if x.dim() == 2 and x.shape[1] == w:
            return x.unsqueeze(1)
        if x.dim() == 3 and x.shape[1] == 1 and x.shape[2] == w:
            return x
        if x.dim() == 3 and x.shape[1] == w and x.shape[2] == 1:
            return x.transpose(1, 2)
        raise ValueError(f"DeepEpiCnn input: got shape {tuple(x.shape)}, expected [B, {w}], [B, 1, {w}] "
                         f"or [B, {w}, 1]")


class _KerasRunningStats:
    """BatchNorm whose running variance follows Keras: the *biased* batch variance.

    nn.BatchNorm updates running_var with the unbiased variance (n / (n - 1)), Keras with the biased
    one; for the dense head (n = batch size) that is 1.6 % at batch 64, so the two frameworks' moving
    statistics drifted apart from the first step. Normalisation itself (biased variance in both) and
    eval mode are torch's; the state_dict is identical. The batch statistics come out of the same
    kernel that normalises (into scratch buffers, momentum 1), not from a second pass over the
    activations: that pass cost 15 % of a CPU training step.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.track_running_stats):
            return super().forward(x)  # type: ignore[misc]
        mean, unbiased = torch.zeros_like(self.running_mean), torch.zeros_like(self.running_var)
        out = F.batch_norm(x, mean, unbiased, self.weight, self.bias, True, 1.0, self.eps)
        with torch.no_grad():
            n = x.numel() // x.shape[1]  # values per channel
            self.num_batches_tracked.add_(1)
            # momentum None: cumulative average, as nn.BatchNorm does
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.lerp_(mean, factor)  # running += factor * (batch - running)
            self.running_var.lerp_(unbiased * ((n - 1) / n), factor)
        return out


class KerasBatchNorm1d(_KerasRunningStats, nn.BatchNorm1d):
    """nn.BatchNorm1d with Keras's running-variance rule ([B, C] or [B, C, L])."""


class KerasBatchNorm2d(_KerasRunningStats, nn.BatchNorm2d):
    """nn.BatchNorm2d with Keras's running-variance rule ([B, C, H, W])."""


def bn_tensors(module: nn.Module, prefix: str) -> dict[str, tuple[torch.Tensor, str | None]]:
    """A BatchNorm module's tensors under their neutral keys."""
    return {f"{prefix}/gamma": (module.weight, None), f"{prefix}/beta": (module.bias, None),
            f"{prefix}/moving_mean": (module.running_mean, None),
            f"{prefix}/moving_variance": (module.running_var, None)}


def _make_layer(layer: Layer, spec: ArchSpec) -> nn.Module | None:
    if layer.kind == "conv":
        return nn.Conv1d(layer.in_units, layer.units, layer.kernel_size, stride=layer.stride, padding=0)
    if layer.kind == "bn":
        return KerasBatchNorm1d(layer.units, eps=spec.bn_epsilon, momentum=spec.torch_bn_momentum)
    if layer.kind == "relu":
        return nn.ReLU()
    if layer.kind == "dropout":
        return nn.Dropout(layer.rate)
    if layer.kind == "gap":
        return _GlobalAveragePool()
    if layer.kind == "dense":
        return nn.Linear(layer.in_units, layer.units)
    if layer.kind == "reshape":
        return _ToChannels(spec.window)
    return None  # "input": nothing to compute


class DeepEpiCnn(nn.Module):
    """forward(x float32 [B, window] in g; also [B, 1, window] or [B, window, 1]) -> logits [B, num_classes];
    softmax is the caller's job."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self._order: list[str] = []
        for layer in spec.layers():
            module = _make_layer(layer, spec)
            if module is not None:
                self.add_module(layer.name, module)
                self._order.append(layer.name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._order:
            x = getattr(self, name)(x)
        return x

    def neutral_tensors(self) -> dict[str, tuple[torch.Tensor, str | None]]:
        """{neutral key: (tensor, torch kernel layout)} for every weight of the spec."""
        return _named_layer_tensors(self, self.spec)


def _named_layer_tensors(model: nn.Module, spec: ArchSpec) -> dict[str, tuple[torch.Tensor, str | None]]:
    """DeepEpi's weights found by layer name: DeepEpiCnn's, and those of a user class built with the
    spec's layer names (``--allow-import``), which has no ``neutral_tensors`` of its own."""
    out: dict[str, tuple[torch.Tensor, str | None]] = {}
    for layer in spec.weighted_layers():
        m = getattr(model, layer.name)
        if layer.kind == "bn":
            out.update(bn_tensors(m, layer.name))
        else:
            out[f"{layer.name}/kernel"] = (m.weight, "conv1d" if layer.kind == "conv" else "dense")
            out[f"{layer.name}/bias"] = (m.bias, None)
    return out


def _neutral_tensors(model: nn.Module, spec: Any) -> dict[str, tuple[torch.Tensor, str | None]]:
    return model.neutral_tensors() if hasattr(model, "neutral_tensors") else _named_layer_tensors(model, spec)


def count_parameters(model: nn.Module) -> ParamCounts:
    """Trainable parameters and BatchNorm running statistics (num_batches_tracked is not a weight)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    return ParamCounts(trainable, frozen + stats)


def export_weights(model: nn.Module, spec: Any) -> dict[str, np.ndarray]:
    """Neutral weights (Keras layout, float32) keyed ``<layer>/<param>``, for any spec's model."""
    tensors = _neutral_tensors(model, spec)
    out: dict[str, np.ndarray] = {}
    for key in spec.weight_shapes():
        tensor, layout = tensors[key]
        out[key] = from_torch_layout(layout, tensor.detach().cpu().numpy().astype(np.float32, copy=False))
    return out


def import_weights(model: nn.Module, spec: Any, weights: dict[str, np.ndarray]) -> None:
    """Copy neutral weights into ``model`` after checking every key and shape (ModelError names the key)."""
    check_weights(weights, spec)
    tensors = _neutral_tensors(model, spec)
    with torch.no_grad():
        for key in spec.weight_shapes():
            tensor, layout = tensors[key]
            arr = to_torch_layout(layout, np.asarray(weights[key], dtype=np.float32))
            if tuple(arr.shape) != tuple(tensor.shape):
                raise ModelError(f"weight {key!r}: shape {tuple(arr.shape)} does not fit the model's "
                                 f"{tuple(tensor.shape)}")
            tensor.copy_(torch.from_numpy(arr))


def predict_proba(model: nn.Module, x_g: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities float32 [n, num_classes] for windows in g, in eval mode, without grads."""
    x = model_input(x_g, model.spec.window)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                xb = torch.from_numpy(x[start:start + batch_size]).to(device)
                outs.append(torch.softmax(model(xb), dim=-1).cpu().numpy())
    finally:
        model.train(was_training)
    if not outs:
        return np.zeros((0, model.spec.num_classes), dtype=np.float32)
    return np.concatenate(outs).astype(np.float32, copy=False)


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


class DeepEpiCnnModelPyTorch:
    """The reference's class name: a thin wrapper holding a spec and its DeepEpiCnn."""

    harrell_davis = staticmethod(harrell_davis)

    def __init__(self, spec: ArchSpec, model: DeepEpiCnn | None = None) -> None:
        self.spec = spec
        self.model = model if model is not None else DeepEpiCnn(spec)

    def predict_proba(self, x_g: np.ndarray, batch_size: int = 512) -> np.ndarray:
        return predict_proba(self.model, x_g, batch_size=batch_size)
