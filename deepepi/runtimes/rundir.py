"""Run-directory adapter: the run's native model (the framework its config.json names)."""

from __future__ import annotations

from pathlib import Path

from deepepi.runtimes.base import Runtime


def load(path: Path, *, threads: int | None = None) -> Runtime:
    from deepepi.runs.resolve import resolve_run
    from deepepi.runtimes import open_model

    return open_model(resolve_run(path).model_file, threads=threads)
