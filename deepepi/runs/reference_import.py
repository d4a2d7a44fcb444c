"""`deepepi import`: a reference-trained model file -> a normal deepepi run directory.

The file is a Keras ``.keras``/``.h5`` model (softmax head, auto-named layers) or a PyTorch training
checkpoint holding ``model_state_dict`` in the reference key layout. Its weights are mapped onto the
spec that the given reference config builds for the file's framework (models.reference checks every
layer), our native model is built from them, and the run directory gets ``config.json`` (the
architecture stated explicitly), ``weights.npz``, ``model.keras`` | ``model.pt`` and ``import.json``,
so export, verify, evaluate and predict work on it unchanged.

Loading is safe (Keras safe_mode, torch weights_only); the reference's classes are never imported.
Everything is checked before anything is written, and the directory appears whole (built under a
temporary name, then renamed: deepepi.core.atomic_dir) or not at all.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deepepi import __version__
from converters.contract import SELF_CHECK_ATOL  # the ONNX export's bound, for the imported model too
from deepepi.core import io
from deepepi.core.atomic_dir import atomic_directory
from deepepi.core.config import Config, load_config
from deepepi.core.errors import ModelError
from deepepi.models.frameworks import ModelParts, model_parts
from deepepi.models.reference import Mapped, map_keras, map_torch_state
from deepepi.models.deepepi_cnn.spec import ArchSpec
from deepepi.models.registry import model_name
from deepepi.models.weights import check_finite_weights, save_weights
from deepepi.core.preprocessing import from_config as preprocessing_from_config
from deepepi.runs.layout import CONFIG, MODEL_FILES, WEIGHTS

SUFFIXES = {".keras": "tensorflow", ".h5": "tensorflow", ".pt": "pytorch", ".pth": "pytorch"}
IMPORT_INFO = "import.json"
SELF_CHECK_WINDOWS = 64


@dataclass(frozen=True)
class ImportResult:
    run_dir: Path
    framework: str
    spec: ArchSpec
    layout: str
    self_check: float | None  # max abs difference to the file's own outputs (Keras files only)


def _framework_module(framework: str) -> ModelParts:
    return model_parts(framework, what=f"importing a {framework} model")


def _target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelError("already exists; import writes a new run directory, choose another -o",
                         source=str(out))


def _resolved_config(cfg: Config, framework: str, source: str) -> tuple[Config, ArchSpec]:
    """The config for the file's framework, with the architecture it builds written out explicitly."""
    if cfg.framework != framework:
        warnings.warn(f"{cfg.source}: modelConfig.framework is {cfg.framework!r} but {source} is a {framework} "
                      f"model; importing it as {framework}", UserWarning, stacklevel=3)
    cfg = cfg.with_overrides(framework=framework, modelType=framework)
    if model_name(cfg) != ArchSpec.model:
        raise ModelError(f"modelConfig.modelClass {cfg.model['modelClass']!r}: import reads reference DeepEpi "
                         f"files only", source=cfg.source)
    spec = ArchSpec.from_config(cfg)
    cfg = cfg.with_overrides(filters=list(spec.filters), strides=list(spec.strides),
                             denseWidths=list(spec.dense_widths), bnEpsilon=spec.bn_epsilon,
                             bnMomentum=spec.bn_momentum)
    return cfg, spec


def _self_check_inputs(cfg: Config, spec: ArchSpec) -> np.ndarray:
    from converters.contract import realistic_windows

    raw = realistic_windows(SELF_CHECK_WINDOWS, spec.window, seed=0, sample_freq=int(cfg.model["sampleFreq"]))
    return preprocessing_from_config(cfg).apply(raw)


def _from_keras(path: Path, cfg: Config, spec: ArchSpec) -> tuple[Mapped, Callable[[Path], None], float]:
    from converters.contract import softmax

    K = _framework_module("tensorflow")
    layers, input_shape, outputs = K.files.read_reference(path)
    if len(input_shape) < 2 or input_shape[1] not in (None, spec.window):
        raise ModelError(f"model input shape {input_shape} does not take {spec.window}-sample windows "
                         f"(modelConfig.sampleFreq x bufferSeconds)", source=str(path))
    mapped = map_keras(layers, spec, source=str(path))
    check_finite_weights(mapped.weights, source=str(path))
    model = K.deepepi.build_keras_model(spec)
    K.weights.import_weights(model, spec, mapped.weights)
    x = _self_check_inputs(cfg, spec)
    theirs = outputs(x) if mapped.softmax_head else softmax(outputs(x))
    diff = float(np.max(np.abs(K.predict.predict_proba(model, x) - theirs)))
    if not diff <= SELF_CHECK_ATOL:
        raise ModelError(f"the imported model differs from the file's own outputs by {diff:.2e} "
                         f"(limit {SELF_CHECK_ATOL:g}); nothing written", source=str(path))
    return mapped, lambda run: K.files.save_keras_model(run / MODEL_FILES["tensorflow"], model), diff


def _from_torch(path: Path, cfg: Config, spec: ArchSpec) -> tuple[Mapped, Callable[[Path], None], None]:
    T = _framework_module("pytorch")
    mapped = map_torch_state(T.files.read_reference_state(path), spec, source=str(path))
    check_finite_weights(mapped.weights, source=str(path))  # before the model is built from them
    model = T.deepepi.DeepEpiCnn(spec).eval()
    T.weights.import_weights(model, spec, mapped.weights)
    extra = {"imported_from": path.name}
    return mapped, lambda run: T.files.save_checkpoint(run / MODEL_FILES["pytorch"], model, spec, cfg.to_dict(),
                                                 extra=extra), None


def import_model(model_path: str | Path, config_path: str | Path, out: str | Path) -> ImportResult:
    """Import a reference-trained model into the new run directory ``out``; see the module docstring."""
    model_path, out = Path(model_path), Path(out)
    framework = SUFFIXES.get(model_path.suffix.lower())
    if framework is None:
        raise ModelError(f"expected a reference model file ({', '.join(SUFFIXES)})", source=str(model_path))
    if not model_path.is_file():
        raise ModelError("model file not found", source=str(model_path))
    _target(out)
    cfg, spec = _resolved_config(load_config(config_path), framework, str(model_path))
    reader = _from_keras if framework == "tensorflow" else _from_torch
    mapped, save_model, diff = reader(model_path, cfg, spec)
    preset = spec.preset()
    info = {"source_file": model_path.name, "source_sha256": io.sha256_file(model_path),
            "framework": framework, "layout": mapped.layout, "config": str(config_path),
            "preset": preset.name if preset else None, "self_check_max_abs_diff": diff,
            "deepepi_version": __version__}
    with atomic_directory(out) as tmp:  # ``out`` was checked absent or empty above
        io.write_json(tmp / CONFIG, cfg.to_dict())
        save_weights(tmp / WEIGHTS, mapped.weights, spec)
        save_model(tmp)
        io.write_json(tmp / IMPORT_INFO, info)
    return ImportResult(out, framework, spec, mapped.layout, diff)
