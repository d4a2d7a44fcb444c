"""Reference-trained (nnTraining2) DeepEpi files mapped onto an ArchSpec: neutral weights, checked layer by layer.

Framework-free. The framework modules only read a file into plain values (the Keras model's layers in
build order, or the PyTorch ``model_state_dict`` as numpy arrays); this module knows the reference's
layouts and checks every array and layer setting against the spec, naming the first layer that does
not fit, so a file that cannot be mapped never becomes a run directory.

Reference layouts (OpenSeizureDatabase user_tools/nnTraining2):
- Keras: Conv1D -> BatchNormalization -> ReLU [-> Dropout] per block, GlobalAveragePooling1D, then
  Dense -> BatchNormalization -> ReLU [-> Dropout after the first], last Dense with softmax. Layer names
  are Keras auto-names (``conv1d_3``, ...), offset when several models were built in one session, so
  layers are matched by position and kind, never by name.
- PyTorch: ``conv_stack`` (an nn.Sequential: Conv1d, BatchNorm1d, ReLU[, Dropout] per block, so conv
  k sits at index 3(k-1), or 4(k-1) with conv dropout), then ``fc1``/``bn1`` ... ``fc4``/``bn4``,
  ``fc_out`` (logits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepepi.core.errors import ModelError
from deepepi.models.deepepi_cnn.spec import LAYER_PARAMS, ArchSpec, Layer
from deepepi.models.weights import swap_torch_layout

# Keras class name -> our layer kind; layers that compute nothing at inference map to None.
KERAS_KINDS: dict[str, str | None] = {
    "Conv1D": "conv", "BatchNormalization": "bn", "ReLU": "relu", "GlobalAveragePooling1D": "gap",
    "Dense": "dense", "Dropout": None, "InputLayer": None, "Reshape": None, "Softmax": "softmax",
}
AUTO_NAMES = {"conv": ("Conv1D", "conv1d"), "bn": ("BatchNormalization", "batch_normalization"),
              "dense": ("Dense", "dense")}  # class and Keras auto-name base of each weighted kind
TORCH_BN_KEYS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
HEADS = ("softmax", "linear")  # what a file's last layer may end in: probabilities or logits


@dataclass(frozen=True)
class KerasLayer:
    """One layer of a loaded Keras file: its name, class, weights (Keras order) and the settings that matter."""

    name: str
    class_name: str
    weights: list[np.ndarray] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Mapped:
    """Neutral weights read from a reference file, and what was found there."""

    weights: dict[str, np.ndarray]
    layout: str  # e.g. "keras, softmax head" / "pytorch conv_stack without conv dropout"
    softmax_head: bool = False  # the file's model outputs probabilities, not logits


def _describe(layer: Layer) -> str:
    if layer.kind == "conv":
        return f"{layer.name} (Conv1D, {layer.units} filters, kernel {layer.kernel_size}, stride {layer.stride})"
    if layer.kind == "dense":
        return f"{layer.name} (Dense, {layer.units} units)"
    return f"{layer.name} ({layer.kind})"


def _keras_kind(layer: KerasLayer) -> str | None:
    """Our kind for a Keras layer, None for one that computes nothing at inference, 'unknown' otherwise."""
    if layer.class_name == "Activation":
        return {"relu": "relu", "softmax": "softmax", "linear": None}.get(layer.config.get("activation"), "unknown")
    return KERAS_KINDS.get(layer.class_name, "unknown")


def map_keras(layers: list[KerasLayer], spec: ArchSpec, *, source: str) -> Mapped:
    """Neutral weights from a reference Keras model's layers (build order); ModelError names the first misfit."""
    expected = [layer for layer in spec.layers() if layer.kind in ("conv", "bn", "relu", "gap", "dense")]
    found = []
    for layer in layers:
        kind = _keras_kind(layer)
        if kind == "unknown":
            raise ModelError(f"layer {layer.name!r}: {layer.class_name} is not part of the DeepEpi "
                             f"architecture", source=source)
        if kind is not None:
            found.append((kind, layer))
    _check_counts(expected, found, source)
    head = "linear"
    if found and found[-1][0] == "softmax":  # a separate Softmax layer after the last Dense
        head = "softmax"
        found.pop()
    weights: dict[str, np.ndarray] = {}
    for i, want in enumerate(expected):
        if i >= len(found):
            after = f" after {found[-1][1].name!r}" if found else ""
            raise ModelError(f"no layer for {_describe(want)}{after}: the file has fewer layers than the "
                             f"spec", source=source)
        kind, got = found[i]
        if kind != want.kind:
            raise ModelError(f"layer {got.name!r} is a {got.class_name} where the spec expects "
                             f"{_describe(want)}: a layer is missing or extra", source=source)
        _check_keras_settings(got, want, spec, last=i == len(expected) - 1, source=source)
        if want.kind == "dense" and i == len(expected) - 1:
            head = "softmax" if got.config.get("activation") == "softmax" else head
        if want.kind in LAYER_PARAMS:
            weights.update(_keras_weights(got, want, spec, source))
    if len(found) > len(expected):
        extra = found[len(expected)][1]
        raise ModelError(f"layer {extra.name!r} ({extra.class_name}) follows the spec's last layer: the file has "
                         f"more layers than the spec", source=source)
    return Mapped(weights, f"keras, {head} head", softmax_head=head == "softmax")


def _auto_index(name: str, base: str) -> int | None:
    if name == base:
        return 0
    m = re.fullmatch(rf"{base}_(\d+)", name)
    return int(m.group(1)) if m else None


def _check_counts(expected: list[Layer], found: list[tuple[str, KerasLayer]], source: str) -> None:
    """Per weighted kind, as many layers as the spec; else name the missing (or extra) layer, using the
    Keras auto-name sequence (conv1d, conv1d_1, ...) when the file follows it."""
    for kind, (cls, base) in AUTO_NAMES.items():
        got = [layer.name for k, layer in found if k == kind]
        want = [layer for layer in expected if layer.kind == kind]
        if len(got) == len(want):
            continue
        what = f"the file has {len(got)} {cls} layers, the spec {len(want)}"
        idx = [_auto_index(n, base) for n in got]
        if got and None not in idx:
            for i in range(min(len(got), len(want))):
                auto = base if idx[0] + i == 0 else f"{base}_{idx[0] + i}"
                if got[i] != auto:
                    if len(got) < len(want):
                        raise ModelError(f"no layer {auto!r} ({_describe(want[i])}): {what}", source=source)
                    raise ModelError(f"layer {got[i]!r} is extra (where {auto!r} was expected): {what}",
                                     source=source)
        if len(got) < len(want):
            after = f" after {got[-1]!r}" if got else ""
            raise ModelError(f"no layer for {_describe(want[len(got)])}{after}: {what}", source=source)
        raise ModelError(f"layer {got[len(want)]!r} is extra: {what}", source=source)


def _check_keras_settings(got: KerasLayer, want: Layer, spec: ArchSpec, *, last: bool, source: str) -> None:
    """The settings that change the function: stride, kernel, padding, epsilon, activations."""
    c = got.config
    problems = []
    if want.kind == "conv":
        stride, kernel = tuple(c.get("strides", ())), tuple(c.get("kernel_size", ()))
        if stride != (want.stride,):
            problems.append(f"stride {stride[0] if len(stride) == 1 else stride}, the spec has {want.stride}")
        if kernel != (want.kernel_size,):
            problems.append(f"kernel size {kernel[0] if len(kernel) == 1 else kernel}, the spec has "
                            f"{want.kernel_size}")
        if c.get("padding") != spec.padding:
            problems.append(f"padding {c.get('padding')!r}, the spec has {spec.padding!r}")
    if want.kind in ("conv", "dense"):
        allowed = HEADS if last else ("linear",)
        if c.get("activation", "linear") not in allowed:
            problems.append(f"activation {c.get('activation')!r}, expected {' or '.join(map(repr, allowed))}")
    if want.kind == "bn" and not np.isclose(float(c.get("epsilon", -1.0)), spec.bn_epsilon, rtol=1e-6, atol=0.0):
        problems.append(f"BatchNorm epsilon {c.get('epsilon')}, the spec has {spec.bn_epsilon:g} (set "
                        f"modelConfig.bnEpsilon)")
    if problems:
        raise ModelError(f"layer {got.name!r} ({want.name} of the spec): {'; '.join(problems)}", source=source)


def _keras_weights(got: KerasLayer, want: Layer, spec: ArchSpec, source: str) -> dict[str, np.ndarray]:
    params = LAYER_PARAMS[want.kind]
    shapes = spec.weight_shapes()
    if len(got.weights) != len(params):
        raise ModelError(f"layer {got.name!r} ({want.name} of the spec) holds {len(got.weights)} arrays, "
                         f"expected {len(params)} ({', '.join(params)})", source=source)
    out = {}
    for param, value in zip(params, got.weights):
        key = f"{want.name}/{param}"
        if tuple(value.shape) != shapes[key]:
            raise ModelError(f"layer {got.name!r} ({_describe(want)}): {param} has shape {tuple(value.shape)}, "
                             f"expected {shapes[key]}", source=source)
        out[key] = np.asarray(value, dtype=np.float32)
    return out


def torch_keys(spec: ArchSpec, *, conv_dropout: bool) -> dict[str, tuple[str, str]]:
    """Neutral key -> (reference state_dict key, layer kind), the reference PyTorch layout for ``spec``."""
    step = 4 if conv_dropout else 3
    names: dict[str, str] = {}
    for k in range(1, spec.n_layers + 1):
        names[f"conv{k}"] = f"conv_stack.{step * (k - 1)}"
        names[f"conv{k}_bn"] = f"conv_stack.{step * (k - 1) + 1}"
    for i in range(1, len(spec.dense_widths) + 1):
        names[f"dense{i}"], names[f"dense{i}_bn"] = f"fc{i}", f"bn{i}"
    names["logits"] = "fc_out"
    out = {}
    for layer in spec.weighted_layers():
        prefix = names[layer.name]
        for param in LAYER_PARAMS[layer.kind]:
            theirs = TORCH_BN_KEYS[param] if layer.kind == "bn" else ("weight" if param == "kernel" else "bias")
            out[f"{layer.name}/{param}"] = (f"{prefix}.{theirs}", layer.kind)
    return out


def _has_conv_dropout(state: dict[str, np.ndarray], spec: ArchSpec) -> bool:
    """Conv 2 sits at conv_stack.3 without conv dropout, at conv_stack.4 with it."""
    second = state.get("conv_stack.3.weight")
    if second is not None and second.ndim == 3:
        return False
    later = state.get("conv_stack.4.weight")
    return (later is not None and later.ndim == 3) or spec.conv_dropout > 0


def map_torch_state(state: dict[str, np.ndarray], spec: ArchSpec, *, source: str) -> Mapped:
    """Neutral weights from a reference ``model_state_dict``; ModelError names the first key that does not fit."""
    dropout = _has_conv_dropout(state, spec)
    keys = torch_keys(spec, conv_dropout=dropout)
    shapes = spec.weight_shapes()
    weights = {}
    for neutral, (theirs, kind) in keys.items():
        layer = neutral.split("/")[0]
        if theirs not in state:
            raise ModelError(f"{theirs!r} is missing: no weights for {layer} of the spec", source=source)
        value = swap_torch_layout(kind, neutral.split("/")[1], np.asarray(state[theirs], dtype=np.float32))
        if tuple(value.shape) != shapes[neutral]:
            torch_shape = tuple(np.shape(state[theirs]))
            want = swap_torch_layout(kind, neutral.split("/")[1], np.empty(shapes[neutral])).shape
            raise ModelError(f"{theirs!r} ({layer} of the spec) has shape {torch_shape}, expected {want}",
                             source=source)
        weights[neutral] = value
    known = {theirs for theirs, _ in keys.values()}
    extra = sorted(k for k in state if k not in known and not k.endswith("num_batches_tracked"))
    if extra:
        raise ModelError(f"{extra[0]!r} is not part of the reference layout for this spec"
                         + (f" (and {len(extra) - 1} more keys)" if len(extra) > 1 else ""), source=source)
    return Mapped(weights, f"pytorch conv_stack {'with' if dropout else 'without'} conv dropout")

