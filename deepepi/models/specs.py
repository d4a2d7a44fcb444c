"""One spec per architecture, chosen by name: from a config's modelClass, or from a stored spec's ``model``.

Framework-free. A stored spec without ``model`` is DeepEpi's (what every file written before the other
architectures holds). A modelClass that is an imported dotted path (``--allow-import``) gets the
DeepEpi ArchSpec, as before.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from deepepi.errors import SpecError
from deepepi.models.spec import ArchSpec
from deepepi.models.spec_amber import AmberSpec
from deepepi.models.spec_speccnn import SpecCnnSpec

if TYPE_CHECKING:
    from deepepi.config import Config

SPEC_TYPES: dict[str, Any] = {cls.model: cls for cls in (ArchSpec, SpecCnnSpec, AmberSpec)}


def model_name(cfg: Config) -> str:
    """The registry name of cfg's modelClass ('deepEpiCnn' for an imported dotted path)."""
    from deepepi.models import registry

    found = registry.lookup(cfg.model["modelClass"])
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
