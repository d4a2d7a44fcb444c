"""Datapoints from either input format: a flattened CSV as it is, or OSDB JSON flattened on the way.

``evaluate`` and ``predict`` both take ``--data`` as a flattened CSV or OSDB JSON release files;
JSON goes through ``osdb.flatten`` (with the config's eventFilters) into a temporary CSV that is
read back with the same reader as a CSV input, so both formats give the same frame.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from deepepi.core.errors import DataError
from deepepi.data.csvio import load_csv
from deepepi.data.osdb import flatten


def is_json(path: Path) -> bool:
    """OSDB JSON (by its suffix); anything else is read as a flattened CSV."""
    return path.suffix.lower() == ".json"


def read_json(paths: Sequence[Path], filters: Mapping[str, Any], *, columns: Sequence[str],
              prefix: str = "deepepi-") -> pd.DataFrame:
    """OSDB JSON files flattened together (``filters``: eventFilters), as one frame of ``columns``;
    DataError naming the first file when no event survives."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        csv = Path(tmp) / "events.csv"
        stats = flatten(list(paths), csv, filters)
        if stats.events_written == 0:
            raise DataError(f"no usable events ({stats.summary()})", source=str(paths[0]))
        return load_csv(csv, columns=columns)


def read_datapoints(path: str | Path, filters: Mapping[str, Any] | None = None, *, columns: Sequence[str],
                    prefix: str = "deepepi-") -> pd.DataFrame:
    """One row per datapoint from a flattened CSV, or from OSDB JSON (flattened on the way, with the
    given eventFilters)."""
    path = Path(path)
    if not is_json(path):
        return load_csv(path, columns=columns)
    return read_json([path], filters or {}, columns=columns, prefix=prefix)
