"""The flattened OSDB CSV: column layout and a schema-checked, column-selective loader.

One row per 5-second datapoint; 510 columns (10 metadata columns, then 125 samples each of the
acceleration magnitude M and the de-interleaved 3D axes X, Y, Z, all in milli-g).

NaN policy (what an empty or non-numeric cell means):
- eventId, userId, type: must be integers in every row (type 0 or 1); an empty cell is an error.
- dataTime: must be present and parse (ISO 8601 text or epoch seconds) in every row.
- M000..M124: every sample must be a finite number; an empty cell or NaN is an error naming the
  line and column, because a magnitude window with holes cannot be fed to the model.
- hr, o2sat, osdAlarmState, osdSpecPower, osdRoiPower, X/Y/Z: empty cells are allowed and load as
  NaN (missing heart rate, missing SpO2, events recorded without 3D data). OSDB's -1 "sensor error"
  values are kept as -1.
- Empty cells and the usual NA spellings (nan, NaN, NA, N/A, null, NULL) are missing values;
  other text in any numeric column is an error naming the column, the file line and the value.
- Booleans (True/False) are not numbers: refused in every numeric column that is read, and so is
  inf (NaN is only "missing" where missing is allowed).
Structure: every row has exactly the header's number of cells (a row with one cell too many or too
few would shift every later sample by one column), a UTF-8 byte-order mark (Excel) is accepted.
Line numbers count the header as line 1.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from deepepi.core.constants import SAMPLES_PER_DATAPOINT
from deepepi.core.errors import DataError
from deepepi.core.io import open_input

M_COLUMNS: tuple[str, ...] = tuple(f"M{i:03d}" for i in range(SAMPLES_PER_DATAPOINT))
X_COLUMNS: tuple[str, ...] = tuple(f"X{i:03d}" for i in range(SAMPLES_PER_DATAPOINT))
Y_COLUMNS: tuple[str, ...] = tuple(f"Y{i:03d}" for i in range(SAMPLES_PER_DATAPOINT))
Z_COLUMNS: tuple[str, ...] = tuple(f"Z{i:03d}" for i in range(SAMPLES_PER_DATAPOINT))
META_COLUMNS: tuple[str, ...] = ("eventId", "userId", "typeStr", "type", "dataTime", "osdAlarmState",
                                 "osdSpecPower", "osdRoiPower", "hr", "o2sat")
CSV_COLUMNS: tuple[str, ...] = META_COLUMNS + M_COLUMNS + X_COLUMNS + Y_COLUMNS + Z_COLUMNS
# What windowing needs; the default for load_csv so that the 375 3D columns are never parsed.
WINDOW_COLUMNS: tuple[str, ...] = ("eventId", "userId", "type", "dataTime") + M_COLUMNS

_INT_COLUMNS = ("eventId", "userId", "type")
_OPTIONAL_FLOAT = ("osdAlarmState", "osdSpecPower", "osdRoiPower", "hr", "o2sat")
_DIAGNOSE_CHUNK_ROWS = 20_000
_TEXT_COLUMNS = ("typeStr", "dataTime")
ENCODING = "utf-8-sig"  # plain UTF-8, with or without the byte-order mark Excel writes
NA_TEXT = ("", "nan", "NaN", "NA", "N/A", "null", "NULL")  # cells read as missing (NaN)


def _dtype(column: str) -> object:
    if column in _INT_COLUMNS:
        return np.int64
    if column in ("typeStr", "dataTime"):
        return str
    if column in _OPTIONAL_FLOAT:
        return np.float64
    return np.float32


def _read_header(path: Path) -> list[str]:
    try:
        with open_input(path, "CSV", DataError, encoding=ENCODING, newline="") as fh:
            first = fh.readline()
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text CSV file", source=str(path)) from None
    if not first.strip():
        raise DataError("empty file: expected a header line with the 510 OSDB columns", source=str(path))
    return [name.strip().strip('"') for name in first.rstrip("\r\n").split(",")]


def _check_columns(path: Path, header: list[str], wanted: list[str]) -> None:
    unknown = [c for c in wanted if c not in CSV_COLUMNS]
    if unknown:
        raise ValueError(f"not OSDB CSV columns: {unknown}")
    seen: set[str] = set()
    for name in header:
        if name in seen and name in wanted:
            raise DataError(f"column {name} appears twice in the header", source=str(path))
        seen.add(name)
    missing = [c for c in wanted if c not in seen]
    if missing:
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:4])}{'...' if len(missing) > 4 else ''})" \
            if len(missing) > 1 else ""
        raise DataError(f"missing column {missing[0]}{more}", source=str(path))


def _scan_quoted(path: Path, header: list[str]) -> None:
    """Slow path for files with quoted cells: the csv module splits the rows."""
    with open(path, encoding=ENCODING, newline="") as fh:
        reader = csv.reader(fh)
        try:
            next(reader, None)
            for row in reader:
                if row and len(row) != len(header):
                    raise _count_error(path, reader.line_num, header, len(row))
        except csv.Error as exc:  # an unbalanced quote runs on to the end of the file
            raise DataError(f"line {reader.line_num}: malformed CSV ({exc}; an unbalanced '\"'?)",
                            source=str(path)) from None


def _count_error(path: Path, line: int, header: list[str], cells: int) -> DataError:
    return DataError(f"line {line}: {cells} cells, but the header has {len(header)} "
                     "(a missing or extra comma shifts every later column)", source=str(path))


def _scan_cells(path: Path, header: list[str]) -> None:
    """Every row has the header's cell count: ``usecols`` would hide a short or long row, whose
    later cells then shift by one column. Counts commas per raw line; the csv module takes over
    when a cell is quoted (a quoted cell may hold commas or line breaks)."""
    expected = len(header) - 1
    with open(path, "rb") as fh:
        fh.readline()
        for line, text in enumerate(fh, start=2):
            if b'"' in text:
                return _scan_quoted(path, header)
            commas = text.count(b",")
            if commas != expected and text.strip(b"\r\n"):
                raise _count_error(path, line, header, commas + 1)


def _check_booleans(path: Path, df: pd.DataFrame) -> None:
    """pandas reads a column whose every cell is True/False as 1/0 (a mix with numbers is an error
    it reports itself). Such a column holds only 0, 1 and NaN, and its first non-missing cell is
    then a boolean: only those cells are looked at in the file."""
    first_rows: dict[str, int] = {}
    for column in df.columns:
        if column in _TEXT_COLUMNS:
            continue
        values = df[column].to_numpy(dtype=np.float64)
        present = ~np.isnan(values)
        if present.any() and np.isin(values[present], (0.0, 1.0)).all():
            first_rows[column] = int(np.argmax(present))
    if not first_rows:
        return
    header = _read_header(path)
    wanted = {header.index(c): c for c in first_rows}
    last = max(first_rows.values())
    with open(path, encoding=ENCODING, newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        index = 0
        for row in reader:
            if not row:
                continue
            for position, column in wanted.items():
                if first_rows[column] == index and row[position].strip().lower() in ("true", "false"):
                    raise DataError(f"column {column}, line {reader.line_num}: {row[position]!r} is a "
                                    "boolean, expected a number", source=str(path))
            if index == last:
                return
            index += 1


def _diagnose(path: Path, wanted: list[str]) -> None:
    """Find the first cell that broke the typed read and raise a DataError naming it."""
    numeric = [c for c in wanted if c not in ("typeStr", "dataTime")]
    reader = pd.read_csv(path, usecols=numeric, dtype=str, keep_default_na=False,
                         chunksize=_DIAGNOSE_CHUNK_ROWS, encoding=ENCODING)
    for chunk in reader:
        first: tuple[int, str, str, str] | None = None
        for column in numeric:
            text = chunk[column].str.strip()
            values = pd.to_numeric(text, errors="coerce")
            missing = text.isin(NA_TEXT)
            bad = values.isna() & ~missing
            if column in _INT_COLUMNS:
                bad |= missing
                bad |= values.notna() & (values % 1 != 0)
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                if first is None or row < first[0]:
                    want = "an integer" if column in _INT_COLUMNS else "a number"
                    first = (row, column, str(text.iloc[row]), want)
        if first is not None:
            row, column, value, want = first
            line = int(chunk.index[row]) + 2
            what = "is empty" if value in NA_TEXT else f"has {value!r}"
            raise DataError(f"column {column}, line {line}: {what}, expected {want}", source=str(path))


def _parse_times(path: Path, text: pd.Series) -> np.ndarray:
    """dataTime -> float64 epoch seconds, vectorised; ISO 8601 text or plain epoch seconds."""
    numbers = pd.to_numeric(text, errors="coerce")
    if not numbers.isna().any():
        values = numbers.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"column dataTime, line {row + 2}: {text.iloc[row]!r} is not a time",
                            source=str(path))
        return values
    stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = stamps.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"column dataTime, line {row + 2}: {text.iloc[row]!r} is not a date-time "
                        "(expected ISO 8601, e.g. 2023-01-31T12:00:05Z, or epoch seconds)",
                        source=str(path))
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    return ((stamps - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


def _check_values(path: Path, df: pd.DataFrame) -> None:
    for column in df.columns:
        if column in _TEXT_COLUMNS or column in _INT_COLUMNS:
            continue
        values = df[column].to_numpy()
        bad = ~np.isfinite(values) if column in M_COLUMNS else np.isinf(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            if column in M_COLUMNS:
                raise DataError(f"column {column}, line {row + 2}: missing or non-finite magnitude sample "
                                "(M000..M124 must be complete)", source=str(path))
            raise DataError(f"column {column}, line {row + 2}: infinite value (or beyond float32 range)",
                            source=str(path))
    if "type" in df.columns:
        bad = ~df["type"].isin((0, 1)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"column type, line {row + 2}: label {int(df['type'].iloc[row])}, "
                            "expected 0 (non-seizure) or 1 (seizure)", source=str(path))


def load_csv(path: str | Path, *, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a flattened OSDB CSV, parsing only ``columns`` (default: what windowing needs).

    eventId/userId/type come back int64, dataTime float64 epoch seconds, M/X/Y/Z float32,
    the other metadata float64 (NaN where empty) and typeStr text. Any schema or value problem
    is a DataError naming the file, column and line.
    """
    path = Path(path)
    wanted = list(WINDOW_COLUMNS if columns is None else columns)
    header = _read_header(path)
    _check_columns(path, header, wanted)
    _scan_cells(path, header)
    dtypes = {c: _dtype(c) for c in wanted}
    try:
        with warnings.catch_warnings():  # float32 overflow: the inf it gives is refused below, by name
            warnings.simplefilter("ignore", RuntimeWarning)
            df = pd.read_csv(path, usecols=wanted, dtype=dtypes, keep_default_na=False, encoding=ENCODING,
                             na_values={c: list(NA_TEXT) for c in wanted if c not in _TEXT_COLUMNS})
    except pd.errors.ParserError as exc:
        raise DataError(f"malformed CSV: {exc}", source=str(path)) from None
    except UnicodeDecodeError:
        raise DataError("not a UTF-8 text CSV file", source=str(path)) from None
    except (ValueError, TypeError, OverflowError) as exc:
        _diagnose(path, wanted)
        raise DataError(f"cannot parse CSV: {exc}", source=str(path)) from None
    if df.empty:
        raise DataError("no data rows after the header", source=str(path))
    if "dataTime" in df.columns:
        df["dataTime"] = _parse_times(path, df["dataTime"])
    _check_values(path, df)
    _check_booleans(path, df)
    return df if list(df.columns) == wanted else df[wanted]


__all__ = ["M_COLUMNS", "X_COLUMNS", "Y_COLUMNS", "Z_COLUMNS", "META_COLUMNS", "CSV_COLUMNS",
           "WINDOW_COLUMNS", "NA_TEXT", "load_csv"]
