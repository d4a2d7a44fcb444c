"""The start-of-training notices: where deepepi's default does what the reference did not, say so once.

A reference config (nnTraining2's nnConfig_deep*.json) keeps its meaning here except where deepepi
chose otherwise (docs/MIGRATING.md, rows marked CHOICE). For each such key that the config leaves to
deepepi's default (``Config.given`` tells a key the file sets from a default filled in), training
prints one line naming the key, the reference's behaviour, ours, and the setting that restores the
reference. A config that sets the key has chosen, and gets no notice. Reference defects fixed on
purpose (REF-BUG rows) get none: nothing restores them.

Only ``deepepi train`` (and what calls it on a fresh run) prints these, through the run log, so they
go to train.log and, unless quiet, the console; under torchrun only rank 0 writes the log. A resumed
run printed them when it started and does not repeat them.
"""

from __future__ import annotations

import math
from typing import Any

from deepepi.core.config import Config
from deepepi.models.deepepi_cnn.spec import ArchSpec, n_layers_notice
from deepepi.train.selection import reference_notice as selection_notice

PREFIX = "deepepi: note: "
# The reference PyTorch trainer's defaults for keys a config may leave out, where ours differ
# (deepepi's are one set for both frameworks): key, reference value, when the key matters.
_PYTORCH_DEFAULTS: tuple[tuple[str, Any, str], ...] = (
    ("useAdamW", True, "always"),
    ("weightDecay", 0.0, "adamw"),
    ("lrPeak", 1e-3, "schedule"),
    ("mainSteps", 45000, "schedule"),
)


def _json(value: Any) -> str:
    return "true" if value is True else "false" if value is False else repr(value)


def _pytorch_default_notices(model: dict[str, Any], given: frozenset[str]) -> list[str]:
    """useAdamW, weightDecay, lrPeak, mainSteps left out of a PyTorch config: the reference's defaults differ."""
    ref_adamw = model["useAdamW"] if "modelConfig.useAdamW" in given else True
    matters = {"always": True, "adamw": ref_adamw, "schedule": bool(model["useLrSchedule"])}
    out = []
    for key, ref, when in _PYTORCH_DEFAULTS:
        if f"modelConfig.{key}" in given or not matters[when] or model[key] == ref:
            continue
        out.append(f"{key} not set: the reference's PyTorch trainer uses {_json(ref)}; deepepi uses "
                   f"{_json(model[key])} (set \"{key}\": {_json(ref)} to match)")
    return out


def _step_mode_notice(model: dict[str, Any]) -> str | None:
    """PyTorch step mode: the reference never stops early; ours does after earlyStoppingPatience evaluations."""
    if not model["useLrSchedule"]:
        return None
    evaluations = math.ceil(int(model["totalTrainingSteps"]) / int(model["evalEverySteps"]))
    patience = int(model["earlyStoppingPatience"])
    if patience >= evaluations:
        return None
    return (f"earlyStoppingPatience={patience} in step mode: the reference's PyTorch trainer never stops early "
            f"when useLrSchedule is true; deepepi stops after {patience} evaluations without a lower val_loss "
            f"(set \"earlyStoppingPatience\": {evaluations} to match)")


def notices(cfg: Config, spec: Any, given: frozenset[str]) -> list[str]:
    """Every notice for this resolved ``cfg`` and its model ``spec``; ``given`` = the keys the file set."""
    model = cfg.model
    found = [selection_notice(model, cfg.framework, given)]
    if isinstance(spec, ArchSpec):  # DeepEpi; the reference's SpecCnn honours nLayers, AMBER ignores it here too
        found.append(n_layers_notice(model, given))
    if cfg.framework == "pytorch":
        found += _pytorch_default_notices(model, given)
        found.append(_step_mode_notice(model))
    return [PREFIX + line for line in found if line]


__all__ = ["PREFIX", "notices"]
