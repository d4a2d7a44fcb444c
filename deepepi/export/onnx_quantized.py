"""`deepepi export --onnx RUN --quantize int8|fp16`: the float32 ONNX file, then its quantised copy,
checked against it in onnxruntime before it is written: argmax agreement on the run's check windows,
and the quantised gate (``converters.check.quantized_gate``, the one ``verify --mode quantized`` runs)
at the run's Decision on its validation windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converters.check import QUANTIZED_MIN_AGREEMENT, DeployResult, finish
from converters.contract import ExportResult
from deepepi.export.formats import deployment_lines
from deepepi.export.onnx_file import export_run
from deepepi.export.windows import quantisation_windows
from deepepi.runs.resolve import resolve_run
from deepepi.runtimes.base import run_decision


def _in_memory_onnx(content: bytes, path: Path) -> Any:
    """An ONNX graph not yet written, in onnxruntime (CPU), for the self-check."""
    import onnx

    from converters.session import OnnxFile, open_session_bytes

    return OnnxFile(path, onnx.load_from_string(content), open_session_bytes(content, label=str(path)))


def export_onnx_quantized(path: str | Path, kind: str, *, out: str | Path | None = None,
                          framework: str | None = None, calibration: str | Path | None = None,
                          seed: int = 0, min_agreement: float = QUANTIZED_MIN_AGREEMENT
                          ) -> tuple[ExportResult, DeployResult]:
    """Export the fp32 ONNX file as ``deepepi export --onnx`` does, then quantise it (``kind`` int8 |
    fp16) to ``out`` (default: beside it, model.<kind>.onnx), self-checked against the fp32 file."""
    import onnx

    from converters.quantize import quantize

    fp32 = export_run(path, framework=framework, seed=seed)
    run = resolve_run(path)
    calib, check, labelled = quantisation_windows(run, calibration, seed=seed)  # calibration; check; gate
    quantized = quantize(onnx.load(str(fp32.path)), kind, calib, check).SerializeToString()
    reference = _in_memory_onnx(fp32.path.read_bytes(), fp32.path).predict_proba
    target = Path(out) if out is not None else fp32.path.with_name(fp32.path.stem + f".{kind}.onnx")
    result = finish(quantized, target, None, lambda data, _side, where: _in_memory_onnx(data, where),
                    reference, check, quantized=True, min_agreement=min_agreement, gate_data=labelled,
                    decision=run_decision(run.directory, run.config))
    return fp32, result


def export_lines(fmt: str, source: str | Path, *, out: str | Path | None, framework: str | None,
                 quantize: str, calibration: str | Path | None, seed: int) -> list[str]:
    """The FORMATS entry for ``--onnx --quantize``: both files, then the lines to print."""
    fp32, result = export_onnx_quantized(source, quantize, out=out, framework=framework,
                                         calibration=calibration, seed=seed)
    return [f"wrote {fp32.path} (float32, {fp32.path.stat().st_size} bytes, self-check max abs "
            f"diff {fp32.max_abs_diff:.2e})", *deployment_lines(result, quantize)]
