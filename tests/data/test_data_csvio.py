"""CSV loader: dtypes, column selection, time parsing and the errors that name column, line and value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepepi.data.csvio import CSV_COLUMNS, M_COLUMNS, WINDOW_COLUMNS, load_csv
from deepepi.data.synth import synthesize
from deepepi.core.errors import DataError


@pytest.fixture(scope="module")
def csv_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = synthesize(tmp_path_factory.mktemp("synth"), users=2, events=4, seed=11).csv_path
    return path.read_text(encoding="utf-8").splitlines()


def edited(tmp_path: Path, lines: list[str], line: int, column: str, value: str) -> Path:
    """Copy of the CSV with one cell replaced (``line`` counts the header as 1)."""
    out = list(lines)
    cells = out[line - 1].split(",")
    cells[CSV_COLUMNS.index(column)] = value
    out[line - 1] = ",".join(cells)
    path = tmp_path / "edited.csv"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_default_columns_and_dtypes(tmp_path: Path, csv_lines: list[str]) -> None:
    path = edited(tmp_path, csv_lines, 2, "eventId", csv_lines[1].split(",")[0])
    df = load_csv(path)
    assert tuple(df.columns) == WINDOW_COLUMNS
    assert len(df) == len(csv_lines) - 1
    assert {str(df[c].dtype) for c in ("eventId", "userId", "type")} == {"int64"}
    assert df["dataTime"].dtype == np.float64
    assert {str(df[c].dtype) for c in M_COLUMNS} == {"float32"}
    first = pd.Timestamp(csv_lines[1].split(",")[4]).timestamp()
    assert df["dataTime"].iloc[0] == first
    assert df["M000"].iloc[0] == np.float32(csv_lines[1].split(",")[10])


def test_all_columns_and_optional_nan(tmp_path: Path, csv_lines: list[str]) -> None:
    path = edited(tmp_path, csv_lines, 3, "hr", "")
    df = load_csv(path, columns=CSV_COLUMNS)
    assert tuple(df.columns) == CSV_COLUMNS
    assert np.isnan(df["hr"].iloc[1]) and df["typeStr"].iloc[0].count("/") == 1
    assert str(df["X000"].dtype) == "float32"


def test_epoch_seconds_are_accepted(tmp_path: Path, csv_lines: list[str]) -> None:
    lines = [csv_lines[0]] + [",".join(c if i != 4 else str(1_700_000_000 + 5 * n) for i, c in
                                       enumerate(line.split(","))) for n, line in enumerate(csv_lines[1:])]
    path = tmp_path / "epoch.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.testing.assert_array_equal(load_csv(path)["dataTime"].to_numpy()[:3], [1.7e9, 1.7e9 + 5, 1.7e9 + 10])


def test_missing_column_is_named(tmp_path: Path, csv_lines: list[str]) -> None:
    drop = CSV_COLUMNS.index("M042")
    lines = [",".join(c for i, c in enumerate(line.split(",")) if i != drop) for line in csv_lines]
    path = tmp_path / "missing.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"missing\.csv: missing column M042$"):
        load_csv(path)
    load_csv(path, columns=("eventId", "M041"))  # columns not asked for are not required


@pytest.mark.parametrize("column, value, message", [
    ("M010", "abc", r"column M010, line 7: has 'abc', expected a number"),
    ("eventId", "12x", r"column eventId, line 7: has '12x', expected an integer"),
    ("userId", "", r"column userId, line 7: is empty, expected an integer"),
    ("type", "0.5", r"column type, line 7: has '0.5', expected an integer"),
])
def test_text_in_numeric_columns_names_column_line_and_value(tmp_path: Path, csv_lines: list[str], column: str,
                                                              value: str, message: str) -> None:
    with pytest.raises(DataError, match=r"edited\.csv: " + message):
        load_csv(edited(tmp_path, csv_lines, 7, column, value))


@pytest.mark.parametrize("column, value, message", [
    ("M124", "", r"column M124, line 5: missing or non-finite magnitude sample"),
    ("M003", "nan", r"column M003, line 5: missing or non-finite"),
    ("type", "2", r"column type, line 5: label 2, expected 0 \(non-seizure\) or 1 \(seizure\)"),
    ("dataTime", "soon", r"column dataTime, line 5: 'soon' is not a date-time"),
])
def test_value_policy(tmp_path: Path, csv_lines: list[str], column: str, value: str, message: str) -> None:
    with pytest.raises(DataError, match=r"edited\.csv: " + message):
        load_csv(edited(tmp_path, csv_lines, 5, column, value))


def test_empty_header_only_and_missing_files(tmp_path: Path, csv_lines: list[str]) -> None:
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.csv: empty file"):
        load_csv(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text(csv_lines[0] + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"header\.csv: no data rows"):
        load_csv(tmp_path / "header.csv")
    with pytest.raises(DataError, match=r"none\.csv: CSV file not found"):
        load_csv(tmp_path / "none.csv")
