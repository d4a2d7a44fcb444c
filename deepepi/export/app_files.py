"""`deepepi export --tflite/--pte` (and `--quantize`): the files that reach the phone, checked first.

The format table (deepepi.export.formats) gives each app format's converter module, the framework
whose model it converts and its runtime adapter. A run of the other framework is converted through
its twin, built from weights.npz; the self-check then compares the exported file with the run's *own* trained model
when that framework is installed, so an export that lost the trained weights (the reference's
PyTorch -> TFLite path did) cannot be written. Framework code is imported only per format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from converters import app_meta
from converters.check import QUANTIZED_MIN_AGREEMENT, DeployResult, finish, self_check_windows
from converters.contract import ExportInfo, Reference, metadata
from deepepi.core.errors import ModelError
from deepepi.export.formats import FORMATS, app_part, deployment_lines
from deepepi.export.windows import quantisation_windows
from deepepi.runs.resolve import Run, framework_modules, load_native, model_for, resolve_run
from deepepi.runtimes.base import run_decision


def _reference(run: Run, converted: Any, target: str) -> Reference:
    """What the export is held to: the run's own trained model when its framework is installed
    (for a twin, the model it was built from, not the twin), else the converted model itself."""
    from deepepi.core.preprocessing import from_config

    preprocessing = from_config(run.config)
    if target != run.framework:
        try:
            models, onnx_converter = framework_modules(run.framework)
        except ModelError:
            pass
        else:
            return onnx_converter.native_reference(load_native(run, models)[0], preprocessing)
    return framework_modules(target)[1].native_reference(converted, preprocessing)


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
    spec_fmt = FORMATS[fmt].app
    converter = app_part(spec_fmt, spec_fmt.converter)
    runtime_cls = app_part(spec_fmt, spec_fmt.runtime)
    models, _ = framework_modules(spec_fmt.framework)
    model, spec, source = model_for(run, spec_fmt.framework, models,
                                    no_weights="no weights.npz to build the twin from")
    reference = _reference(run, model, spec_fmt.framework)
    calib, check, labelled = quantisation_windows(run, calibration, seed=seed) if quantize else (None, None, None)
    # The app formats take g and normalise in the graph, so calibration windows are only rescaled.
    scale = np.float32(source.preprocessing.scale)
    content = converter.convert(model, spec, source.preprocessing, quantize=quantize,
                                calibration_g=None if calib is None else calib * scale,
                                check_g=None if check is None else check * scale)
    info = ExportInfo(source, spec.window, spec.num_classes,
                      int(models.weights.count_parameters(model).trainable), spec.to_json())
    decision = run_decision(run.directory, run.config)
    sidecar = app_meta.build(spec_fmt.convention, metadata(info, converter.exporter_info(quantize)),
                             window=spec.window, acc_sd_threshold_pct=decision.acc_sd_threshold,
                             extra={"quantization": quantize} if quantize else None, decision=decision.to_dict())
    out = Path(out) if out is not None else default_output(run, fmt, quantize)
    return finish(content, out, sidecar, lambda data, side, where: runtime_cls(data, side, path=where),
                  reference, check if quantize else self_check_windows(spec.window, seed),
                  quantized=quantize is not None, min_agreement=min_agreement, gate_data=labelled,
                  decision=decision)


def export_lines(fmt: str, source: str | Path, *, out: str | Path | None, framework: str | None,
                 quantize: str | None, calibration: str | Path | None, seed: int) -> list[str]:
    """The FORMATS entry for ``--tflite`` / ``--pte`` (quantised or not): export, then the lines to print."""
    return deployment_lines(export_app(source, fmt, out=out, quantize=quantize, calibration=calibration,
                                       seed=seed), quantize)
