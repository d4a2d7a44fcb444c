"""A hand-computed evaluation fixture: six OSDB events and a stub ONNX model with known probabilities.

Stub model (a real ONNX graph built with onnx.helper, finished through converters.check.finish_onnx):
p(seizure) = clip((mean of the window's newest 125 samples - 1000) / 1000, 0, 1). Every datapoint
here is 125 samples alternating level +- amp (the last at the level), so a window's p is
(level - 1000) / 1000 of its newest datapoint, and 100 * std / mean = 100 * amp * sqrt(124/125) / level.

Events (datapoints 5 s apart; window k ends at datapoint k + 5; p listed per window):
  1 seizure   user 1  Tonic-Clonic  10 dps  p .2 .8 .9 .8 .2   osdAlarmState 2 at datapoint 7
  2 seizure   user 2  Other          8 dps  p .8 .9 .2
  3 seizure   user 2  Tonic-Clonic   9 dps  p .9 .9 .9 .9      windows' datapoints still (amp 10)
  4 NDA       user 1  -             12 dps  p .8 .2 .8 .8 .8 .2 .8   osdAlarmState 2 at datapoint 2
  5 False Alarm user 1  -            7 dps  p .1 .3
  6 seizure   user 1  Tonic-Clonic   5 dps  (no window)
Event 1's seizureTimes is [20, 45] s from its dataTime (its first datapoint); the others have none.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from converters.check import finish_onnx as finish
from converters.contract import ExportInfo, Source
from deepepi.data.osdb import flatten
from deepepi.core.preprocessing import Preprocessing
from onnx_helpers import EXPORTER

WINDOW, DP = 750, 125
MOVING, STILL = 200.0, 10.0
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

# id, user, type, subType, p of each datapoint from the 6th on (earlier ones 0.1), still datapoints, osd rows
EVENTS = [
    (1, 1, "Seizure", "Tonic-Clonic", [.2, .8, .9, .8, .2], set(), {7}),
    (2, 2, "Seizure", "Other", [.8, .9, .2], set(), set()),
    (3, 2, "Seizure", "Tonic-Clonic", [.9, .9, .9, .9], {5, 6, 7, 8}, set()),
    (4, 1, "NDA", None, [.8, .2, .8, .8, .8, .2, .8], set(), {2}),
    (5, 1, "False Alarm", None, [.1, .3], set(), set()),
    (6, 1, "Seizure", "Tonic-Clonic", [], set(), set()),
]
SEIZURE_TIMES = {1: [20, 45]}


def datapoint(level: float, amp: float) -> list[float]:
    x = np.full(DP, level)
    x[:DP - 1] += amp * np.tile([1.0, -1.0], (DP - 1) // 2)
    return x.tolist()


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_json(index: int, spec: tuple) -> dict:
    event_id, user, etype, subtype, ps, still, osd = spec
    start = T0 + timedelta(hours=index)
    levels = [0.1] * 5 + list(ps)
    points = [{"dataTime": _iso(start + timedelta(seconds=5 * j)), "alarmState": 2 if j in osd else 0,
               "hr": 70, "o2Sat": 97,
               "rawData": datapoint(1000.0 + 1000.0 * p, STILL if j in still else MOVING)}
              for j, p in enumerate(levels)]
    return {"id": event_id, "userId": user, "type": etype, "subType": subtype, "desc": "fixture",
            "dataTime": _iso(start), "osdAlarmState": 0, "sampleFreq": 25,
            "seizureTimes": SEIZURE_TIMES.get(event_id, []), "dataSourceName": "fixture", "datapoints": points}


def write_data(directory: Path) -> tuple[Path, Path]:
    """(OSDB JSON, flattened CSV) of the fixture events."""
    directory.mkdir(parents=True, exist_ok=True)
    js = directory / "fixture.json"
    js.write_text(json.dumps([event_json(i, e) for i, e in enumerate(EVENTS)]), encoding="utf-8")
    csv = directory / "fixture.csv"
    flatten([js], csv)
    return js, csv


def stub_reference(raw: np.ndarray) -> np.ndarray:
    p1 = np.clip((raw[:, -DP:].astype(np.float32).mean(axis=1) - 1000.0) * 1e-3, 0.0, 1.0)
    return np.stack([1.0 - p1, p1], axis=1).astype(np.float32)


def write_stub_model(path: Path) -> Path:
    f32 = np.float32
    consts = {"starts": np.array([WINDOW - DP], np.int64), "ends": np.array([WINDOW], np.int64),
              "axes": np.array([1], np.int64), "offset": np.array(1000.0, f32), "scale": np.array(1e-3, f32),
              "lo": np.array(0.0, f32), "hi": np.array(1.0, f32), "one": np.array(1.0, f32)}
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["newest"]),
             helper.make_node("ReduceMean", ["newest"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Sub", ["mean", "offset"], ["centred"]),
             helper.make_node("Mul", ["centred", "scale"], ["scaled"]),
             helper.make_node("Clip", ["scaled", "lo", "hi"], ["p1"]),
             helper.make_node("Sub", ["one", "p1"], ["p0"]),
             helper.make_node("Concat", ["p0", "p1"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "stub",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WINDOW])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                              [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    source = Source(file="stub", sha256="0" * 64, sample_freq=25, step=DP, preprocessing=Preprocessing())
    info = ExportInfo(source, window=WINDOW, num_classes=2, trainable_parameters=0, spec_json='{"stub": true}')
    finish(model, path, info, EXPORTER, stub_reference)
    return path
