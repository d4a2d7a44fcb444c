"""How a model's input windows are cut: the windowing config that evaluate, predict and verify share.

``--config`` wins; else the run's config.json beside the first model (a run directory, .pt or
.keras); else the first model's own metadata (window, step, sample_freq and the run's
``validateDatapoints``), so a bare exported file cuts the windows its run was trained on. It lives
with the runtimes because it reads what a loaded model records about its input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepepi.core.config import Config, from_dict
from deepepi.core.errors import ConfigError, DeepEpiError, ModelError
from deepepi.data.windows import load_window_config

__all__ = ["Windowing", "windowing"]


@dataclass(frozen=True)
class Windowing:
    """The config that cuts the windows, where it came from, and whether it is a real config file
    (whose ``accSdThreshold`` is then the config's part of the Decision)."""

    cfg: Config
    source: str
    from_file: bool


def _validate_datapoints(meta: dict[str, str], where: str, error: type[DeepEpiError]) -> bool | None:
    """The recorded ``validate_datapoints`` ("true" / "false"), None when the file predates it."""
    from converters.contract import VALIDATE_KEY  # onnx is imported where a model is opened, not here

    raw = meta.get(VALIDATE_KEY)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise error(f"metadata {VALIDATE_KEY}: got {raw[:40]!r}, expected 'true' or 'false'", source=where)
    return raw == "true"


def windowing(runtimes: list[Any], config: str | Path | None, error: type[DeepEpiError] | None = None, *,
              default_without_metadata: bool = False) -> Windowing:
    """The windowing config of ``runtimes`` (which must share one window): ``--config``; else the run's
    config.json beside the first model (a run directory, .pt or .keras); else the first model's metadata
    (window, step, sample_freq and the run's ``validateDatapoints``; a file exported before that key was
    recorded cuts without it: give --config when its run used it). A model without step/sample_freq
    metadata is ``error``, or with ``default_without_metadata`` the default config (verify compares
    files of any origin). Errors are ConfigError (a config) and ModelError (a model), or all ``error``
    when given (verify's unusable-input error); each names its file."""
    config_error, model_error = error or ConfigError, error or ModelError
    windows = {int(rt.window) for rt in runtimes}
    if len(windows) > 1:
        raise model_error(f"the models take different windows ({', '.join(map(str, sorted(windows)))} samples); "
                         "models compared side by side must read the same windows")
    window = windows.pop()
    if config is not None:
        cfg = load_window_config(config, window, config_error)
        return Windowing(cfg, cfg.source, True)
    first = runtimes[0]
    beside = Path(first.path).parent / "config.json"
    if first.format in ("pytorch", "tensorflow", "keras") and beside.is_file():
        cfg = load_window_config(beside, window, config_error)
        return Windowing(cfg, f"{beside} (the run's config)", True)
    meta = first.metadata
    try:
        rate, step = int(meta["sample_freq"]), int(meta["step"])
    except (KeyError, ValueError):
        if default_without_metadata:
            return Windowing(load_window_config(None, window, config_error), "the default config (the model records no "
                             "windowing; pass --config)", False)
        raise model_error("metadata lacks step/sample_freq; pass --config", source=str(first.path)) from None
    if rate < 1 or window % rate:
        raise model_error(f"metadata sample_freq {rate} does not divide the window {window}; pass --config",
                         source=str(first.path))
    validate = _validate_datapoints(meta, str(first.path), model_error)
    processing: dict[str, Any] = {"step": step}
    if validate is not None:
        processing["validateDatapoints"] = validate
    where = f"{first.path} metadata"
    cfg = from_dict({"modelConfig": {"sampleFreq": rate, "bufferSeconds": window // rate},
                     "dataProcessing": processing}, source=where, warn=False)
    said = ("validateDatapoints not recorded: off" if validate is None
            else f"validateDatapoints {'true' if validate else 'false'}")
    return Windowing(cfg, f"{where} (window, step, {said})", False)
