"""Hostile CSV input to `deepepi data inspect` and `deepepi data windows`: the strict reader contract.

Each mutation of a valid flattened CSV is either refused (exit 2, one line naming file, line or
column) or, when it is odd but valid (BOM, CRLF, quoted cells...), gives the very same windows as
the clean file. Inputs are never changed and a refused `windows` leaves no npz or temp file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepepi.data.csvio import CSV_COLUMNS, load_csv
from deepepi.data.synth import synthesize
from deepepi.core.errors import DataError
from hostile import assert_no_leftovers, assert_refused, assert_untouched, fingerprint, run

M = CSV_COLUMNS.index("M010")
X = CSV_COLUMNS.index("X020")
HR = CSV_COLUMNS.index("hr")
TYPE, EVENT, USER, TIME = (CSV_COLUMNS.index(c) for c in ("type", "eventId", "userId", "dataTime"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("synth"), users=2, events=3, seed=2).csv_path


@pytest.fixture(scope="module")
def clean_windows(clean: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("clean") / "w.npz"
    from deepepi.cli import main

    with pytest.raises(SystemExit) as done:
        main(["data", "windows", str(clean), "-o", str(out)])
    assert done.value.code == 0
    return dict(np.load(out))


Lines = list[str]


def cell(row: int, column: int, value: str) -> Callable[[Lines], Lines]:
    def mutate(lines: Lines) -> Lines:
        cells = lines[row].split(",")
        cells[column] = value
        return lines[:row] + [",".join(cells)] + lines[row + 1:]
    return mutate


def column(col: int, values: Callable[[int], str]) -> Callable[[Lines], Lines]:
    def mutate(lines: Lines) -> Lines:
        out = [lines[0]]
        for i, line in enumerate(lines[1:]):
            cells = line.split(",")
            cells[col] = values(i)
            out.append(",".join(cells))
        return out
    return mutate


def edit(row: int, fn: Callable[[str], str]) -> Callable[[Lines], Lines]:
    return lambda lines: lines[:row] + [fn(lines[row])] + lines[row + 1:]


# (name, mutation of the text lines, fragments the one error line must hold)
REFUSED: list[tuple[str, Callable[[Lines], Lines], tuple[str, ...]]] = [
    ("one cell too many", edit(5, lambda s: s + ",7"), ("line 6", "511 cells")),
    ("one cell too few", edit(7, lambda s: s.rsplit(",", 1)[0]), ("line 8", "509 cells")),
    ("trailing comma", edit(3, lambda s: s + ","), ("line 4", "511 cells")),
    ("cell lost mid-row", edit(9, lambda s: s.replace(",", "", 1)), ("line 10", "509 cells")),
    ("row of one cell", edit(4, lambda s: s.split(",")[0]), ("line 5", "1 cells")),
    ("last row short, no newline", lambda ls: ls[:-1] + [ls[-1].rsplit(",", 3)[0]], ("507 cells",)),
    ("M column of True/False", column(M, lambda i: "True" if i % 2 else "False"), ("column M010", "boolean")),
    ("M column of TRUE/FALSE", column(M, lambda i: "TRUE" if i % 3 else "FALSE"), ("column M010", "line 2", "boolean")),
    ("type column of True/False", column(TYPE, lambda i: "True" if i < 36 else "False"), ("column type", "boolean")),
    ("one True in M", cell(3, M, "True"), ("column M010", "line 4", "'True'")),
    ("lower-case false in M", cell(6, M, "false"), ("column M010", "'false'")),
    ("True in type", cell(2, TYPE, "True"), ("column type", "'True'")),
    ("inf in M", cell(3, M, "inf"), ("column M010", "line 4", "non-finite")),
    ("-inf in M", cell(3, M, "-inf"), ("column M010", "non-finite")),
    ("Infinity in M", cell(3, M, "Infinity"), ("column M010", "non-finite")),
    ("nan in M", cell(3, M, "nan"), ("column M010", "line 4")),
    ("NaN in M", cell(3, M, "NaN"), ("column M010",)),
    ("empty M", cell(3, M, ""), ("column M010", "line 4")),
    ("1e39 in M (beyond float32)", cell(3, M, "1e39"), ("column M010", "non-finite")),
    ("text in M", cell(4, M, "abc"), ("column M010", "line 5", "'abc'")),
    ("quoted decimal comma in M", cell(4, M, '"1,5"'), ("column M010", "line 5")),
    ("hex in M", cell(4, M, "0x10"), ("column M010",)),
    ("label 2", cell(2, TYPE, "2"), ("column type", "line 3", "label 2")),
    ("label -1", cell(2, TYPE, "-1"), ("column type",)),
    ("label 0.5", cell(2, TYPE, "0.5"), ("column type",)),
    ("label empty", cell(2, TYPE, ""), ("column type", "empty")),
    ("eventId 1.5", cell(2, EVENT, "1.5"), ("column eventId",)),
    ("eventId text", cell(2, EVENT, "x"), ("column eventId",)),
    ("eventId empty", cell(2, EVENT, ""), ("column eventId", "empty")),
    ("userId empty", cell(2, USER, ""), ("column userId",)),
    ("dataTime not a time", cell(2, TIME, "yesterday"), ("column dataTime", "line 3")),
    ("dataTime empty", cell(2, TIME, ""), ("column dataTime",)),
    ("dataTime inf", column(TIME, lambda i: "inf" if i == 1 else str(1.7e9 + 5 * i)), ("column dataTime",)),
    ("header lacks M042", lambda ls: [ls[0].replace("M042,", "")] + ls[1:], ("missing column M042",)),
    ("header names M010 twice", lambda ls: [ls[0].replace("M011", "M010")] + ls[1:], ("M010", "twice")),
    ("header only", lambda ls: ls[:1], ("no data rows",)),
    ("header renamed eventid", lambda ls: [ls[0].replace("eventId", "eventid")] + ls[1:], ("missing column eventId",)),
]
RAW_REFUSED: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("empty file", b"", ("empty file",)),
    ("binary garbage", bytes(range(256)) * 8, ("UTF-8",)),
    ("UTF-16", ",".join(CSV_COLUMNS).encode("utf-16"), ("UTF-8",)),
    ("blank first line", b"\n\n", ("empty file",)),
    ("unbalanced quote", (",".join(CSV_COLUMNS) + "\n" + '1,1,"Seizure/x,1' + ",0" * 506 + "\n").encode(),
     ("line 2",)),
]
# Odd but valid: the windows must equal the clean file's.
ACCEPTED: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("UTF-8 BOM (Excel)", lambda b: b"\xef\xbb\xbf" + b),
    ("CRLF line ends", lambda b: b.replace(b"\n", b"\r\n")),
    ("no final newline", lambda b: b.rstrip(b"\n")),
    ("blank line in the middle", lambda b: b.replace(b"\n", b"\n\n", 3)),
    ("blank lines at the end", lambda b: b + b"\n\n"),
    ("quoted typeStr with a comma", lambda b: b.replace(b",Seizure/Tonic-Clonic,", b',"Seizure/Tonic, Clonic",')),
    ("quoted typeStr with a doubled quote", lambda b: b.replace(b",NDA/Brushing teeth,", b',"NDA/""Brushing"" teeth",')),
    ("BOM and CRLF", lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n")),
]


def _write(path: Path, lines: Lines) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _check_refused(capsys, path: Path, fragments: tuple[str, ...], command: str) -> None:  # noqa: ANN001
    before = fingerprint(path)
    out = path.parent / "w.npz"
    args = ("data", "inspect", path) if command == "inspect" else ("data", "windows", path, "-o", out)
    assert_refused(run(capsys, *args), path.name, *fragments)
    assert_untouched(before)
    assert_no_leftovers(path.parent, out)


@pytest.mark.parametrize("command", ["inspect", "windows"])
@pytest.mark.parametrize("name, mutate, fragments", REFUSED, ids=[r[0] for r in REFUSED])
def test_mutated_csv_is_refused(clean, tmp_path, capsys, command, name, mutate, fragments) -> None:  # noqa: ANN001
    path = _write(tmp_path / "bad.csv", mutate(clean.read_text(encoding="utf-8").splitlines()))
    _check_refused(capsys, path, fragments, command)


@pytest.mark.parametrize("command", ["inspect", "windows"])
@pytest.mark.parametrize("name, data, fragments", RAW_REFUSED, ids=[r[0] for r in RAW_REFUSED])
def test_unreadable_csv_is_refused(tmp_path, capsys, command, name, data, fragments) -> None:  # noqa: ANN001
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    _check_refused(capsys, path, fragments, command)


@pytest.mark.parametrize("command", ["inspect", "windows"])
@pytest.mark.parametrize("what", ["missing", "directory", "device"])
def test_not_a_csv_file(tmp_path, capsys, command, what) -> None:  # noqa: ANN001
    path = {"missing": tmp_path / "nope.csv", "directory": tmp_path, "device": Path("/dev/zero")}[what]
    out = tmp_path / "w.npz"
    args = ("data", "inspect", path) if command == "inspect" else ("data", "windows", path, "-o", out)
    assert_refused(run(capsys, *args), str(path))
    assert_no_leftovers(tmp_path, out)


@pytest.mark.parametrize("name, mutate", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_odd_but_valid_csv_gives_the_same_windows(clean, clean_windows, tmp_path, capsys, name, mutate) -> None:  # noqa: ANN001
    path = tmp_path / "odd.csv"
    path.write_bytes(mutate(clean.read_bytes()))
    before = fingerprint(path)
    rc, _, err = run(capsys, "data", "windows", path, "-o", tmp_path / "w.npz")
    assert rc == 0, err
    got = dict(np.load(tmp_path / "w.npz"))
    assert got.keys() == clean_windows.keys()
    for key in got:
        np.testing.assert_array_equal(got[key], clean_windows[key])
    rc, out, err = run(capsys, "data", "inspect", path)
    assert rc == 0 and "Traceback" not in err and "total windows" in out
    assert_untouched(before)
    assert_no_leftovers(tmp_path)


@pytest.mark.parametrize("col, values", [
    (X, lambda i: "TRUE" if i % 2 else "FALSE"),
    (HR, lambda i: "" if i < 3 else "True"),  # missing cells first: the first present cell decides
    (HR, lambda i: "True" if i == 5 else "70"),
])
def test_booleans_in_optional_columns_are_refused_when_read(clean, tmp_path, col, values) -> None:  # noqa: ANN001
    path = _write(tmp_path / "b.csv", column(col, values)(clean.read_text(encoding="utf-8").splitlines()))
    with pytest.raises(DataError, match=f"column {CSV_COLUMNS[col]}, line [0-9]+: .*(boolean|'True')"):
        load_csv(path, columns=CSV_COLUMNS)


def test_windows_output_equal_to_its_input_is_refused(clean, tmp_path, capsys) -> None:  # noqa: ANN001
    path = Path(shutil.copy(clean, tmp_path / "data.csv"))
    before = fingerprint(path)
    assert_refused(run(capsys, "data", "windows", path, "-o", path), "data.csv", "is the input file")
    assert_untouched(before)


# Property: any text in one M cell is read as exactly float32(text), or refused with a DataError.
_CELL_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**40, 10**40).map(str),
    st.sampled_from(["True", "false", "", " ", "nan", "NA", "null", "1e39", "-1e-50", "1_000", "+5", "٣"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=',"\r\n'), max_size=8),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_CELL_TEXT, row=st.integers(1, 20))
def test_any_m_cell_text_is_read_exactly_or_refused(clean, tmp_path, text, row) -> None:  # noqa: ANN001
    lines = clean.read_text(encoding="utf-8").splitlines()
    path = _write(tmp_path / "prop.csv", cell(row, M, text)(lines))
    try:
        df = load_csv(path)
    except DataError as err:
        assert "\n" not in str(err) and "prop.csv" in str(err)
        return
    value = np.float32(float(text))  # accepted: must have been a finite number, read as written
    assert np.isfinite(value) and text.strip().lower() not in ("true", "false")
    assert df["M010"].iloc[row - 1] == value


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(1, 30), delta=st.sampled_from([-3, -1, 1, 2]))
def test_any_row_with_a_wrong_cell_count_is_refused(clean, tmp_path, row, delta) -> None:  # noqa: ANN001
    lines = clean.read_text(encoding="utf-8").splitlines()
    cells = lines[row].split(",")
    cells = cells[:delta] if delta < 0 else cells + ["1"] * delta
    path = _write(tmp_path / "count.csv", lines[:row] + [",".join(cells)] + lines[row + 1:])
    with pytest.raises(DataError, match=f"line {row + 1}: {len(cells)} cells"):
        load_csv(path)
