"""The DeepEpi architecture as one framework-free spec, so Keras and PyTorch build the same network.

Both builders, the weight transfer, the analytic parameter counts and the summary read this one
object; a spec that cannot give a working network is refused here with a one-line SpecError.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from deepepi.core.errors import SpecError
from deepepi.models.base import (BN_STATS, ParamCounts, SpecMethods, check_bn, check_int, check_rate, int_tuple,
                                 plain_int)

if TYPE_CHECKING:
    from deepepi.core.config import Config

DEFAULT_FILTERS: tuple[int, ...] = (16,) + (32,) * 11 + (64, 64)
DEFAULT_DENSE_WIDTHS: tuple[int, ...] = (64, 64, 32, 16)
PADDINGS = ("valid",)
SPEC_KEY = "__spec__"


def reference_strides(n_layers: int) -> tuple[int, ...]:
    """The reference code's rule: stride 2 where (i + 1) % 5 == 0, i.e. at conv layers 5, 10, 15, ..."""
    return tuple(2 if (i + 1) % 5 == 0 else 1 for i in range(n_layers))


# The reference code's pattern (what every reference-trained model needs) and the seed summary's,
# which adds stride 2 at layer 14: same parameter count, a different function (last conv 157 vs 79).
DEFAULT_STRIDES: tuple[int, ...] = reference_strides(14)
SEED_STRIDES: tuple[int, ...] = (1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 2)


# The reference's makeModel builds these 14 conv layers whatever modelConfig.nLayers says.
REFERENCE_CONV_LAYERS = len(DEFAULT_FILTERS)


def n_layers_notice(model: dict[str, Any], given: frozenset[str]) -> str | None:
    """One line when nLayers would build a network other than the reference's 14 conv layers, else None.

    deepepi builds what nLayers says (the first nLayers default filters and strides). A config that
    gives deepepi's own ``filters`` or ``strides`` has chosen its architecture and gets no notice; a
    reference config (which never has them) is told, because the reference trained 14 layers on it.
    """
    n_layers = int(model["nLayers"])
    if n_layers == REFERENCE_CONV_LAYERS or {"modelConfig.filters", "modelConfig.strides"} & given:
        return None
    return (f"nLayers={n_layers}: the reference's DeepEpi always builds {REFERENCE_CONV_LAYERS} conv layers "
            f"(its makeModel ignores nLayers); deepepi builds {n_layers} (set \"nLayers\": "
            f"{REFERENCE_CONV_LAYERS} to match)")


@dataclass(frozen=True)
class Preset:
    """A named architecture: the stride pattern and BatchNorm settings that change what a model computes
    (epsilon) or how it trains (momentum, Keras convention); filters and head are the DeepEpi defaults."""

    name: str
    strides: tuple[int, ...]
    bn_epsilon: float
    bn_momentum: float
    description: str

    def fields(self) -> dict[str, Any]:
        return {"strides": self.strides, "bn_epsilon": self.bn_epsilon, "bn_momentum": self.bn_momentum}


# The framework defaults of the reference code: Keras 1e-3 / 0.99, PyTorch 1e-5 / 0.1 (= 0.9 in Keras terms).
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("reference-tensorflow", DEFAULT_STRIDES, 1e-3, 0.99,
           "the reference Keras model: stride 2 at conv layers 5 and 10, BatchNorm epsilon 1e-3, momentum 0.99"),
    Preset("reference-pytorch", DEFAULT_STRIDES, 1e-5, 0.9,
           "the reference PyTorch model: stride 2 at conv layers 5 and 10, BatchNorm epsilon 1e-5, "
           "momentum 0.1 in PyTorch terms"),
    Preset("seed", SEED_STRIDES, 1e-3, 0.99,
           "the seed summary's pattern: stride 2 at conv layers 5, 10 and 14 (not what the reference builds)"),
)}
REFERENCE_PRESETS = {"tensorflow": PRESETS["reference-tensorflow"], "pytorch": PRESETS["reference-pytorch"]}

# Parameter names per weighted layer kind, in Keras `get_weights()` order.
CONV_PARAMS = ("kernel", "bias")
DENSE_PARAMS = ("kernel", "bias")
BN_TRAINABLE = ("gamma", "beta")
# BN_STATS (the moving statistics, non-trainable) comes from specbase.
BN_PARAMS = BN_TRAINABLE + BN_STATS
LAYER_PARAMS = {"conv": CONV_PARAMS, "dense": DENSE_PARAMS, "bn": BN_PARAMS}


@dataclass(frozen=True)
class Layer:
    """One named layer of the network; ``kind`` says which framework layer builds it."""

    name: str
    kind: str  # input | reshape | conv | bn | relu | dropout | gap | dense
    units: int = 0  # conv filters / dense width / bn features
    kernel_size: int = 0
    stride: int = 1
    in_units: int = 0
    rate: float = 0.0


@dataclass(frozen=True)
class ArchSpec(SpecMethods):
    """DeepEpi CNN: Conv1D->BN->ReLU blocks, global average pooling, Dense->BN->ReLU head, logits.

    The defaults are the reference Keras model (preset ``reference-tensorflow``).

    ``bn_momentum`` follows the Keras convention (weight of the running value); PyTorch gets
    ``torch_bn_momentum = 1 - bn_momentum``.
    """

    window: int = 750
    in_channels: int = 1
    filters: tuple[int, ...] = DEFAULT_FILTERS
    kernel_size: int = 5
    strides: tuple[int, ...] = DEFAULT_STRIDES
    padding: str = "valid"
    conv_dropout: float = 0.0
    dense_widths: tuple[int, ...] = DEFAULT_DENSE_WIDTHS
    dense_dropout: float = 0.025
    num_classes: int = 2
    bn_epsilon: float = 1e-3
    bn_momentum: float = 0.99
    _layers: tuple[Layer, ...] = field(default=(), init=False, repr=False, compare=False)
    model: ClassVar[str] = "deepEpiCnn"

    def __post_init__(self) -> None:
        for name in ("filters", "strides", "dense_widths"):
            object.__setattr__(self, name, int_tuple(name, getattr(self, name)))
        for name in ("window", "in_channels", "kernel_size", "num_classes"):
            object.__setattr__(self, name, plain_int(getattr(self, name)))
        self._validate()
        object.__setattr__(self, "_layers", self._build_layers())

    # ----- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Config) -> "ArchSpec":
        """Read cfg.window and modelConfig nLayers, filters, strides, kernelSize, denseWidths, numClasses,
        convDropout, denseDropout, bnEpsilon, bnMomentum (the config has filled in their defaults).

        Null strides, bnEpsilon and bnMomentum (a reference config has none of them) take the reference
        preset of the config's framework, so a reference config builds what the reference code builds.
        Null filters take the first ``nLayers`` defaults; given lists must have nLayers items. Null
        denseWidths means DEFAULT_DENSE_WIDTHS.
        """
        m = cfg.model
        preset = REFERENCE_PRESETS[cfg.framework]
        n_layers = int(m["nLayers"])
        given = m["filters"]
        if given is None and n_layers > len(DEFAULT_FILTERS):
            raise SpecError(f"modelConfig.nLayers={n_layers} exceeds the {len(DEFAULT_FILTERS)} default "
                            f"filters; give modelConfig.filters with {n_layers} items", source=cfg.source)
        lists = {"filters": DEFAULT_FILTERS[:n_layers] if given is None else tuple(given),
                 "strides": reference_strides(n_layers) if m["strides"] is None else tuple(m["strides"])}
        for key, value in lists.items():
            if len(value) != n_layers:
                raise SpecError(f"modelConfig.{key} has {len(value)} items but modelConfig.nLayers "
                                f"is {n_layers}; they must be equal", source=cfg.source)
        widths = m["denseWidths"]
        eps, momentum = m["bnEpsilon"], m["bnMomentum"]
        try:
            return cls(
                window=int(cfg.window), filters=lists["filters"], strides=lists["strides"],
                kernel_size=int(m["kernelSize"]),
                dense_widths=DEFAULT_DENSE_WIDTHS if widths is None else tuple(widths),
                num_classes=int(m["numClasses"]), conv_dropout=float(m["convDropout"]),
                dense_dropout=float(m["denseDropout"]),
                bn_epsilon=preset.bn_epsilon if eps is None else float(eps),
                bn_momentum=preset.bn_momentum if momentum is None else float(momentum),
            )
        except SpecError as err:
            raise SpecError(str(err), source=cfg.source) from None

    def preset(self) -> Preset | None:
        """The named preset this spec is (same strides, epsilon and momentum), or None."""
        return next((p for p in PRESETS.values() if not self.differs_from(p)), None)

    def differs_from(self, preset: Preset) -> dict[str, tuple[Any, Any]]:
        """{field: (ours, preset's)} for each preset field this spec does not share."""
        ours = {"strides": self.strides, "bn_epsilon": self.bn_epsilon, "bn_momentum": self.bn_momentum}
        return {k: (ours[k], v) for k, v in preset.fields().items() if ours[k] != v}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_layers")
        for key in ("filters", "strides", "dense_widths"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_json(cls, text: str, *, source: str | None = None) -> "ArchSpec":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON ({exc.msg})", source=source) from None
        return cls.from_dict(raw, source=source)

    # ----- validation ---------------------------------------------------------------------------
    def _validate(self) -> None:
        check_int("window", self.window)
        if self.in_channels != 1:
            raise SpecError(f"in_channels: got {self.in_channels!r}; only 1 (acceleration magnitude) is supported")
        check_int("kernel_size", self.kernel_size)
        if not self.filters:
            raise SpecError("filters: empty; at least one conv layer is needed")
        if len(self.filters) != len(self.strides):
            raise SpecError(f"filters has {len(self.filters)} items but strides has {len(self.strides)}; "
                            f"they must be equal")
        for i, v in enumerate(self.filters):
            check_int(f"filters[{i}]", v)
        for i, v in enumerate(self.strides):
            check_int(f"strides[{i}]", v)
        for i, v in enumerate(self.dense_widths):
            check_int(f"dense_widths[{i}]", v)
        check_int("num_classes", self.num_classes, 2)
        if self.padding not in PADDINGS:
            raise SpecError(f"padding: got {self.padding!r}, expected one of {', '.join(map(repr, PADDINGS))}")
        for name in ("conv_dropout", "dense_dropout"):
            check_rate(name, getattr(self, name))
        check_bn(self.bn_epsilon, self.bn_momentum, momentum_note=" (Keras convention)")
        lengths = self.conv_lengths()
        if lengths[-1] < 1:
            bad = next(i for i, n in enumerate(lengths) if n < 1)
            got = self.window if bad == 0 else lengths[bad - 1]
            raise SpecError(f"window {self.window} is too short: conv layer {bad + 1} (kernel {self.kernel_size}, "
                            f"stride {self.strides[bad]}) gets {got} samples; the window must be at least "
                            f"{self.min_window()} samples")

    # ----- derived facts ------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.filters)

    @property
    def torch_bn_momentum(self) -> float:
        return 1.0 - self.bn_momentum

    def conv_lengths(self) -> list[int]:
        """Output length of each conv layer ('valid' padding); values < 1 mean the spec cannot work."""
        lengths, n = [], self.window
        for s in self.strides:
            n = (n - self.kernel_size) // s + 1 if n >= self.kernel_size else 0
            lengths.append(n)
        return lengths

    def min_window(self) -> int:
        """Shortest window whose last conv layer still yields one sample (the receptive field)."""
        n = 1
        for s in reversed(self.strides):
            n = (n - 1) * s + self.kernel_size
        return n

    def layers(self) -> tuple[Layer, ...]:
        return self._layers

    def layer_names(self) -> list[str]:
        """Every layer's name in network order; both frameworks name their layers exactly so."""
        return [layer.name for layer in self._layers]

    def weighted_layers(self) -> list[Layer]:
        """The layers that hold weights (the kinds in LAYER_PARAMS), in network order."""
        return [layer for layer in self._layers if layer.kind in LAYER_PARAMS]

    def _build_layers(self) -> tuple[Layer, ...]:
        out = [Layer("input", "input", units=self.window), Layer("reshape", "reshape", units=self.in_channels)]
        prev = self.in_channels
        for i, (f, s) in enumerate(zip(self.filters, self.strides), start=1):
            out += [Layer(f"conv{i}", "conv", units=f, kernel_size=self.kernel_size, stride=s, in_units=prev),
                    Layer(f"conv{i}_bn", "bn", units=f), Layer(f"conv{i}_relu", "relu")]
            if self.conv_dropout > 0:
                out.append(Layer(f"conv{i}_dropout", "dropout", rate=self.conv_dropout))
            prev = f
        out.append(Layer("gap", "gap"))
        for i, w in enumerate(self.dense_widths, start=1):
            out += [Layer(f"dense{i}", "dense", units=w, in_units=prev),
                    Layer(f"dense{i}_bn", "bn", units=w), Layer(f"dense{i}_relu", "relu")]
            if i == 1 and self.dense_dropout > 0:
                out.append(Layer(f"dense{i}_dropout", "dropout", rate=self.dense_dropout))
            prev = w
        out.append(Layer("logits", "dense", units=self.num_classes, in_units=prev))
        return tuple(out)

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Neutral weight keys ``<layer>/<param>`` and their shapes in Keras layout, in network order."""
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in self._layers:
            if layer.kind == "conv":
                shapes[f"{layer.name}/kernel"] = (layer.kernel_size, layer.in_units, layer.units)
                shapes[f"{layer.name}/bias"] = (layer.units,)
            elif layer.kind == "dense":
                shapes[f"{layer.name}/kernel"] = (layer.in_units, layer.units)
                shapes[f"{layer.name}/bias"] = (layer.units,)
            elif layer.kind == "bn":
                for p in BN_PARAMS:
                    shapes[f"{layer.name}/{p}"] = (layer.units,)
        return shapes

    def summary_lines(self) -> list[str]:
        """The title line of `deepepi model summary` (the preset lines are added by the summary)."""
        return [f"DeepEpi CNN: window {self.window}, {self.n_layers} conv layers, dense {list(self.dense_widths)}, "
                f"{self.num_classes} classes"]
