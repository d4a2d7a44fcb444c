"""The one table of export formats: ``deepepi export --onnx/--tflite/--pte`` (``--quantize`` included).

Each entry names its exporters by "module:function" (imported only when used, so a framework is
imported only for its format; and this module imports none of its siblings, which all read the
table). An exporter takes ``(fmt, source, *, out, framework, quantize, calibration, seed)`` and
returns the lines the CLI prints. The app formats also name their converter module, the framework
whose model it converts, the runtime adapter that checks the file, the app's I/O convention and what
to install. Adding a format means one entry here and its exporter; the CLI never branches on it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters import app_meta
from converters.check import DeployResult
from deepepi.core.extras import require


@dataclass(frozen=True)
class AppFormat:
    """A deployment format of the phone app: its converter module, the framework it converts, its runtime."""

    framework: str
    converter: str  # module with convert(model, spec, preprocessing, *, quantize, calibration_g, check_g)
    runtime: str    # "module:Class" taking (content, sidecar, path=...)
    convention: app_meta.Convention
    extra: str      # the pip extras that install what it needs
    needs: str


@dataclass(frozen=True)
class Format:
    """One ``deepepi export`` option: its file suffix, exporters (float32, quantised) and app details."""

    suffix: str
    exporter: str            # "module:function" for a float32 export
    quantized_exporter: str  # "module:function" for --quantize
    takes_framework: bool    # --framework picks the model to export (the app formats pick their own)
    app: AppFormat | None = None


FORMATS = {
    "onnx": Format(".onnx", "deepepi.export.onnx_file:export_lines", "deepepi.export.onnx_quantized:export_lines",
                   takes_framework=True),
    "tflite": Format(".tflite", "deepepi.export.app_files:export_lines", "deepepi.export.app_files:export_lines",
                     takes_framework=False,
                     app=AppFormat("tensorflow", "converters.tflite", "deepepi.runtimes.tflite:TFLiteRuntime",
                                   app_meta.TFLITE, "tf,deploy", "tensorflow and ai-edge-litert")),
    "pte": Format(".pte", "deepepi.export.app_files:export_lines", "deepepi.export.app_files:export_lines",
                  takes_framework=False,
                  app=AppFormat("pytorch", "converters.pte", "deepepi.runtimes.pte:PteRuntime",
                                app_meta.PTE, "torch,deploy", "torch and executorch")),
}


def app_part(app: AppFormat, name: str) -> Any:
    """The app format's converter module or runtime class (``name``: a "module[:attr]" it names),
    or a one-line ModelError naming what to install."""
    return require(name, extra=app.extra, what="this export", needs=app.needs)


def deployment_lines(result: DeployResult, quantize: str | None) -> list[str]:
    """What `deepepi export` prints for a checked deployment file and its sidecar."""
    kind = quantize or "float32"
    check = (f"argmax agreement {result.agreement:.2%} on {result.windows} check windows, max abs diff "
             f"{result.max_abs_diff:.2e}" if quantize else f"self-check max abs diff {result.max_abs_diff:.2e}")
    lines = [f"wrote {result.path} ({kind}, {result.size_bytes} bytes, {check})"]
    if result.decision is not None:
        lines.append(f"  gate at the run's {result.decision.describe()}")
        lines += [f"  {row.name}: {row.detail}" for row in result.gate]
    if result.sidecar is not None:
        lines.append(f"wrote {result.sidecar} (app metadata)")
    return lines


def export(fmt: str, source: str | Path, *, out: str | Path | None = None, framework: str | None = None,
           quantize: str | None = None, calibration: str | Path | None = None, seed: int = 0) -> list[str]:
    """Export ``source`` to ``fmt`` through the table; the lines to print."""
    entry = FORMATS[fmt]
    module, _, function = (entry.quantized_exporter if quantize else entry.exporter).partition(":")
    exporter = getattr(importlib.import_module(module), function)
    return exporter(fmt, source, out=out, framework=framework, quantize=quantize, calibration=calibration,
                    seed=seed)
