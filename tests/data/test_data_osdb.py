"""Streaming OSDB JSON -> CSV: columns, OSDB quirks, event filters, malformed input, bounded memory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deepepi.data import osdb
from deepepi.data.csvio import CSV_COLUMNS, M_COLUMNS, X_COLUMNS, Y_COLUMNS, Z_COLUMNS, load_csv
from deepepi.data.osdb import flatten, iter_events
from deepepi.data.synth import synthesize
from deepepi.core.errors import DataError

_UNSET: Any = object()


def point(j: int, *, raw: Any = _UNSET, raw3d: Any = _UNSET, hr: Any = 72, o2: Any = 97,
          time: Any = _UNSET) -> dict[str, Any]:
    p: dict[str, Any] = {"dataTime": f"2023-02-01T10:00:{5 * j:02d}Z" if time is _UNSET else time,
                         "hr": hr, "o2Sat": o2, "alarmState": j % 3, "specPower": 100 + j, "roiPower": 50 + j,
                         "simpleSpec": list(range(10))}
    p["rawData"] = [1000 + j] * 125 if raw is _UNSET else raw
    if raw3d is not _UNSET:
        p["rawData3D"] = raw3d
    else:
        p["rawData3D"] = [10, 20, 990] * 125
    if hr is None:
        del p["hr"]
    return p


def event(eid: int, user: int = 1, etype: str = "NDA", subtype: Any = "Walking", n: int = 3,
          points: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    e = {"id": eid, "userId": user, "type": etype, "subType": subtype, "desc": f"event {eid}",
         "dataTime": "2023-02-01T10:00:00Z", "osdAlarmState": 2, "sampleFreq": 25, "seizureTimes": None,
         "dataSourceName": "Garmin", "datapoints": points if points is not None else [point(j) for j in range(n)]}
    e.update(extra)
    return e


def write(path: Path, events: list[Any]) -> Path:
    path.write_text(json.dumps(events, indent=1), encoding="utf-8")
    return path


def rows(csv: Path) -> list[list[str]]:
    return [line.split(",") for line in csv.read_text(encoding="utf-8").splitlines()]


def test_columns_labels_and_deinterleaving(tmp_path: Path) -> None:
    src = write(tmp_path / "a.json", [
        event(1, etype="Seizure", subtype="Tonic-Clonic",
              points=[point(0, raw3d=list(range(375)))]),
        event(2, etype="Fall", subtype="Trip"),
        event(3, etype="False Alarm", subtype="Brushing teeth", n=2)])
    stats = flatten([src], tmp_path / "out.csv")
    table = rows(tmp_path / "out.csv")
    assert tuple(table[0]) == CSV_COLUMNS and len(CSV_COLUMNS) == 510
    assert [r[:5] for r in table[1:]] == [
        ["1", "1", "Seizure/Tonic-Clonic", "1", "2023-02-01T10:00:00Z"],
        ["3", "1", "False Alarm/Brushing teeth", "0", "2023-02-01T10:00:00Z"],
        ["3", "1", "False Alarm/Brushing teeth", "0", "2023-02-01T10:00:05Z"]]
    assert table[1][5:10] == ["0", "100", "50", "72", "97"]
    df = load_csv(tmp_path / "out.csv", columns=CSV_COLUMNS)
    assert df.loc[0, list(X_COLUMNS[:2])].tolist() == [0.0, 3.0]
    assert df.loc[0, list(Y_COLUMNS[:2])].tolist() == [1.0, 4.0]
    assert df.loc[0, list(Z_COLUMNS[-1:])].tolist() == [374.0]
    assert (stats.events_read, stats.events_written, stats.rows_written) == (3, 2, 3)
    assert stats.excluded == {"type 'Fall'": 1}


def test_missing_3d_hr_o2_and_minus_one_values(tmp_path: Path) -> None:
    points = [point(0, raw3d=_UNSET), point(1, raw3d=[]), point(2, raw3d=[0] * 375),
              point(3, raw3d=[1, 2, 3] * 100), point(4, hr=None, o2=-1), point(5, hr=-1, o2=None)]
    del points[0]["rawData3D"]
    src = write(tmp_path / "a.json", [event(1, points=points)])
    flatten([src], tmp_path / "out.csv")
    df = load_csv(tmp_path / "out.csv", columns=CSV_COLUMNS)
    assert df[list(X_COLUMNS + Y_COLUMNS + Z_COLUMNS)].isna().all(axis=1).tolist() == [True] * 4 + [False] * 2
    assert np.isnan(df["hr"].iloc[4]) and df["hr"].iloc[5] == -1.0
    assert df["o2sat"].iloc[4] == -1.0 and np.isnan(df["o2sat"].iloc[5])
    assert np.isfinite(df[list(M_COLUMNS)].to_numpy()).all()


def test_short_padded_and_empty_raw_data(tmp_path: Path) -> None:
    padded = list(range(1, 126)) + [0] * 25
    points = [point(0, raw=padded), point(1, raw=[1000] * 100), point(2, raw=[1000] * 100 + [0] * 25),
              point(3, raw=[0] * 125), point(4, raw=[]), point(5, raw=None), point(6)]
    del points[5]["rawData"]
    src = write(tmp_path / "a.json", [event(1, points=points)])
    stats = flatten([src], tmp_path / "out.csv")
    df = load_csv(tmp_path / "out.csv", columns=CSV_COLUMNS)
    assert df[list(M_COLUMNS)].iloc[0].tolist() == [float(v) for v in range(1, 126)]
    assert len(df) == 2 and df["dataTime"].diff().iloc[1] == 30.0
    assert stats.datapoints_skipped == {"rawData shorter than 125": 2, "no acceleration": 3}


def test_date_formats_are_normalised_to_iso(tmp_path: Path) -> None:
    points = [point(0, time="05-03-2022 12:00:00"), point(1, time=1646481605000),
              point(2, time="2022-03-05T13:00:10+01:00")]
    src = write(tmp_path / "a.json", [event(1, points=points)])
    flatten([src], tmp_path / "out.csv")
    assert [r[4] for r in rows(tmp_path / "out.csv")[1:]] == [
        "2022-03-05T12:00:00Z", "2022-03-05T12:00:05Z", "2022-03-05T12:00:10Z"]


@pytest.mark.parametrize("filters, kept", [
    ({}, [1, 2, 3, 4, 5]),
    ({"includeUserIds": ["2"]}, [2, 3]),
    ({"excludeUserIds": [2]}, [1, 4, 5]),
    ({"includeTypes": ["Seizure"]}, [1]),
    ({"excludeTypes": ["NDA"]}, [1, 2]),
    ({"includeSubTypes": ["Walking"]}, [3]),
    ({"excludeSubTypes": ["null", "Walking"]}, [1, 2, 5]),
    ({"includeDataSources": ["BLE"]}, [2]),
    ({"excludeDataSources": ["BLE"]}, [1, 3, 4, 5]),
    ({"includeText": ["SHAKING"]}, [5]),
    ({"excludeText": ["shak", "teeth"]}, [1, 3, 4]),
    ({"requireHrData": True}, [1, 2, 3, 5]),
    ({"requireO2SatData": True}, [1, 2, 3, 4]),
    ({"require3dData": True}, [1, 3, 4, 5]),
])
def test_event_filters(tmp_path: Path, filters: dict[str, Any], kept: list[int]) -> None:
    events = [event(1, etype="Seizure", subtype="Tonic-Clonic"),
              event(2, user=2, etype="False Alarm", subtype="Brushing", desc="brushing teeth",
                    dataSourceName="BLE", points=[point(0, raw3d=None)]),
              event(3, user=2, subtype="Walking"),
              event(4, subtype=None, points=[point(0, hr=-1)]),
              event(5, subtype="Other", desc="Shaking hands", points=[point(0, o2=-1)])]
    src = write(tmp_path / "a.json", events)
    flatten([src], tmp_path / "out.csv", filters)
    assert sorted({int(r[0]) for r in rows(tmp_path / "out.csv")[1:]}) == kept


@pytest.mark.parametrize("bad, message", [
    ({"type": _UNSET}, r"event 1: missing field 'type'"),
    ({"id": "7"}, r"event 1: field 'id' must be an integer"),
    ({"datapoints": {"a": 1}}, r"event 1 \(id 2\): field 'datapoints' must be a list"),
    ({"datapoints": [point(0, hr="high")]}, r"event 1 \(id 2\), datapoint 0: hr must be a number"),
    ({"datapoints": [point(0, raw=[1000] * 124 + ["x"])]}, r"datapoint 0: rawData\[124\] is 'x', expected a finite number"),
    ({"datapoints": [point(0, time="yesterday")]}, r"datapoint 0: dataTime 'yesterday' is not a date-time"),
])
def test_malformed_events_name_file_event_and_field(tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    broken = event(2, **{k: v for k, v in bad.items() if v is not _UNSET})
    for key in [k for k, v in bad.items() if v is _UNSET]:
        del broken[key]
    src = write(tmp_path / "bad.json", [event(1), broken])
    with pytest.raises(DataError, match=r"bad\.json: (.*, )?" + message):
        flatten([src], tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("text, message", [
    ('[{"id": 1, "userId": 1, "type": "NDA", "datapoints": []},\n {"id": 2, "userId"',
     r"event 1: malformed JSON at line 2"),
    ('{"id": 1}', r"expected a JSON array of events"),
    ('[{"id": 1, "userId": 1, "type": "NDA", "datapoints": []}] trailing', r"unexpected text after"),
    ('[{"id": 1, "userId": 1, "type": "NDA", "datapoints": []} {"id": 2}]', r"expected ',' or ']' after event 0"),
    ('[1, 2]', r"event 0: expected a JSON object, got int"),
    ('', r"expected a JSON array of events \('\['\), found end of file"),
])
def test_malformed_json_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json: .*" + message):
        list(iter_events(tmp_path / "bad.json"))


def test_missing_file_and_empty_array(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.json: OSDB JSON file not found"):
        flatten([tmp_path / "nope.json"], tmp_path / "out.csv")
    (tmp_path / "empty.json").write_text(" [ ] \n", encoding="utf-8")
    stats = flatten([tmp_path / "empty.json"], tmp_path / "out.csv")
    assert stats.rows_written == 0 and rows(tmp_path / "out.csv") == [list(CSV_COLUMNS)]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("synth"), users=3, events=12, seed=5).json_paths[2]


def test_tiny_reads_give_the_same_csv(synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flatten([synthetic], tmp_path / "normal.csv")
    monkeypatch.setattr(osdb, "_READ_CHARS", 7)
    flatten([synthetic], tmp_path / "tiny.csv")
    assert (tmp_path / "tiny.csv").read_bytes() == (tmp_path / "normal.csv").read_bytes()


def _flatten_peak(path: Path, out: Path) -> int:
    tracemalloc.start()
    try:
        flatten([path], out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_one_event_not_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(osdb, "_READ_CHARS", 4096)
    small = write(tmp_path / "small.json", [event(i, n=1) for i in range(10)])
    large = write(tmp_path / "large.json", [event(i, n=1) for i in range(100)])
    peak_small = _flatten_peak(small, tmp_path / "small.csv")
    peak_large = _flatten_peak(large, tmp_path / "large.csv")
    growth = large.stat().st_size - small.stat().st_size
    assert peak_large - peak_small < 0.05 * growth
