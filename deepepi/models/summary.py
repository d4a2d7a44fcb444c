"""Side-by-side layer tables of the Keras and PyTorch builds of one spec, so a mismatch is visible at once.

Each framework's table is measured from a real model (output shape from a forward pass or the Keras
graph, parameters from its own weights); a framework that is not installed is reported, not faked.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from deepepi.models.deepepi_cnn.spec import PRESETS, ArchSpec, ParamCounts

FRAMEWORK_MODULES = {"tensorflow": "tensorflow", "pytorch": "torch"}
TITLES = {"tensorflow": "Keras", "pytorch": "PyTorch"}


@dataclass(frozen=True)
class LayerRow:
    name: str
    output_shape: tuple[int | None, ...]
    params: int


@dataclass(frozen=True)
class FrameworkTable:
    rows: list[LayerRow]
    counts: ParamCounts


def framework_available(framework: str) -> bool:
    return importlib.util.find_spec(FRAMEWORK_MODULES[framework]) is not None


def keras_table(spec: Any) -> FrameworkTable:
    from deepepi.models import keras_weights, registry

    model = registry.build(spec, "tensorflow")
    rows = [LayerRow(layer.name, tuple(layer.output.shape), int(layer.count_params())) for layer in model.layers]
    return FrameworkTable(rows, keras_weights.count_parameters(model))


def torch_table(spec: Any) -> FrameworkTable:
    import torch

    from deepepi.models import registry, torch_weights

    model = registry.build(spec, "pytorch").eval()
    shapes: dict[str, tuple[int | None, ...]] = {"input": (None, spec.window)}
    hooks = [module.register_forward_hook(
        lambda _m, _i, out, name=name: shapes.__setitem__(name, (None, *out.shape[1:])))
        for name, module in model.named_children()]
    with torch.no_grad():
        model(torch.zeros(1, spec.window))
    for hook in hooks:
        hook.remove()
    rows = []
    for name in spec.layer_names():
        module = getattr(model, name, None)
        params = 0 if module is None else torch_weights.count_parameters(module).total
        rows.append(LayerRow(name, shapes[name], params))
    return FrameworkTable(rows, torch_weights.count_parameters(model))


def build_tables(spec: Any) -> dict[str, FrameworkTable | None]:
    """One table per framework, None where the framework is not installed."""
    makers = {"tensorflow": keras_table, "pytorch": torch_table}
    return {fw: makers[fw](spec) if framework_available(fw) else None for fw in makers}


def tables_match(spec: Any, tables: dict[str, FrameworkTable | None]) -> bool:
    """Every available table has the spec's layers, per-layer parameters and totals."""
    expected_layers = spec.layer_param_counts()
    for table in tables.values():
        if table is None:
            continue
        if {r.name: r.params for r in table.rows} != expected_layers or [r.name for r in table.rows] != spec.layer_names():
            return False
        if table.counts != spec.expected_counts():
            return False
    return True


def _value(v: object) -> str:
    return "[" + ", ".join(map(str, v)) + "]" if isinstance(v, tuple) else f"{v:g}" if isinstance(v, float) else str(v)


def architecture_lines(spec: ArchSpec) -> list[str]:
    """The preset the spec is (or the nearest one and how it differs) and every conv layer's output
    length, so two specs with equal parameter counts but different strides are told apart at a glance."""
    preset = spec.preset()
    if preset is not None:
        named = f"architecture preset: {preset.name} ({preset.description})"
    else:
        near = min(PRESETS.values(), key=lambda p: len(spec.differs_from(p)))
        diffs = ", ".join(f"{k} {_value(ours)} (preset: {_value(theirs)})"
                          for k, (ours, theirs) in spec.differs_from(near).items())
        named = f"architecture preset: none; nearest {near.name}, differing in {diffs}"
    return [named, f"strides {_value(spec.strides)}, BatchNorm epsilon {spec.bn_epsilon:g}, momentum "
                   f"{spec.bn_momentum:g} (Keras convention)",
            f"conv output lengths: {_value(tuple(spec.conv_lengths()))}"]


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def render(spec: Any, tables: dict[str, FrameworkTable | None]) -> str:
    """The text `deepepi model summary` prints: one column per installed framework, then the verdict."""
    present = {fw: t for fw, t in tables.items() if t is not None}
    by_name = {fw: {r.name: r for r in t.rows} for fw, t in present.items()}
    name_w = max(len(n) for n in spec.layer_names() + ["non-trainable"])
    shape_w, param_w = 20, 10
    header = f"{'layer':<{name_w}}" + "".join(f" | {TITLES[fw] + ' output shape':<{shape_w}}{'params':>{param_w}}"
                                                for fw in present)
    about = spec.summary_lines() + (architecture_lines(spec) if isinstance(spec, ArchSpec) else [])
    lines = [*about, header, "-" * len(header)]
    for name in spec.layer_names():
        cells = []
        for fw in present:
            row = by_name[fw].get(name)
            cells.append(f"{'(missing)':<{shape_w + param_w}}" if row is None
                         else f"{_shape(row.output_shape):<{shape_w}}{row.params:>{param_w},}")
        lines.append(f"{name:<{name_w}}" + "".join(f" | {c}" for c in cells))
    lines.append("-" * len(header))
    for label, attr in (("trainable", "trainable"), ("non-trainable", "non_trainable"), ("total", "total")):
        cells = [f"{getattr(t.counts, attr):>{shape_w + param_w},}" for t in present.values()]
        lines.append(f"{label:<{name_w}}" + "".join(f" | {c}" for c in cells))
    exp = spec.expected_counts()
    lines.append(f"expected from the spec: {exp.trainable:,} trainable, {exp.non_trainable:,} non-trainable "
                 f"(BatchNorm statistics), {exp.total:,} total")
    lines += [f"{TITLES[fw]} is not installed ({FRAMEWORK_MODULES[fw]} not importable); its table is not shown"
              for fw, t in tables.items() if t is None]
    if not present:
        lines.append("NOT COMPARED: neither TensorFlow nor PyTorch is installed")
    elif tables_match(spec, tables):
        peers = " and ".join(TITLES[fw] for fw in present)
        lines.append(f"MATCH: {peers} per-layer and total parameter counts equal the spec"
                     + (" and each other" if len(present) > 1 else ""))
    else:
        lines.append("MISMATCH: per-layer or total parameter counts differ from the spec or between frameworks")
    return "\n".join(lines)
