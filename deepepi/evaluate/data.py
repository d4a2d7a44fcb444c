"""What evaluation runs on: raw milli-g windows with their labels, and one row per event.

Inputs are flattened CSVs and/or OSDB JSON release files (flattened through ``data.source.read_json``
into a temporary CSV, applying the config's eventFilters). Windows are cut by the very function
training uses (``data.windows.windows_from_config``, milli-g kept: the runtimes take raw input), with
the same config keys (window, step, ``validateDatapoints``); ``runtimes.windowing`` picks that config for
evaluate, predict and verify alike.

Time base: a datapoint's ``dataTime`` is the time of its last sample, so an event's recording
starts 5 s before its first datapoint and a window's time is its last datapoint's ``dataTime``.

Seizure onset (for latency) reaches evaluation through the OSDB JSON: ``seizureTimes`` [start, end]
in seconds from the event's ``dataTime``. The flattened CSV has no such column, so events read from
a CSV (or JSON events without a usable ``seizureTimes``) measure latency from the recording start;
``onset_source`` says which was used for each event.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from deepepi.core.config import Config
from deepepi.core.constants import DATAPOINT_SECONDS, OSD_ALARM_STATE, SAMPLES_PER_DATAPOINT
from deepepi.core.errors import DataError
from deepepi.data.csvio import WINDOW_COLUMNS, load_csv
from deepepi.data.dataset import osd_alarm
from deepepi.data.osdb import epoch_seconds, iter_events
from deepepi.data.source import is_json, read_json
from deepepi.data.windows import gap_from_config, windows_from_config
from deepepi.scoring.evaldata import ONSET_RECORDING_START, ONSET_SEIZURE_TIMES, EvalData
from deepepi.scoring.segments import restart_segments

__all__ = ["COLUMNS", "EvalData", "ONSET_RECORDING_START", "ONSET_SEIZURE_TIMES", "load"]

COLUMNS = (*WINDOW_COLUMNS, "typeStr", "osdAlarmState")


def _seizure_interval(event: Mapping[str, Any], where: str, path: Path) -> tuple[float, float] | None:
    """(onset, end) epoch seconds from seizureTimes; None when absent or empty. Anything else that is
    not [start, end] seconds (finite numbers, start <= end) is a DataError naming event and file: a
    malformed onset silently read as "none" would move every latency to the recording start."""
    times = event.get("seizureTimes")
    if times is None or times == []:
        return None
    if not (isinstance(times, list) and len(times) == 2
            and all(type(t) in (int, float) and math.isfinite(t) for t in times) and times[0] <= times[1]):
        raise DataError(f"{where} (id {event.get('id')!r}): seizureTimes {str(times)[:80]}: expected [start, end] "
                        "in seconds from the event's dataTime (finite numbers, start <= end)", source=str(path))
    base = epoch_seconds(event.get("dataTime"), where, path)
    return base + float(times[0]), base + float(times[1])


def _json_onsets(paths: Iterable[Path]) -> dict[int, tuple[float, float, str]]:
    onsets: dict[int, tuple[float, float, str]] = {}
    for path in paths:
        for index, event in enumerate(iter_events(path)):
            interval = _seizure_interval(event, f"event {index}", path)
            if interval is not None and isinstance(event.get("id"), (int, str)):
                try:
                    onsets[int(event["id"])] = (*interval, str(path))
                except ValueError:
                    continue
    return onsets


def _read_frames(paths: list[Path], filters: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[int, tuple[float, float, str]]]:
    json_paths = [p for p in paths if is_json(p)]
    csv_paths = [p for p in paths if not is_json(p)]
    frames = [load_csv(p, columns=COLUMNS) for p in csv_paths]
    onsets: dict[int, tuple[float, float, str]] = {}
    if json_paths:
        frames.append(read_json(json_paths, filters, columns=COLUMNS, prefix="deepepi-evaluate-"))
        onsets = _json_onsets(json_paths)
    ids = [set(np.unique(f["eventId"]).tolist()) for f in frames]
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            shared = ids[i] & ids[j]
            if shared:
                raise DataError(f"event id {min(shared)} appears in more than one --data input")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0], onsets


def _events_table(df: pd.DataFrame, onsets: dict[int, tuple[float, float, str]]) -> pd.DataFrame:
    grouped = df[["eventId", "userId", "type", "typeStr", "dataTime"]].groupby("eventId", sort=True)
    osd = (df["osdAlarmState"].fillna(0) >= OSD_ALARM_STATE).groupby(df["eventId"], sort=True)
    events = pd.DataFrame({
        "eventId": grouped["eventId"].first().astype(np.int64),
        "userId": grouped["userId"].first().astype(np.int64),
        "label": grouped["type"].first().astype(np.int64),
        "typeStr": grouped["typeStr"].first().fillna("").astype(str),
        "start": grouped["dataTime"].min() - DATAPOINT_SECONDS,
        "end": grouped["dataTime"].max(),
        "osd_detected": osd.any(),
    }).reset_index(drop=True)
    events["subtype"] = [t.split("/", 1)[1] if "/" in t else "" for t in events["typeStr"]]
    interval = [onsets.get(int(e)) for e in events["eventId"]]
    for iv, e, start, end in zip(interval, events["eventId"], events["start"], events["end"]):
        if iv and (iv[0] > end or iv[1] < start):  # an onset the recording never reached: no latency
            raise DataError(f"event {int(e)}: seizureTimes put the seizure at {iv[0] - start:.1f} to "
                            f"{iv[1] - start:.1f} s from the recording start, outside the recording "
                            f"(0 to {end - start:.1f} s)", source=iv[2])
    events["onset"] = [iv[0] if iv else s for iv, s in zip(interval, events["start"])]
    events["seizure_end"] = [iv[1] if iv else e for iv, e in zip(interval, events["end"])]
    events["onset_source"] = [ONSET_SEIZURE_TIMES if iv else ONSET_RECORDING_START for iv in interval]
    return events


def load(paths: Iterable[str | Path], cfg: Config, *, filters: Mapping[str, Any] | None = None) -> EvalData:
    """Read every input, cut raw windows as training does under ``cfg`` and build the events table."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no --data given (a flattened CSV or OSDB JSON file)")
    df, onsets = _read_frames(paths, filters or {})
    window, step, sample_freq = cfg.window, int(cfg.processing["step"]), int(cfg.model["sampleFreq"])
    windows = windows_from_config(df, cfg, raw=True)
    if len(windows) == 0:
        raise DataError(f"no complete {window}-sample windows in the data (every event is shorter "
                        f"than {window // SAMPLES_PER_DATAPOINT} datapoints)", source=str(paths[0]))
    events = _events_table(df, onsets)
    position = pd.Series(np.arange(len(events)), index=events["eventId"].to_numpy())
    return EvalData(
        X=windows.X, y=windows.y, end_time=windows.end_time,
        osd=osd_alarm(df, windows, missing_negative=True),
        segment=restart_segments(windows.event_id, windows.end_time, gap_seconds=gap_from_config(cfg)),
        window_event=position.reindex(windows.event_id).to_numpy(dtype=np.int64),
        events=events, hop_s=step / float(sample_freq), sources=[str(p) for p in paths])
