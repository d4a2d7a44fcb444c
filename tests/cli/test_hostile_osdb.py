"""Hostile OSDB JSON to `deepepi data flatten`: bad samples, rates, nesting and structure.

A refused file gives exit 2 and one line naming the event id, datapoint index and sample index
where they apply; no CSV and no temp file is left, and the input is unchanged. Odd but valid
files flatten to a CSV that loads back.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepepi.data.csvio import load_csv
from deepepi.data.osdb import flatten
from deepepi.data.synth import synthesize
from deepepi.core.errors import DataError
from hostile import assert_no_leftovers, assert_refused, assert_untouched, fingerprint, run

Event = dict[str, Any]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    result = synthesize(tmp_path_factory.mktemp("synth"), users=2, events=3, seed=3)
    out: list[Event] = []
    for path in result.json_paths:
        out += json.loads(path.read_text(encoding="utf-8"))
    return out


def dp_value(field: str, value: Any, index: int | None = None, dp: int = 2) -> Callable[[list[Event]], None]:
    """Set datapoint ``dp`` of event 0's ``field`` (or its element ``index``) to ``value``."""
    def mutate(evs: list[Event]) -> None:
        point = evs[0]["datapoints"][dp]
        if index is None:
            point[field] = value
        else:
            point[field][index] = value
    return mutate


def ev_value(field: str, value: Any, *, delete: bool = False) -> Callable[[list[Event]], None]:
    def mutate(evs: list[Event]) -> None:
        if delete:
            del evs[1][field]
        else:
            evs[1][field] = value
    return mutate


BAD_SAMPLES = [float("nan"), float("inf"), float("-inf"), None, True, False, "12", 1e39, -1e39, [1], {"v": 1}]
REFUSED: list[tuple[str, Callable[[list[Event]], None], tuple[str, ...]]] = [
    *[(f"rawData[7]={v!r}", dp_value("rawData", v, 7), ("(id {id0})", "datapoint 2", "rawData[7]"))
      for v in BAD_SAMPLES],
    *[(f"rawData3D[30]={v!r}", dp_value("rawData3D", v, 30), ("(id {id0})", "datapoint 2", "rawData3D[30]"))
      for v in (float("nan"), float("inf"), True, "x", None, 1e39)],
    ("rawData not a list", dp_value("rawData", "1,2,3"), ("(id {id0})", "datapoint 2", "rawData")),
    ("rawData an object", dp_value("rawData", {"a": 1}), ("(id {id0})", "rawData")),
    *[(f"{f}={v!r}", dp_value(f, v), ("(id {id0})", "datapoint 2", f))
      for f in ("hr", "o2Sat", "alarmState", "specPower", "roiPower")
      for v in (float("nan"), float("inf"), True, "high")],
    *[(f"sampleFreq={v!r}", ev_value("sampleFreq", v), ("(id {id1})", "sampleFreq"))
      for v in (50, 12.5, 100, 0, -25, "25", True, float("nan"), float("inf"), [25])],
    ("datapoint extra field nested 4 deep", dp_value("extra", [[[[1]]]]), ("nested 7 levels", "allows 6")),
    ("desc nested 3000 deep", ev_value("desc", None), ("event 1", "nested")),  # replaced below
    ("datapoint not an object", lambda evs: evs[0]["datapoints"].__setitem__(1, [1, 2]), ("datapoint 1",)),
    ("datapoints not a list", ev_value("datapoints", {"a": 1}), ("datapoints",)),
    ("id missing", ev_value("id", None, delete=True), ("event 1", "'id'")),
    ("id a bool", ev_value("id", True), ("event 1", "'id'")),
    ("id a float", ev_value("id", 3.5), ("event 1", "'id'")),
    ("userId text", ev_value("userId", "u1"), ("event 1", "'userId'")),
    ("type a number", ev_value("type", 1), ("event 1", "'type'")),
    ("dataTime garbage", dp_value("dataTime", "soon"), ("datapoint 2", "dataTime")),
    ("dataTime a bool", dp_value("dataTime", True), ("datapoint 2", "dataTime")),
]
RAW_REFUSED: list[tuple[str, Callable[[str], str], tuple[str, ...]]] = [
    ("top level an object", lambda t: '{"events": ' + t + "}", ("JSON array",)),
    ("truncated mid-event", lambda t: t[: len(t) // 2], ("malformed JSON",)),
    ("trailing garbage", lambda t: t + "xyz", ("unexpected text",)),
    ("missing comma between events", lambda t: t.replace("},\n{", "}\n{", 1), ("','",)),
    ("array of numbers", lambda t: "[1, 2, 3]", ("expected a JSON object",)),
    ("100000 nested arrays", lambda t: "[" * 100_000 + "]" * 100_000, ("nested",)),
    ("3000 nested objects in an event", lambda t: '[{"a":' * 3000 + "1" + "}" * 3000 + "]", ("nested",)),
    ("empty file", lambda t: "", ("JSON array",)),
    ("NUL bytes", lambda t: "\x00" * 64, ("JSON array",)),
]


def _write(path: Path, evs: list[Event]) -> Path:
    path.write_text(json.dumps(evs), encoding="utf-8")  # NaN/Infinity written as JSON's extensions
    return path


def _flatten_refused(capsys, src: Path, fragments: tuple[str, ...]) -> None:  # noqa: ANN001
    before = fingerprint(src)
    out = src.parent / "out.csv"
    assert_refused(run(capsys, "data", "flatten", src, "-o", out), src.name, *fragments)
    assert_untouched(before)
    assert_no_leftovers(src.parent, out)


@pytest.mark.parametrize("name, mutate, fragments", REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_event_is_refused_naming_event_and_datapoint(events, tmp_path, capsys, name, mutate, fragments) -> None:  # noqa: ANN001
    evs = copy.deepcopy(events)
    if name.startswith("desc nested"):
        src = tmp_path / "events.json"
        text = json.dumps(evs[:1])[:-1] + ', {"id": 9, "userId": 1, "type": "NDA", "desc": ' \
            + "[" * 3000 + "]" * 3000 + "}]"
        src.write_text(text, encoding="utf-8")
    else:
        mutate(evs)
        src = _write(tmp_path / "events.json", evs)
    ids = {"id0": evs[0]["id"], "id1": evs[1].get("id")}
    _flatten_refused(capsys, src, tuple(f.format(**ids) for f in fragments))


@pytest.mark.parametrize("name, mutate, fragments", RAW_REFUSED, ids=[r[0] for r in RAW_REFUSED])
def test_malformed_json_file_is_refused(events, tmp_path, capsys, name, mutate, fragments) -> None:  # noqa: ANN001
    src = tmp_path / "events.json"
    src.write_text(mutate(json.dumps(events, indent=0)), encoding="utf-8")
    _flatten_refused(capsys, src, fragments)


ACCEPTED: list[tuple[str, Callable[[list[Event]], None]]] = [
    ("sampleFreq null", ev_value("sampleFreq", None)),
    ("sampleFreq missing", ev_value("sampleFreq", None, delete=True)),
    ("sampleFreq 25.0", ev_value("sampleFreq", 25.0)),
    ("hr null", dp_value("hr", None)),
    ("hr -1 (OSDB sensor error)", dp_value("hr", -1)),
    ("rawData3D empty", dp_value("rawData3D", [])),
    ("rawData longer than 125", lambda evs: evs[0]["datapoints"][0]["rawData"].extend([0] * 25)),
    ("integer samples", lambda evs: evs[0]["datapoints"][0].__setitem__("rawData", [1000] * 125)),
    ("unknown datapoint field", dp_value("note", {"a": [1, 2]})),
    ("desc with comma and quote", ev_value("desc", 'a, "b"')),
]


@pytest.mark.parametrize("name, mutate", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_odd_but_valid_events_flatten_and_load_back(events, tmp_path, capsys, name, mutate) -> None:  # noqa: ANN001
    evs = copy.deepcopy(events)
    mutate(evs)
    src = _write(tmp_path / "events.json", evs)
    before = fingerprint(src)
    rc, out, err = run(capsys, "data", "flatten", src, "-o", tmp_path / "out.csv")
    assert rc == 0, err
    assert len(load_csv(tmp_path / "out.csv")) > 0
    assert_untouched(before)
    assert_no_leftovers(tmp_path)


def test_bom_json_is_accepted(events, tmp_path, capsys) -> None:  # noqa: ANN001
    src = tmp_path / "bom.json"
    src.write_bytes(b"\xef\xbb\xbf" + json.dumps(events).encode())
    rc, _, err = run(capsys, "data", "flatten", src, "-o", tmp_path / "out.csv")
    assert rc == 0, err


@pytest.mark.parametrize("how", ["same path", "dot path", "symlink", "hard link", "second of two inputs", "config"])
def test_flatten_output_naming_an_input_is_refused(events, tmp_path, capsys, how) -> None:  # noqa: ANN001
    src = _write(tmp_path / "events.json", events)
    other = _write(tmp_path / "other.json", events[:1])
    cfg = tmp_path / "cfg.json"
    cfg.write_text("{}", encoding="utf-8")
    inputs = [src]
    if how == "same path":
        out = src
    elif how == "dot path":
        out = tmp_path / "." / "events.json"
    elif how == "symlink":
        out = tmp_path / "link.csv"
        out.symlink_to(src)
    elif how == "hard link":
        out = tmp_path / "hard.csv"
        os.link(src, out)
    elif how == "second of two inputs":
        inputs, out = [src, other], other
    else:
        out = cfg
    before = fingerprint(src, other, cfg)
    extra = ("-c", cfg) if how == "config" else ()
    assert_refused(run(capsys, "data", "flatten", *inputs, "-o", out, *extra), "is the input file")
    assert_untouched(before)
    assert_no_leftovers(tmp_path)


# Property: whatever JSON value lands in a datapoint field, flatten either writes a CSV that loads
# back, or raises a one-line DataError; never another exception, never a leftover file.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**40, 10**40) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6)
_FIELDS = st.sampled_from(["rawData", "rawData3D", "hr", "o2Sat", "alarmState", "dataTime", "specPower",
                           "rawData[5]", "rawData3D[9]", "sampleFreq"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=_FIELDS, value=_JSON)
def test_any_value_in_any_field_flattens_cleanly_or_is_refused(events, tmp_path, field, value) -> None:  # noqa: ANN001
    evs = copy.deepcopy(events[:2])
    point = evs[0]["datapoints"][1]
    if field == "sampleFreq":
        evs[0]["sampleFreq"] = value
    elif "[" in field:
        name, index = field[:-1].split("[")
        point[name][int(index)] = value
    else:
        point[field] = value
    src = _write(tmp_path / "prop.json", evs)
    out = tmp_path / "prop.csv"
    out.unlink(missing_ok=True)
    try:
        flatten([src], out)
    except DataError as err:
        assert "\n" not in str(err)
        assert not out.exists()
        return
    df = load_csv(out)
    assert df.filter(like="M").notna().all().all()
    if isinstance(value, float) and not math.isfinite(value) and field.startswith("rawData["):
        pytest.fail("a non-finite sample was written")
