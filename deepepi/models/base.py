"""What every architecture spec shares: counts and weight groups derived from its ordered weight shapes.

A spec (DeepEpi's ArchSpec, SpecCnnSpec, AmberSpec) is a frozen, framework-free dataclass with a
class-level ``model`` name (the registry entry), ``window``, ``num_classes``, ``layer_names()`` and
``weight_shapes()`` (neutral keys ``<layer>/<param>`` in network order, Keras layout, each layer's
params in Keras ``get_weights()`` order). Everything below is derived from those, so the two
frameworks, the summary and the neutral weights file all read one source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import json
import math
import numbers
from typing import Any

import numpy as np

from deepepi.core.config import number_rule, require_number
from deepepi.core.errors import DataError, SpecError

BN_STATS = ("moving_mean", "moving_variance")


@dataclass(frozen=True)
class ParamCounts:
    """Trainable weights and non-trainable BatchNorm statistics (never torch's num_batches_tracked)."""

    trainable: int
    non_trainable: int
    total: int | None = None

    def __post_init__(self) -> None:
        expected = self.trainable + self.non_trainable
        if self.total is None:
            object.__setattr__(self, "total", expected)
        elif self.total != expected:
            raise ValueError(f"ParamCounts: total {self.total} != trainable + non_trainable ({expected})")

    def to_dict(self) -> dict[str, int]:
        return {"trainable": self.trainable, "non_trainable": self.non_trainable, "total": int(self.total)}


class SpecMethods:
    """Mixin for spec dataclasses: parameter counts and weight groups from ``weight_shapes()``."""

    model: str  # the registry name, a class attribute of each spec

    def layer_names(self) -> list[str]:  # pragma: no cover - every spec defines it
        raise NotImplementedError

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:  # pragma: no cover - every spec defines it
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every spec defines it
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: Any, *, source: str | None = None) -> Any:
        """Inverse of to_dict; unknown or missing keys are a SpecError (a spec is never guessed)."""
        fields = fields_from_dict(cls, d, source=source)
        try:
            return cls(**fields)
        except SpecError as err:
            raise SpecError(str(err), source=source) from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def weight_groups(self) -> list[tuple[str, list[str]]]:
        """(layer name, its params in Keras get_weights() order) for every layer holding weights."""
        groups: dict[str, list[str]] = {}
        for key in self.weight_shapes():
            layer, param = key.split("/", 1)
            groups.setdefault(layer, []).append(param)
        return list(groups.items())

    def layer_param_counts(self) -> dict[str, int]:
        """Parameters (trainable + BN statistics) per layer name, 0 for weightless layers."""
        counts = {name: 0 for name in self.layer_names()}
        for key, shape in self.weight_shapes().items():
            counts[key.split("/")[0]] += math.prod(shape)
        return counts

    def expected_counts(self) -> Any:
        """Parameter counts derived from the spec alone; both frameworks must report exactly these."""
        trainable = non_trainable = 0
        for key, shape in self.weight_shapes().items():
            if key.rsplit("/", 1)[1] in BN_STATS:
                non_trainable += math.prod(shape)
            else:
                trainable += math.prod(shape)
        return ParamCounts(trainable, non_trainable)


def tagged_dict(model: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A spec's JSON form: its fields plus ``model``, so a weights file or checkpoint names its architecture."""
    return {"model": model, **fields}


def fields_from_dict(cls: Any, d: Any, *, source: str | None) -> dict[str, Any]:
    """The dataclass fields of ``cls`` from a spec dict (``model`` must name ``cls``); unknown or
    missing keys are a SpecError, since a spec is never guessed."""
    if not isinstance(d, dict):
        raise SpecError(f"spec must be a JSON object, got {type(d).__name__}", source=source)
    d = dict(d)
    tag = d.pop("model", cls.model)
    if tag != cls.model:
        raise SpecError(f"spec: model {tag!r} is not {cls.model!r}", source=source)
    names = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    unknown = sorted(set(d) - set(names))
    missing = [n for n in names if n not in d]
    if unknown or missing:
        parts = ([f"unknown keys {unknown}"] if unknown else []) + ([f"missing keys {missing}"] if missing else [])
        raise SpecError("spec: " + "; ".join(parts), source=source)
    return {n: d[n] for n in names}


def plain_int(v: Any) -> Any:
    """numpy integers become Python ints (so the spec stays JSON-able); anything else is validated as given."""
    return int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v


def int_tuple(name: str, value: Any) -> tuple[Any, ...]:
    """A list field as a tuple of plain ints (each value is validated by the spec afterwards)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise SpecError(f"{name}: got {value!r}, expected a list of integers")
    return tuple(plain_int(v) for v in value)


# Spec fields are held to deepepi.core.config.number_rule, the one number rule, with SpecError.

def check_int(name: str, v: Any, lo: int = 1) -> None:
    """A Python int >= ``lo`` (no bool, no whole float)."""
    require_number(name, v, number_rule(lo, int_type=True), SpecError)


def check_rate(name: str, v: Any) -> None:
    """A finite number with 0 <= v < 1 (a dropout rate)."""
    require_number(name, v, number_rule(0, 1, hi_open=True, expected=f"a number with 0 <= {name} < 1"), SpecError)


def check_bn(eps: Any, momentum: Any, momentum_note: str = "") -> None:
    """BatchNorm epsilon > 0 and momentum in (0, 1); ``momentum_note`` is appended to the latter's message."""
    require_number("bn_epsilon", eps, number_rule(0, lo_open=True, expected="a number > 0"), SpecError)
    require_number("bn_momentum", momentum, number_rule(0, 1, lo_open=True, hi_open=True,
                   expected="a number with 0 < bn_momentum < 1" + momentum_note), SpecError)


def model_input(x_g: Any, window: int) -> np.ndarray:
    """Windows in g as contiguous float32 [n, window]; [n, window, 1] and [n, 1, window] (what the
    reference trainers feed) are flattened to it; any other shape is a DataError."""
    x = np.asarray(x_g)
    if x.ndim == 3 and x.shape[1:] in ((window, 1), (1, window)):
        x = x.reshape(len(x), window)
    if x.ndim != 2 or x.shape[1] != window:
        raise DataError(f"model input: got shape {x.shape}, expected [n, {window}] windows in g "
                        f"(or [n, {window}, 1], [n, 1, {window}])")
    return np.ascontiguousarray(x, dtype=np.float32)
