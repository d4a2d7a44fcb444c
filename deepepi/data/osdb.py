"""OSDB JSON release files -> the flattened 510-column CSV, streamed one event at a time.

Memory is bounded by one event, not by the file: the JSON array is decoded element by element
(``json.JSONDecoder.raw_decode`` over buffered reads) and each event's rows are written before the
next event is read. The CSV appears under its final name only when every input file was read.

Rules applied to each event (documented here because they decide what the model is trained on):
- label: type "Seizure" -> 1; "False Alarm" and "NDA" -> 0; any other type is excluded.
- id, userId and type are required; a missing or mistyped one is a DataError naming the file,
  the event index and the field. subType, desc, dataSourceName, osdAlarmState may be absent
  (a missing or null subType is matched as the text "null" by the subtype filters).
- datapoints: a datapoint without rawData, or whose rawData is all zeros, has no acceleration and
  is skipped. rawData longer than 125 keeps its first 125 values (OSDB pads some with zeros);
  rawData whose non-zero part is shorter than 125 is incomplete and skipped. rawData3D is used
  when it holds at least 375 values that are not all zero (de-interleaved x1,y1,z1,x2,...);
  otherwise the X/Y/Z cells are left empty. Missing hr / o2Sat are left empty; -1 is kept.
- dataTime (datapoint) is written as ISO 8601 UTC, ``YYYY-MM-DDTHH:MM:SSZ``; osdAlarmState is the
  datapoint's alarmState (the event's osdAlarmState where a datapoint lacks it).
- sampleFreq: the CSV holds 25 Hz (125 samples per 5-s datapoint). An event whose sampleFreq is
  another rate is refused with a DataError naming it (its rawData would otherwise be cut or
  padded as if it were 25 Hz); a missing or null sampleFreq is taken as 25 Hz, as in OSDB releases.
- samples: every rawData / rawData3D value must be a JSON number that is finite as float32 (no
  true/false, null, text, NaN, Infinity or 1e39); the error names the event id, the datapoint
  index and the sample index. hr, o2Sat, alarmState, specPower, roiPower are numbers or null.
- nesting: an event nested deeper than the format (event > datapoints > datapoint > rawData) by
  more than two levels is refused before it is decoded (deepepi.core.jsonlimits).
- eventFilters: include/exclude lists of user ids, types, subtypes and data sources (exact match,
  compared as text); includeText/excludeText match ``desc`` case-insensitively as substrings;
  requireHrData / requireO2SatData / require3dData keep an event only when every written
  datapoint has hr > 0 / o2Sat > 0 / 3D data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, TextIO

import numpy as np

from deepepi.core.constants import SAMPLE_FREQ_HZ, SAMPLES_PER_DATAPOINT
from deepepi.data.csvio import CSV_COLUMNS
from deepepi.core.errors import DataError
from deepepi.core.io import atomic_path, open_input, refuse_overwrite
from deepepi.core.jsonlimits import EVENT_MAX_DEPTH, check_depth

LABELS = {"seizure": 1, "false alarm": 0, "nda": 0}
_READ_CHARS = 1 << 20
_MAX_EVENT_CHARS = 1 << 28
_WHITESPACE = " \t\r\n"
_DATE_FORMATS = ("%d-%m-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S")
_N3D = 3 * SAMPLES_PER_DATAPOINT
_EMPTY_3D = "," * (_N3D - 1)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class FlattenStats:
    """What flatten read, kept and dropped, so a user can see why rows are missing."""

    events_read: int = 0
    events_written: int = 0
    rows_written: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    datapoints_skipped: dict[str, int] = field(default_factory=dict)

    def exclude(self, reason: str) -> None:
        self.excluded[reason] = self.excluded.get(reason, 0) + 1

    def skip(self, reason: str) -> None:
        self.datapoints_skipped[reason] = self.datapoints_skipped.get(reason, 0) + 1

    def summary(self) -> str:
        parts = [f"{self.events_read} events read, {self.events_written} written, "
                 f"{self.rows_written} rows"]
        if self.excluded:
            parts.append("excluded: " + ", ".join(f"{k} {v}" for k, v in sorted(self.excluded.items())))
        if self.datapoints_skipped:
            parts.append("datapoints skipped: "
                         + ", ".join(f"{k} {v}" for k, v in sorted(self.datapoints_skipped.items())))
        return "; ".join(parts)


class _Reader:
    """Buffered text reader that hands out JSON values one at a time."""

    def __init__(self, fh: TextIO, path: Path) -> None:
        self.fh, self.path = fh, path
        self.buf, self.pos, self.eof = "", 0, False
        self.lines = 1  # 1 + newlines already dropped from ``buf``
        self.decoder = json.JSONDecoder()

    def _fill(self, n: int) -> None:
        if self.pos:
            self.lines += self.buf.count("\n", 0, self.pos)
            self.buf, self.pos = self.buf[self.pos:], 0
        more = self.fh.read(n)
        self.eof = more == ""
        self.buf += more

    def where(self, pos: int) -> str:
        line = self.lines + self.buf.count("\n", 0, pos)
        return f"line {line}"

    def peek(self) -> str:
        """Next non-whitespace character ('' at end of file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos:self.pos + 1]
            self._fill(_READ_CHARS)

    def expect(self, char: str, what: str) -> None:
        got = self.peek()
        if got != char:
            shown = repr(got) if got else "end of file"
            raise DataError(f"{self.where(self.pos)}: expected {what}, found {shown}", source=str(self.path))
        self.pos += 1

    def value(self, index: int) -> Any:
        self.peek()
        want = _READ_CHARS
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except RecursionError:
                raise DataError(f"event {index}: JSON nested deeper than the OSDB format allows "
                                f"({EVENT_MAX_DEPTH} levels)", source=str(self.path)) from None
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise DataError(f"event {index}: malformed JSON at {self.where(exc.pos)}: {exc.msg}",
                                    source=str(self.path)) from None
                if len(self.buf) - self.pos > _MAX_EVENT_CHARS:
                    raise DataError(f"event {index}: malformed JSON or an event over "
                                    f"{_MAX_EVENT_CHARS} characters ({exc.msg})", source=str(self.path)) from None
                self._fill(want)
                want *= 2
                continue
            if end == len(self.buf) and not self.eof and self.buf[self.pos] not in "{[\"":
                self._fill(want)  # a number may continue in the next read
                continue
            check_depth(self.buf[self.pos:end], EVENT_MAX_DEPTH, DataError, source=str(self.path),
                        what=f"event {index}")
            self.pos = end
            return obj


def iter_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the events of an OSDB JSON file (a JSON array of objects) one at a time."""
    path = Path(path)
    with open_input(path, "OSDB JSON", DataError, encoding="utf-8-sig") as fh:
        reader = _Reader(fh, path)
        try:
            reader.expect("[", "a JSON array of events ('[')")
            index = 0
            if reader.peek() == "]":
                reader.pos += 1
            else:
                while True:
                    event = reader.value(index)
                    if not isinstance(event, dict):
                        raise DataError(f"event {index}: expected a JSON object, got {type(event).__name__}",
                                        source=str(path))
                    yield event
                    index += 1
                    if reader.peek() == "]":
                        reader.pos += 1
                        break
                    reader.expect(",", f"',' or ']' after event {index - 1}")
            if reader.peek() != "":
                raise DataError(f"{reader.where(reader.pos)}: unexpected text after the event array",
                                source=str(path))
        except UnicodeDecodeError:
            raise DataError("not UTF-8 text", source=str(path)) from None


def _text(value: Any) -> str:
    return "null" if value is None else str(value)


def _iso_time(value: Any, where: str, path: Path) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        stamp = datetime.fromtimestamp(value / 1000.0 if value > 1e11 else value, tz=timezone.utc)
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            stamp = None
            for fmt in _DATE_FORMATS:
                try:
                    stamp = datetime.strptime(value, fmt)
                    break
                except ValueError:
                    continue
            if stamp is None:
                raise DataError(f"{where}: dataTime {value!r} is not a date-time", source=str(path)) from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
    else:
        raise DataError(f"{where}: dataTime missing or not text ({value!r})", source=str(path))
    stamp = stamp.astimezone(timezone.utc)
    frac = f".{stamp.microsecond:06d}".rstrip("0") if stamp.microsecond else ""
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def epoch_seconds(value: Any, where: str, path: str | Path) -> float:
    """An OSDB date-time (text in the release formats, or epoch s / ms) as epoch seconds UTC."""
    iso = _iso_time(value, where, Path(path))
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _csv_text(text: str) -> str:
    """Quote a text cell the way CSV readers expect when it holds a comma, quote or line break."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _finite(value: Any) -> bool:
    """A JSON number the CSV reader will take back: not bool, finite and within float32 range."""
    return type(value) in (int, float) and abs(value) <= _FLOAT32_MAX


def _number(value: Any, name: str, where: str, path: Path) -> str:
    """A scalar cell: '' when absent/null, else the JSON number as written."""
    if value is None:
        return ""
    if not _finite(value):
        raise DataError(f"{where}: {name} must be a number (finite, within float32 range), got {value!r}", source=str(path))
    return str(value)


def _samples(values: Any, name: str, where: str, path: Path) -> np.ndarray | None:
    if values is None:
        return None
    if not isinstance(values, list):
        raise DataError(f"{where}: {name} must be a list of numbers, got {type(values).__name__}",
                        source=str(path))
    bad = next((i for i, v in enumerate(values) if not _finite(v)), None)
    if bad is not None:
        raise DataError(f"{where}: {name}[{bad}] is {values[bad]!r}, expected a finite number",
                        source=str(path))
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _check_rate(event: Mapping[str, Any], where: str, path: Path) -> None:
    rate = event.get("sampleFreq")
    if rate is None:
        return
    if not _finite(rate) or rate <= 0:
        raise DataError(f"{where}: sampleFreq must be a positive number, got {rate!r}", source=str(path))
    if rate != SAMPLE_FREQ_HZ:
        raise DataError(f"{where}: sampleFreq {rate} Hz; the flattened CSV holds {SAMPLE_FREQ_HZ} Hz "
                        f"({SAMPLES_PER_DATAPOINT} samples per 5-s datapoint): resample the recording to "
                        f"{SAMPLE_FREQ_HZ} Hz first", source=str(path))


@dataclass(frozen=True)
class _Filters:
    include_users: frozenset[str]
    exclude_users: frozenset[str]
    include_types: frozenset[str]
    exclude_types: frozenset[str]
    include_subtypes: frozenset[str]
    exclude_subtypes: frozenset[str]
    include_sources: frozenset[str]
    exclude_sources: frozenset[str]
    include_text: tuple[str, ...]
    exclude_text: tuple[str, ...]
    require_hr: bool
    require_o2: bool
    require_3d: bool

    @classmethod
    def from_mapping(cls, f: Mapping[str, Any] | None) -> "_Filters":
        f = f or {}

        def texts(key: str) -> frozenset[str]:
            return frozenset(str(v) for v in f.get(key, []) or [])

        return cls(texts("includeUserIds"), texts("excludeUserIds"), texts("includeTypes"),
                   texts("excludeTypes"), texts("includeSubTypes"), texts("excludeSubTypes"),
                   texts("includeDataSources"), texts("excludeDataSources"),
                   tuple(str(v).lower() for v in f.get("includeText", []) or []),
                   tuple(str(v).lower() for v in f.get("excludeText", []) or []),
                   bool(f.get("requireHrData", False)), bool(f.get("requireO2SatData", False)),
                   bool(f.get("require3dData", False)))

    def reject(self, event: Mapping[str, Any]) -> str | None:
        """The name of the first filter that excludes ``event``, or None to keep it."""
        checks = (("userId", _text(event.get("userId")), self.include_users, self.exclude_users),
                  ("type", _text(event.get("type")), self.include_types, self.exclude_types),
                  ("subType", _text(event.get("subType")), self.include_subtypes, self.exclude_subtypes),
                  ("dataSource", _text(event.get("dataSourceName")), self.include_sources,
                   self.exclude_sources))
        for name, value, include, exclude in checks:
            if include and value not in include:
                return f"{name} not included"
            if value in exclude:
                return f"{name} excluded"
        desc = _text(event.get("desc")).lower() if event.get("desc") is not None else ""
        if self.include_text and not any(t in desc for t in self.include_text):
            return "desc text not included"
        if any(t in desc for t in self.exclude_text):
            return "desc text excluded"
        return None


def _event_rows(event: dict[str, Any], index: int, path: Path, filters: _Filters,
                stats: FlattenStats) -> list[str]:
    """CSV lines of one event ([] when it is excluded or has no usable datapoint)."""
    where = f"event {index}"
    for key in ("id", "userId", "type"):
        if key not in event:
            raise DataError(f"{where}: missing field {key!r}", source=str(path))
    event_id, user_id, etype = event["id"], event["userId"], event["type"]
    for key, value in (("id", event_id), ("userId", user_id)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"{where}: field {key!r} must be an integer, got {value!r}", source=str(path))
    where = f"event {index} (id {event_id})"
    if not isinstance(etype, str):
        raise DataError(f"{where}: field 'type' must be text, got {etype!r}", source=str(path))
    label = LABELS.get(etype.strip().lower())
    if label is None:
        stats.exclude(f"type {etype!r}")
        return []
    reason = filters.reject(event)
    if reason is not None:
        stats.exclude(reason)
        return []
    _check_rate(event, where, path)
    datapoints = event.get("datapoints")
    if datapoints is None:
        stats.exclude("no datapoints")
        return []
    if not isinstance(datapoints, list):
        raise DataError(f"{where}: field 'datapoints' must be a list", source=str(path))
    type_str = _csv_text(f"{etype}/{_text(event.get('subType'))}")
    alarm = _number(event.get("osdAlarmState"), "osdAlarmState", where, path)
    rows: list[str] = []
    for j, dp in enumerate(datapoints):
        dwhere = f"{where}, datapoint {j}"
        if not isinstance(dp, dict):
            raise DataError(f"{dwhere}: expected a JSON object", source=str(path))
        raw = _samples(dp.get("rawData"), "rawData", dwhere, path)
        nonzero = np.flatnonzero(raw) if raw is not None else np.empty(0, dtype=np.intp)
        if nonzero.size == 0:
            stats.skip("no acceleration")
            continue
        if nonzero[-1] + 1 < SAMPLES_PER_DATAPOINT:
            stats.skip("rawData shorter than 125")
            continue
        raw3d = _samples(dp.get("rawData3D"), "rawData3D", dwhere, path)
        has_3d = raw3d is not None and raw3d.size >= _N3D and bool(np.any(raw3d[:_N3D]))
        hr = _number(dp.get("hr"), "hr", dwhere, path)
        o2 = _number(dp.get("o2Sat"), "o2Sat", dwhere, path)
        if (filters.require_hr and not (hr and float(hr) > 0)) \
                or (filters.require_o2 and not (o2 and float(o2) > 0)) \
                or (filters.require_3d and not has_3d):
            stats.exclude("required hr/o2Sat/3D data missing")
            return []
        values = dp["rawData"][:SAMPLES_PER_DATAPOINT]
        if has_3d:
            flat3d = dp["rawData3D"][:_N3D]
            axes = ",".join(map(str, flat3d[0::3] + flat3d[1::3] + flat3d[2::3]))
        else:
            axes = _EMPTY_3D
        meta = (str(event_id), str(user_id), type_str, str(label), _iso_time(dp.get("dataTime"), dwhere, path),
                _number(dp.get("alarmState"), "alarmState", dwhere, path) or alarm,
                _number(dp.get("specPower"), "specPower", dwhere, path),
                _number(dp.get("roiPower"), "roiPower", dwhere, path), hr, o2)
        rows.append(f"{','.join(meta)},{','.join(map(str, values))},{axes}\n")
    if not rows:
        stats.exclude("no usable datapoints")
    return rows


def flatten(paths: Iterable[str | Path], out_csv: str | Path,
            filters: Mapping[str, Any] | None = None) -> FlattenStats:
    """Stream OSDB JSON files into one CSV (510 columns), applying ``filters`` (config eventFilters)."""
    rules = _Filters.from_mapping(filters)
    stats = FlattenStats()
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no OSDB JSON files given")
    refuse_overwrite(out_csv, paths)
    with atomic_path(out_csv) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(CSV_COLUMNS) + "\n")
            for path in paths:
                for index, event in enumerate(iter_events(path)):
                    stats.events_read += 1
                    rows = _event_rows(event, index, path, rules, stats)
                    if rows:
                        fh.writelines(rows)
                        stats.events_written += 1
                        stats.rows_written += len(rows)
    return stats


__all__ = ["FlattenStats", "LABELS", "epoch_seconds", "flatten", "iter_events"]
