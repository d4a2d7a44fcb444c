"""`deepepi ensemble`: find each member's ONNX graph (exporting a run when needed) and build one graph.

A member is an ONNX file of ours, or a run directory (or its model.keras / model.pt): the run's
RUN/model.onnx is used when it was exported from the run's current native model (its metadata's
source_sha256 matches), otherwise the run is exported first, with the usual self-check. The graph
itself is built by ``converters.ensemble``.
"""

from __future__ import annotations

from pathlib import Path

from converters.contract import ExportResult, read_metadata
from converters.ensemble import DEFAULT_Q, Member
from converters.ensemble import export as export_ensemble
from deepepi.core.io import sha256_file


def member_file(path: str | Path) -> Path:
    """The ONNX file standing for ``path``: itself, or a run's up-to-date (or fresh) model.onnx."""
    from converters.session import load_onnx
    from deepepi.export.onnx_file import default_output, export_run
    from deepepi.runs.resolve import resolve_run

    path = Path(path)
    if path.suffix == ".onnx":
        return path
    run = resolve_run(path)
    existing = default_output(run, run.framework)
    if existing.is_file():
        recorded = read_metadata(load_onnx(existing)).get("source_sha256")
        if recorded == sha256_file(run.model_file):
            return existing
    return export_run(run.directory).path


def build_ensemble(paths: list[str | Path], out: str | Path, *, q: float = DEFAULT_Q, seed: int = 0) -> ExportResult:
    """Resolve every member and write the checked ensemble graph to ``out``."""
    from converters.session import load_onnx

    files = [member_file(p) for p in paths]
    return export_ensemble([Member(f, load_onnx(f)) for f in files], out, q=q, seed=seed)
