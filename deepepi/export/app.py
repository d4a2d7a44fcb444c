"""`deepepi export --tflite/--pte` and `--quantize`: the files that reach the phone, checked first.

One table maps each app format to its converter module, the framework whose model it converts and
its runtime adapter. A run of the other framework is converted through its twin, built from
weights.npz; the self-check then compares the exported file with the run's *own* trained model
when that framework is installed, so an export that lost the trained weights (the reference's
PyTorch -> TFLite path did) cannot be written. Framework code is imported only per format.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converters import app_meta
from converters.contract import ExportInfo, Reference, metadata
from converters.check import QUANTIZED_MIN_AGREEMENT, DeployResult, finish, self_check_windows
from deepepi.core.errors import ModelError
from deepepi.core.quiet import captured_output
from deepepi.runs.resolve import Run, _framework_modules, _load_native, build_twin, resolve_run, source_for

CALIBRATION_WINDOWS = 256  # set int8's activation ranges
# Every quantised export is held to its argmax agreement on this many windows (validation windows
# first): on 256 windows, 99 % allows 2 flips, too few to tell 98.5 % from 99 %.
CHECK_WINDOWS = 2048


@dataclass(frozen=True)
class AppFormat:
    """A deployment format: its converter module, the framework it converts, its runtime."""

    suffix: str
    framework: str
    converter: str  # module with convert(model, spec, preprocessing, *, quantize, calibration_g)
    runtime: str    # "module:Class" taking (content, sidecar, path=...)
    convention: app_meta.Convention
    install: str


FORMATS = {
    "tflite": AppFormat(".tflite", "tensorflow", "converters.tflite", "deepepi.runtimes.tflite:TFLiteRuntime",
                        app_meta.TFLITE, "tensorflow and ai-edge-litert (pip install 'deepepi[tf,deploy]')"),
    "pte": AppFormat(".pte", "pytorch", "converters.pte", "deepepi.runtimes.pte:PteRuntime",
                     app_meta.PTE, "torch and executorch (pip install 'deepepi[torch,deploy]')"),
}


def _import(name: str, install: str) -> Any:
    module, _, attr = name.partition(":")
    try:
        with captured_output():  # TensorFlow's and torchao's start-up lines
            loaded = importlib.import_module(module)
    except ImportError as exc:
        raise ModelError(f"this export needs {install}: {exc}") from None
    return getattr(loaded, attr) if attr else loaded


def split_windows(run: Run, csv: str | Path | None) -> dict[str, np.ndarray]:
    """Raw milli-g windows of the run's "train" and "val" events (its config's split of ``csv``,
    default the built-in dataset)."""
    from deepepi.data.csvio import load_csv
    from deepepi.data.synth import default_dataset
    from deepepi.data.windows import windows_from_config
    from deepepi.data.dataset import prepare

    csv = Path(csv) if csv is not None else default_dataset()
    datasets = prepare(run.config, csv)
    windows = windows_from_config(load_csv(csv), run.config, raw=True)
    return {part: windows.X[np.isin(windows.event_id, np.unique(getattr(datasets, part).event_id))]
            for part in ("train", "val")}


def _draw(raw: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` of ``raw``'s windows, drawn with ``seed`` (kept in their order)."""
    pick = np.random.default_rng(seed).permutation(len(raw))[:n]
    return np.ascontiguousarray(raw[np.sort(pick)], dtype=np.float32)


def quantisation_windows(run: Run, csv: str | Path | None, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, check): CALIBRATION_WINDOWS training windows that calibrate int8, and the
    CHECK_WINDOWS windows every quantised export must agree on: the run's validation windows first,
    topped up with training windows when there are fewer. Validation windows first, because a model
    agrees with its int8 copy more often on windows it was trained on (a 20-epoch reference network:
    99.3 % on training windows, 98.9 % on others)."""
    raw = split_windows(run, csv)
    val = _draw(raw["val"], CHECK_WINDOWS, seed)
    top_up = _draw(raw["train"], CHECK_WINDOWS - len(val), seed + 1)
    return _draw(raw["train"], CALIBRATION_WINDOWS, seed), np.concatenate([val, top_up])


def _reference(run: Run, converted: Any, target: str) -> Reference:
    """What the export is held to: the run's own trained model when its framework is installed
    (for a twin, the model it was built from, not the twin), else the converted model itself."""
    from deepepi.core.preprocessing import from_config

    preprocessing = from_config(run.config)
    if target != run.framework:
        try:
            models, onnx_converter = _framework_modules(run.framework)
        except ModelError:
            pass
        else:
            return onnx_converter.native_reference(_load_native(run, models)[0], preprocessing)
    return _framework_modules(target)[1].native_reference(converted, preprocessing)


def default_output(run: Run, fmt: str, quantize: str | None) -> Path:
    """RUN/model.tflite, RUN/model.pte; RUN/model.<quantize>.tflite when quantised."""
    suffix = FORMATS[fmt].suffix
    return run.directory / (f"model.{quantize}{suffix}" if quantize else f"model{suffix}")


def export_app(path: str | Path, fmt: str, *, out: str | Path | None = None,
               quantize: str | None = None, calibration: str | Path | None = None,
               seed: int = 0, min_agreement: float = QUANTIZED_MIN_AGREEMENT) -> DeployResult:
    """Convert a run to ``fmt`` ("tflite" | "pte"), self-check it in its runtime, write it + sidecar.
    An ensemble ONNX file (``deepepi ensemble``) converts to float32 TFLite (deepepi.export.ensemble_tflite)."""
    from deepepi.export.ensemble_tflite import export_tflite, is_ensemble

    if is_ensemble(path):
        if fmt != "tflite" or quantize is not None:
            raise ModelError("an ensemble exports to float32 --tflite only (no --pte, no --quantize)",
                             source=str(path))
        return export_tflite(path, out=out, seed=seed)
    run = resolve_run(path)
    spec_fmt = FORMATS[fmt]
    converter = _import(spec_fmt.converter, spec_fmt.install)
    runtime_cls = _import(spec_fmt.runtime, spec_fmt.install)
    models, _ = _framework_modules(spec_fmt.framework)
    if spec_fmt.framework == run.framework:
        model, spec = _load_native(run, models)
        source = source_for(run.model_file, run.config)
    else:
        if not run.weights_file.is_file():
            raise ModelError("no weights.npz to build the twin from", source=str(run.directory))
        model, spec = build_twin(run.weights_file, spec_fmt.framework)
        source = source_for(run.weights_file, run.config)
    if spec.window != run.config.window:
        raise ModelError(f"model window {spec.window} differs from config.json's {run.config.window}",
                         source=str(run.directory))
    reference = _reference(run, model, spec_fmt.framework)
    calib, check = quantisation_windows(run, calibration, seed=seed) if quantize else (None, None)
    # The app formats take g and normalise in the graph, so calibration windows are only rescaled.
    scale = np.float32(source.preprocessing.scale)
    content = converter.convert(model, spec, source.preprocessing, quantize=quantize,
                                calibration_g=None if calib is None else calib * scale,
                                check_g=None if check is None else check * scale)
    info = ExportInfo(source, spec.window, spec.num_classes,
                      int(models.count_parameters(model).trainable), spec.to_json())
    sidecar = app_meta.build(spec_fmt.convention, metadata(info, converter.exporter_info(quantize)),
                             window=spec.window,
                             acc_sd_threshold_pct=run.config.processing.get("accSdThreshold"),
                             extra={"quantization": quantize} if quantize else None)
    out = Path(out) if out is not None else default_output(run, fmt, quantize)
    return finish(content, out, sidecar, lambda data, side, where: runtime_cls(data, side, path=where),
                  reference, check if quantize else self_check_windows(spec.window, seed),
                  quantized=quantize is not None, min_agreement=min_agreement)


def _in_memory_onnx(content: bytes, path: Path) -> Any:
    """An ONNX graph not yet written, in onnxruntime (CPU), for the self-check."""
    import onnx

    from converters.session import OnnxFile, open_session_bytes

    return OnnxFile(path, onnx.load_from_string(content), open_session_bytes(content, label=str(path)))


def export_onnx_quantized(path: str | Path, kind: str, *, out: str | Path | None = None,
                          framework: str | None = None, calibration: str | Path | None = None,
                          seed: int = 0, min_agreement: float = QUANTIZED_MIN_AGREEMENT
                          ) -> tuple[Any, DeployResult]:
    """Export the fp32 ONNX file as ``deepepi export --onnx`` does, then quantise it (``kind`` int8 |
    fp16) to ``out`` (default: beside it, model.<kind>.onnx), self-checked against the fp32 file."""
    import onnx

    from converters.quantize import quantize
    from deepepi.runs.resolve import export_run

    fp32 = export_run(path, framework=framework, seed=seed)
    run = resolve_run(path)
    calib, check = quantisation_windows(run, calibration, seed=seed)  # int8's calibration; every kind's check
    quantized = quantize(onnx.load(str(fp32.path)), kind, calib, check).SerializeToString()
    reference = _in_memory_onnx(fp32.path.read_bytes(), fp32.path).predict_proba
    target = Path(out) if out is not None else fp32.path.with_name(fp32.path.stem + f".{kind}.onnx")
    result = finish(quantized, target, None, lambda data, _side, where: _in_memory_onnx(data, where),
                    reference, check, quantized=True, min_agreement=min_agreement)
    return fp32, result
