"""Shared checks of the hostile-input suite (tests/cli/test_hostile_*.py).

Every case runs the real `deepepi` entry point (in-process, so hundreds of cases stay fast) and
asserts the promise of README: exit code as documented, one `deepepi: error:` line on stderr
(warnings aside), no traceback, the inputs byte-identical afterwards, no half-written output and
no temporary file left behind.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest

from deepepi.cli import main
from deepepi.core.io import TEMP_PREFIX


def run(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """Run `deepepi ARGS` in-process: (exit code, stdout, stderr). Any exception other than the
    CLI's own SystemExit propagates and fails the test: that would be a traceback for a user."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and not line.startswith("deepepi: warning:")]


def assert_refused(result: tuple[int, str, str], *fragments: str, code: int = 2) -> str:
    """Exit ``code``, exactly one `deepepi: error:` line holding every fragment, no traceback."""
    rc, out, err = result
    assert "Traceback" not in out + err
    lines = error_lines(err)
    assert rc == code, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("deepepi: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def fingerprint(*paths: Path) -> dict[Path, str]:
    """sha256 of each input file, to prove a command left it untouched."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def assert_untouched(before: dict[Path, str]) -> None:
    assert fingerprint(*before) == before


def assert_no_leftovers(folder: Path, *absent: Path) -> None:
    """No deepepi temp file in ``folder`` and none of the ``absent`` outputs was created."""
    temps = [p.name for p in folder.rglob(f"{TEMP_PREFIX}*")]
    assert temps == [], temps
    for path in absent:
        assert not path.exists(), path


# ----- material of the third round (tests/cli/test_hostile_round3.py) ------------------------------
def nan_rows_model(stub: Path, out: Path) -> Path:
    """The evaluation fixture's stub model (tests/helpers/evaluate_fixture.py) made to answer NaN for
    the windows whose newest datapoint is at level p <= 0.15 (the fixture's p 0.1 rows), finite
    probabilities elsewhere: a model broken on some inputs only, as a real NaN weight path is."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(stub)
    graph = model.graph
    for init in graph.initializer:
        if init.name.endswith("offset"):
            init.CopyFrom(numpy_helper.from_array(np.array(1150.0, np.float32), init.name))
    clip = next(i for i, n in enumerate(graph.node) if n.op_type == "Clip")
    p1 = graph.node[clip].output[0]
    graph.node[clip].output[0] = "p1_raw"
    extra = [helper.make_node("Log", ["p1_raw"], ["p1_log"]),           # log 0 = -inf
             helper.make_node("Sub", ["p1_log", "p1_log"], ["p1_nan"]),  # -inf - -inf = NaN, else 0
             helper.make_node("Add", ["p1_raw", "p1_nan"], [p1])]
    for k, node in enumerate(extra):
        graph.node.insert(clip + 1 + k, node)
    onnx.save(model, out)
    return out


def with_seizure_times(src: Path, out: Path, value: object, event_index: int = 0) -> Path:
    """The fixture's OSDB JSON with one event's ``seizureTimes`` replaced by ``value`` (raw JSON text
    when ``value`` is a str starting with '@', so NaN and 1e999 reach the reader as written)."""
    import json

    events = json.loads(src.read_text(encoding="utf-8"))
    marker = "__seizure_times__"
    events[event_index]["seizureTimes"] = marker
    text = json.dumps(events)
    raw = value[1:] if isinstance(value, str) and value.startswith("@") else json.dumps(value)
    out.write_text(text.replace(f'"{marker}"', raw), encoding="utf-8")
    return out


REF_FILTERS = (16,) + (32,) * 11 + (64, 64)
REF_STRIDES = (1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1)
REF_DENSE = (64, 64, 32, 16)


def reference_torch_state() -> dict:
    """A state_dict in the reference nnTraining2 PyTorch layout (conv_stack.N, fc1..fc4, bn1..bn4,
    fc_out; tests/runs/test_import.py documents it), seeded, BatchNorm at its initial statistics."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model, layers, prev = nn.Module(), [], 1
    for filters, stride in zip(REF_FILTERS, REF_STRIDES):
        layers += [nn.Conv1d(prev, filters, 5, stride=stride), nn.BatchNorm1d(filters), nn.ReLU()]
        prev = filters
    model.conv_stack = nn.Sequential(*layers)
    widths = (prev, *REF_DENSE)
    for i in range(1, 5):
        setattr(model, f"fc{i}", nn.Linear(widths[i - 1], widths[i]))
        setattr(model, f"bn{i}", nn.BatchNorm1d(widths[i]))
    model.fc_out = nn.Linear(REF_DENSE[-1], 2)
    return {k: v.clone() for k, v in model.state_dict().items()}


def reference_torch_config(directory: Path) -> Path:
    """A reference-shaped PyTorch config (no deepepi architecture keys) for `deepepi import`."""
    import json

    path = directory / "ref_pytorch.json"
    path.write_text(json.dumps({"randomSeed": 42, "dataProcessing": {"window": 750, "step": 125},
                                "modelConfig": {"framework": "pytorch", "modelFname": "deepEpiCnnModel",
                                                "modelClass": "user_tools.nnTraining2.deepEpiCnnModel_torch."
                                                              "DeepEpiCnnModelPyTorch",
                                                "sampleFreq": 25, "bufferSeconds": 30, "nLayers": 14}}))
    return path
