"""A run directory resolved: its config, native model, provenance, and its twin in the other framework.

A run directory holds config.json, the native model (model.keras or model.pt) and weights.npz. The
native model is loaded as-is; ``build_twin`` builds the other framework's model from weights.npz, so
one trained model yields a TensorFlow and a PyTorch model with identical weights (deepepi.export
turns either into a file). Framework code is imported only when a model of that framework is loaded
or built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters.contract import Source
from deepepi.core.config import _FRAMEWORK_ALIASES, Config, load_config
from deepepi.core.errors import ConfigError, ModelError
from deepepi.core.extras import EXTRAS, require
from deepepi.models.frameworks import model_parts
from deepepi.core.io import sha256_file
from deepepi.core.preprocessing import from_config as preprocessing_from_config
from deepepi.runs.layout import CONFIG as CONFIG_FILE
from deepepi.runs.layout import MODEL_FILES
from deepepi.runs.layout import WEIGHTS as WEIGHTS_FILE
from deepepi.runs.layout import read_threshold, threshold_rule_json

SHORT_NAMES = {"tensorflow": "tf", "pytorch": "torch"}
CONVERTERS = {"tensorflow": "converters.keras_onnx", "pytorch": "converters.torch_onnx"}
_NEEDS = {"tensorflow": "tensorflow and tf2onnx", "pytorch": "torch and onnxscript"}


@dataclass(frozen=True)
class Run:
    """A run directory resolved: its config, the native framework and model file."""

    directory: Path
    config: Config
    framework: str
    model_file: Path

    @property
    def weights_file(self) -> Path:
        return self.directory / WEIGHTS_FILE


def framework_name(name: str) -> str:
    """Canonical framework name from 'tensorflow'/'tf'/'keras' or 'pytorch'/'torch'."""
    try:
        return _FRAMEWORK_ALIASES[name.lower()]
    except KeyError:
        raise ConfigError(f"--framework: got {name!r}, expected tensorflow or pytorch") from None


def resolve_run(path: str | Path) -> Run:
    """A run directory, or a model.keras / model.pt file whose directory holds config.json."""
    path = Path(path)
    if path.is_file():
        by_suffix = {Path(name).suffix: fw for fw, name in MODEL_FILES.items()}
        framework = by_suffix.get(path.suffix)
        if framework is None:
            raise ModelError("expected a run directory, a .keras or a .pt model file", source=str(path))
        directory, model_file = path.parent, path
        config = _config(directory)
    elif path.is_dir():
        directory = path
        found = [fw for fw, name in MODEL_FILES.items() if (path / name).is_file()]
        if not found:
            raise ModelError(f"run directory holds neither {' nor '.join(MODEL_FILES.values())}",
                             source=str(path))
        config = _config(directory)
        framework = config.framework if config.framework in found else found[0]
        model_file = directory / MODEL_FILES[framework]
    else:
        raise ModelError("no such run directory or model file", source=str(path))
    return Run(directory, config, framework, model_file)


def _config(directory: Path) -> Config:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelError(f"no {CONFIG_FILE} beside the model (needed for window, step and "
                         f"preprocessing)", source=str(directory))
    return load_config(path)


def source_for(file: Path, cfg: Config) -> Source:
    """Provenance recorded in the ONNX metadata: the file's name and sha256, how windows are cut (step,
    ``validateDatapoints``), the decision threshold the run directory records (if any) and the config's
    movement gate and WarnTime/AlarmTime."""
    return Source(file=file.name, sha256=sha256_file(file), sample_freq=int(cfg.model["sampleFreq"]),
                  step=int(cfg.processing["step"]), preprocessing=preprocessing_from_config(cfg),
                  decision_threshold=read_threshold(file.parent),
                  decision_rule=threshold_rule_json(file.parent),
                  acc_sd_threshold_pct=float(cfg.processing["accSdThreshold"]),
                  warn_time_s=float(cfg.processing["warnTime"]), alarm_time_s=float(cfg.processing["alarmTime"]),
                  validate_datapoints=bool(cfg.processing["validateDatapoints"]))


def framework_modules(framework: str) -> tuple[Any, Any]:
    """(model module, ONNX converter module) of a framework, or a one-line error naming what to install."""
    what, extra = f"exporting a {framework} model", EXTRAS[framework]
    converter = require(CONVERTERS[framework], extra=extra, what=what, needs=_NEEDS[framework])
    return model_parts(framework, what=what, needs=_NEEDS[framework]), converter


def load_native(run: Run, models: Any) -> tuple[Any, Any]:
    """(model, spec) from the run's native model file."""
    from deepepi.models.registry import spec_from_config

    if run.framework == "pytorch":
        model, spec, _ = models.files.load_checkpoint(run.model_file)
        return model, spec
    spec = spec_from_config(run.config)
    model = models.files.load_keras_model(run.model_file)
    window = model.input_shape[-1]
    if window != spec.window:
        raise ModelError(f"model input window {window} differs from config.json's {spec.window}",
                         source=str(run.model_file))
    return model, spec


def build_twin(weights_file: Path, framework: str) -> tuple[Any, Any]:
    """(model, spec) of ``framework`` built from a neutral weights file."""
    from deepepi.models import registry
    from deepepi.models.weights import load_weights

    models, _ = framework_modules(framework)
    weights, spec = load_weights(weights_file)
    model = registry.build(spec, framework)
    if framework == "pytorch":
        model.eval()
    models.weights.import_weights(model, spec, weights)
    return model, spec


def model_for(run: Run, framework: str, models: Any, *, no_weights: str) -> tuple[Any, Any, Source]:
    """(model, spec, provenance) of ``run`` in ``framework``: its native model, or the twin built from
    weights.npz (``no_weights``: the refusal when there is none), checked against config.json's window."""
    if framework == run.framework:
        model, spec = load_native(run, models)
        source = source_for(run.model_file, run.config)
    else:
        if not run.weights_file.is_file():
            raise ModelError(no_weights, source=str(run.directory))
        model, spec = build_twin(run.weights_file, framework)
        source = source_for(run.weights_file, run.config)
    if spec.window != run.config.window:
        raise ModelError(f"model window {spec.window} differs from config.json's {run.config.window}",
                         source=str(run.directory))
    return model, spec, source

