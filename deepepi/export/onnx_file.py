"""`deepepi export --onnx`: a run's native model, or its twin in the other framework, as a contract ONNX file.

The native model is exported as-is; ``framework=<other>`` builds the other framework's model from
weights.npz (deepepi.runs.resolve.build_twin), so one trained model yields a TensorFlow and a PyTorch
ONNX file with identical weights. The framework's exporter (converters.keras_onnx / torch_onnx)
checks the graph through onnxruntime before it writes it.
"""

from __future__ import annotations

from pathlib import Path

from converters.contract import ExportResult
from deepepi.runs.layout import WEIGHTS as WEIGHTS_FILE
from deepepi.runs.resolve import SHORT_NAMES, Run, framework_modules, framework_name, model_for, resolve_run


def default_output(run: Run, framework: str) -> Path:
    """RUN/model.onnx for the native model, RUN/model.<tf|torch>.onnx for a twin."""
    if framework == run.framework:
        return run.directory / "model.onnx"
    return run.directory / f"model.{SHORT_NAMES[framework]}.onnx"


def export_run(path: str | Path, *, out: str | Path | None = None, framework: str | None = None,
               seed: int = 0) -> ExportResult:
    """Export a run's native model, or (``framework`` = the other one) its twin from weights.npz."""
    run = resolve_run(path)
    target = framework_name(framework) if framework else run.framework
    models, converter = framework_modules(target)
    model, spec, source = model_for(run, target, models, no_weights=f"no {WEIGHTS_FILE} to build the {target} twin from")
    return converter.export(model, spec, out or default_output(run, target), source, seed=seed)


def export_lines(fmt: str, source: str | Path, *, out: str | Path | None, framework: str | None,
                 quantize: str | None, calibration: str | Path | None, seed: int) -> list[str]:
    """The FORMATS entry for a float32 ``--onnx`` export: export, then the line to print."""
    result = export_run(source, out=out, framework=framework, seed=seed)
    meta = result.metadata
    return [f"wrote {result.path} ({meta['framework']} via {meta['exporter']}, "
            f"{meta['trainable_parameters']} trainable parameters, self-check max abs diff "
            f"{result.max_abs_diff:.2e})"]
