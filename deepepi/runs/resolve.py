"""`deepepi export --onnx`: find a run's model, or build its twin in the other framework, and export it.

A run directory holds config.json, the native model (model.keras or model.pt) and weights.npz. The
native model is exported as-is; ``framework=<other>`` builds the other framework's model from
weights.npz, so one trained model yields a TensorFlow and a PyTorch ONNX file with identical weights.
Framework code is imported only when a model of that framework is loaded or built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from converters.contract import ExportResult, Source
from deepepi.core.config import _FRAMEWORK_ALIASES, Config, load_config
from deepepi.core.errors import ConfigError, ModelError
from deepepi.core.io import refuse_overwrite, sha256_file
from deepepi.core.preprocessing import from_config as preprocessing_from_config
from deepepi.core.quiet import captured_output
from deepepi.runs.layout import CONFIG as CONFIG_FILE
from deepepi.runs.layout import MODEL_FILES
from deepepi.runs.layout import WEIGHTS as WEIGHTS_FILE
from deepepi.runs.layout import THRESHOLD as THRESHOLD_FILE
from deepepi.runs.layout import read_threshold

SHORT_NAMES = {"tensorflow": "tf", "pytorch": "torch"}
_INSTALL_HINT = {"tensorflow": "tensorflow and tf2onnx (pip install 'deepepi[tf]')",
                 "pytorch": "torch and onnxscript (pip install 'deepepi[torch]')"}


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


def default_output(run: Run, framework: str) -> Path:
    """RUN/model.onnx for the native model, RUN/model.<tf|torch>.onnx for a twin."""
    if framework == run.framework:
        return run.directory / "model.onnx"
    return run.directory / f"model.{SHORT_NAMES[framework]}.onnx"


def source_for(file: Path, cfg: Config) -> Source:
    """Provenance recorded in the ONNX metadata: the file's name and sha256, how windows are cut, and
    the decision threshold the run directory records (if any)."""
    return Source(file=file.name, sha256=sha256_file(file), sample_freq=int(cfg.model["sampleFreq"]),
                  step=int(cfg.processing["step"]), preprocessing=preprocessing_from_config(cfg),
                  decision_threshold=read_threshold(file.parent))


def _framework_modules(framework: str) -> tuple[Any, Any]:
    """(model module, converter module) of a framework, or a one-line error naming what to install."""
    try:
        with captured_output():  # TensorFlow's start-up lines
            if framework == "tensorflow":
                from converters import keras_onnx
                from deepepi.models import keras_files, keras_weights
                return SimpleNamespace(load_keras_model=keras_files.load_keras_model,
                                       import_weights=keras_weights.import_weights), keras_onnx
            from converters import torch_onnx
            from deepepi.models import torch_checkpoint, torch_weights
            return SimpleNamespace(load_checkpoint=torch_checkpoint.load_checkpoint,
                                   import_weights=torch_weights.import_weights), torch_onnx
    except ImportError as exc:
        raise ModelError(f"exporting a {framework} model needs {_INSTALL_HINT[framework]}: "
                         f"{exc}") from None


def _load_native(run: Run, models: Any) -> tuple[Any, Any]:
    """(model, spec) from the run's native model file."""
    from deepepi.models.registry import spec_from_config

    if run.framework == "pytorch":
        model, spec, _ = models.load_checkpoint(run.model_file)
        return model, spec
    spec = spec_from_config(run.config)
    model = models.load_keras_model(run.model_file)
    window = model.input_shape[-1]
    if window != spec.window:
        raise ModelError(f"model input window {window} differs from config.json's {spec.window}",
                         source=str(run.model_file))
    return model, spec


def build_twin(weights_file: Path, framework: str) -> tuple[Any, Any]:
    """(model, spec) of ``framework`` built from a neutral weights file."""
    from deepepi.models import registry
    from deepepi.models.weights import load_weights

    models, _ = _framework_modules(framework)
    weights, spec = load_weights(weights_file)
    model = registry.build(spec, framework)
    if framework == "pytorch":
        model.eval()
    models.import_weights(model, spec, weights)
    return model, spec


def export_run(path: str | Path, *, out: str | Path | None = None, framework: str | None = None,
               seed: int = 0) -> ExportResult:
    """Export a run's native model, or (``framework`` = the other one) its twin from weights.npz."""
    run = resolve_run(path)
    target = framework_name(framework) if framework else run.framework
    if out is not None:
        refuse_overwrite(out, [run.model_file, run.weights_file, run.directory / CONFIG_FILE,
                               run.directory / THRESHOLD_FILE], option="--output")
    models, converter = _framework_modules(target)
    if target == run.framework:
        model, spec = _load_native(run, models)
        source = source_for(run.model_file, run.config)
    else:
        if not run.weights_file.is_file():
            raise ModelError(f"no {WEIGHTS_FILE} to build the {target} twin from", source=str(run.directory))
        model, spec = build_twin(run.weights_file, target)
        source = source_for(run.weights_file, run.config)
    if spec.window != run.config.window:
        raise ModelError(f"model window {spec.window} differs from config.json's {run.config.window}",
                         source=str(run.directory))
    return converter.export(model, spec, out or default_output(run, target), source, seed=seed)
