"""Model names in configs (modelConfig.modelClass) -> our builders, framework-free until a model is built.

The reference writes class paths such as ``user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel``;
those match on their last two dotted parts, so any package prefix works. Another architecture is
one more module that calls ``register(ModelEntry(...))`` when imported; DeepEpi registers below.
"""

from __future__ import annotations

import importlib
import json
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from deepepi.core.config import FRAMEWORKS
from deepepi.core.errors import ModelError, SpecError
from deepepi.models.amber.spec import AmberSpec
from deepepi.models.deepepi_cnn.spec import ArchSpec
from deepepi.models.speccnn.spec import SpecCnnSpec

if TYPE_CHECKING:
    from deepepi.core.config import Config


@dataclass(frozen=True)
class ModelEntry:
    """One architecture: its short name, builder per framework ("module:function"), reference class paths."""

    name: str
    builders: dict[str, str]
    reference_classes: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class ResolvedModel:
    """What a model name means for one framework; ``reference_framework`` differs when a class string
    written for the other framework was mapped to the same architecture there."""

    name: str
    framework: str
    build: Callable[..., Any]
    reference_framework: str | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add an architecture; a name or reference class path may only be claimed once."""
    bad = sorted(set(entry.builders) - set(FRAMEWORKS)) + sorted(set(entry.reference_classes) - set(FRAMEWORKS))
    if bad:
        raise ModelError(f"model {entry.name!r}: unknown framework(s) {bad}; expected {list(FRAMEWORKS)}")
    taken = {_suffix(c) for e in _REGISTRY.values() for c in e.reference_classes.values()}
    clash = [c for c in entry.reference_classes.values() if _suffix(c) in taken]
    if entry.name in _REGISTRY or clash:
        raise ModelError(f"model {entry.name!r} is already registered" + (f" (class {clash[0]})" if clash else ""))
    _REGISTRY[entry.name] = entry
    return entry


def known_models() -> list[ModelEntry]:
    return sorted(_REGISTRY.values(), key=lambda e: e.name)


def _suffix(dotted: str) -> str:
    return ".".join(dotted.split(".")[-2:])


def _lazy(target: str) -> Callable[..., Any]:
    """A callable that imports ``module:attr`` on first use (keeps frameworks out of `import deepepi`)."""
    module_name, attr = target.split(":")

    def build(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)

    build.__qualname__ = build.__name__ = attr
    return build


def _known_list() -> str:
    parts = []
    for e in known_models():
        refs = ", ".join(f"{c} ({fw})" for fw, c in sorted(e.reference_classes.items()))
        parts.append(e.name + (f" [{refs}]" if refs else ""))
    return "; ".join(parts)


def lookup(name: str) -> tuple[ModelEntry, str | None] | None:
    """(entry, the framework of the reference class it was named by, or None for a short name) for a
    known short name or reference class path; None for anything else. Imports nothing."""
    for entry in known_models():
        if name == entry.name:
            return entry, None
        matches = [fw for fw, c in entry.reference_classes.items() if "." in name and _suffix(c) == _suffix(name)]
        if matches:
            return entry, matches[0]
    return None


def build(spec: Any, framework: str) -> Any:
    """The native model of ``spec`` (any registered architecture) in ``framework``."""
    entry = _REGISTRY.get(spec.model)
    if entry is None or framework not in entry.builders:
        raise ModelError(f"model {spec.model!r} has no {framework} implementation")
    return _lazy(entry.builders[framework])(spec)


def resolve(name: str, framework: str, allow_import: bool = False) -> ResolvedModel:
    """Resolve a modelClass string for ``framework`` ('tensorflow' or 'pytorch').

    Short names and reference class paths map to our builder for the requested framework. A class
    path written for the other framework (e.g. ``...deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch``
    with framework 'tensorflow') resolves to the same architecture in the requested framework; the
    result then carries ``reference_framework`` and a UserWarning says so (never a silent change). Any other dotted
    path is imported only with ``allow_import=True`` and must be a callable taking an ArchSpec.
    """
    if framework not in FRAMEWORKS:
        raise ModelError(f"framework: got {framework!r}, expected one of {', '.join(map(repr, FRAMEWORKS))}")
    if not isinstance(name, str) or not name:
        raise ModelError(f"model name: got {name!r}, expected a non-empty string; known models: {_known_list()}")
    found = lookup(name)
    if found is not None:
        entry, reference_fw = found
        if framework not in entry.builders:
            raise ModelError(f"model {name!r} has no {framework} implementation "
                             f"(available: {', '.join(sorted(entry.builders))})")
        if reference_fw in (None, framework):
            return ResolvedModel(entry.name, framework, _lazy(entry.builders[framework]))
        warnings.warn(f"model {name!r} is the {reference_fw} reference class; building the same "
                      f"{entry.name} architecture in {framework}", UserWarning, stacklevel=2)
        return ResolvedModel(entry.name, framework, _lazy(entry.builders[framework]), reference_fw)
    if "." not in name:
        raise ModelError(f"unknown model {name!r}; known models: {_known_list()}")
    if not allow_import:
        raise ModelError(f"unknown model {name!r}; known models: {_known_list()}. Importing an arbitrary "
                         f"class path runs its code: opt in with allow_import=True (deepepi train --allow-import)")
    return ResolvedModel(name, framework, _checked(name, framework, _import_dotted(name)))


# The base class a built model must derive from, by (module prefix, class name): checked on the MRO's
# names so this module stays framework-free.
_MODEL_BASES = {"tensorflow": ("keras", "Model"), "pytorch": ("torch.nn", "Module")}


def _checked(name: str, framework: str, target: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an imported builder: its failure, or a result that is not a model of ``framework``, is
    a one-line ModelError instead of a traceback deep inside the trainer."""
    prefix, base = _MODEL_BASES[framework]

    def build(spec: Any) -> Any:
        try:
            model = target(spec)
        except Exception as exc:  # user code: any failure is reported, not re-raised
            raise ModelError(f"model {name!r} failed when called with the ArchSpec: "
                             f"{type(exc).__name__}: {exc}") from None
        if not any(c.__module__.startswith(prefix) and c.__name__ == base for c in type(model).__mro__):
            raise ModelError(f"model {name!r} returned a {type(model).__name__}, not a {framework} "
                             f"model ({prefix} {base})")
        return model

    build.__qualname__ = build.__name__ = getattr(target, "__name__", name)
    return build


def _import_dotted(name: str) -> Callable[..., Any]:
    module_name, _, attr = name.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:  # '.x' / '..x': relative names
        raise ModelError(f"cannot import model {name!r}: {exc}") from None
    if not callable(target):
        raise ModelError(f"model {name!r} is not callable; expected a class or function taking an ArchSpec")
    return target


register(ModelEntry(
    name="deepEpiCnn",
    builders={"tensorflow": "deepepi.models.deepepi_cnn.keras:build_keras_model",
              "pytorch": "deepepi.models.deepepi_cnn.torch:DeepEpiCnn"},
    reference_classes={"tensorflow": "user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel",
                       "pytorch": "user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch"},
    description="DeepEpi 1-D CNN (Spahr et al. 2025): conv blocks, global average pooling, dense head",
))
register(ModelEntry(
    name="specCnn",
    builders={"tensorflow": "deepepi.models.speccnn.keras:build_keras_model",
              "pytorch": "deepepi.models.speccnn.torch:SpecCnn"},
    reference_classes={"tensorflow": "user_tools.nnTraining2.specCnnModel.SpecCnnModel"},
    description="SpecCnn: in-graph spectrogram (framing + DFT magnitude) and a 2-D CNN (reference SpecCnnModel)",
))

register(ModelEntry(
    name="amber",
    builders={"tensorflow": "deepepi.models.amber.keras:build_keras_model",
              "pytorch": "deepepi.models.amber.torch:Amber"},
    reference_classes={"tensorflow": "user_tools.nnTraining2.amberModel.AmberModel"},
    description="AMBER (Pordoy): conv stack, BiLSTM, LSTM, attention, multi-head fusion (reference AmberModel)",
))


# One spec per architecture, chosen by name: from a config's modelClass, or from a stored spec's ``model``.
# A stored spec without ``model`` is DeepEpi's; an imported dotted modelClass (--allow-import) gets ArchSpec.
SPEC_TYPES: dict[str, Any] = {cls.model: cls for cls in (ArchSpec, SpecCnnSpec, AmberSpec)}


def model_name(cfg: Config) -> str:
    """The registry name of cfg's modelClass ('deepEpiCnn' for an imported dotted path)."""
    found = lookup(cfg.model["modelClass"])
    return found[0].name if found is not None else ArchSpec.model


def spec_from_config(cfg: Config) -> Any:
    """The spec of cfg's architecture (ArchSpec, SpecCnnSpec or AmberSpec). ``dims`` 2 (the reference
    SpecCnn config's value) is accepted for SpecCnn only: its spectrogram is built in the graph either way."""
    name = model_name(cfg)
    if int(cfg.model["dims"]) == 2 and name != SpecCnnSpec.model:
        raise SpecError(f"modelConfig.dims: got 2, but {name} reads 1-D windows; set 1 (2 is for specCnn)",
                        source=cfg.source)
    return SPEC_TYPES.get(name, ArchSpec).from_config(cfg)


def spec_from_dict(d: Any, *, source: str | None = None) -> Any:
    """Inverse of any spec's to_dict, dispatched on its ``model`` key (absent: DeepEpi)."""
    name = d.get("model", ArchSpec.model) if isinstance(d, dict) else ArchSpec.model
    if name not in SPEC_TYPES:
        raise SpecError(f"spec: unknown model {name!r}; known: {', '.join(sorted(SPEC_TYPES))}", source=source)
    return SPEC_TYPES[name].from_dict(d, source=source)


def spec_from_json(text: str, *, source: str | None = None) -> Any:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"spec is not valid JSON ({exc.msg})", source=source) from None
    return spec_from_dict(raw, source=source)
