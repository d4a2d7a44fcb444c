"""Framework-free parts of the deployment path: the app metadata sidecar, the quantised-accuracy
gate, console capture, and the errors for unusable deployment files."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from converters import app_meta
from converters.contract import META_KEYS, THRESHOLD_KEY
from deepepi.core.errors import UnusableInputError
from deepepi.core.quiet import captured_output
from converters.check import GateRow, quantized_gate
from deepepi.data.windows import Windows
from deepepi.scoring.decision import Decision, windows_data
from deepepi.scoring.evaldata import EvalData
from onnx_helpers import cli, tiny_weights, write_tiny

PROVENANCE = {key: f"v-{key}" for key in META_KEYS}


def test_sidecar_carries_the_app_keys_and_the_decision_threshold(tmp_path):
    data = app_meta.build(app_meta.TFLITE, {**PROVENANCE, THRESHOLD_KEY: "0.37"}, window=750,
                          acc_sd_threshold_pct=None)
    assert data["framework"] == "tflite" and data["input_size"] == 750 and data["input_format_val"] == 1
    assert data["seizure_probability_threshold_pct"] == pytest.approx(37.0)
    assert data["accel_std_threshold_pct"] == app_meta.APP_DEFAULT_ACC_SD_PCT
    assert data[THRESHOLD_KEY] == pytest.approx(0.37)
    assert data["io"] == {"input_shape": [1, 750, 1], "input_dtype": "float32", "input_unit": "g",
                          "output": "probabilities"}
    path = app_meta.write(tmp_path / "m.tflite", data)
    assert path.name == "m.tflite.json"
    back = app_meta.read(tmp_path / "m.tflite")
    meta = app_meta.runtime_metadata(back)
    assert {k: meta[k] for k in META_KEYS} == PROVENANCE and float(meta[THRESHOLD_KEY]) == 0.37
    assert app_meta.check_convention(back, app_meta.TFLITE, "m") == 750
    with pytest.raises(UnusableInputError, match=r"needs \[1, 1, 750\] in g with logits out"):
        app_meta.check_convention(back, app_meta.PTE, "m")


def test_sidecar_without_threshold_uses_the_app_default():
    data = app_meta.build(app_meta.PTE, PROVENANCE, window=750, acc_sd_threshold_pct=3.0)
    assert data["framework"] == "pytorch" and THRESHOLD_KEY not in data
    assert data["seizure_probability_threshold_pct"] == 50.0 and data["accel_std_threshold_pct"] == 3.0
    assert data["io"]["output"] == "logits" and data["io"]["input_shape"] == [1, 1, 750]


@pytest.mark.parametrize("content, message", [(None, "file not found"), ("{", "not valid JSON"),
                                              ('{"input_size": 750}', "lacks io, deepepi"),
                                              ("[1, 2]", "lacks input_size")])
def test_unusable_sidecar_is_one_line_exit_2(tmp_path, capsys, content, message):
    w, b = tiny_weights(750)
    write_tiny(tmp_path / "a.onnx", w, b)
    (tmp_path / "m.tflite").write_bytes(b"TFL3 not really a model")
    if content is not None:
        (tmp_path / "m.tflite.json").write_text(content)
    code, out, err = cli(capsys, "verify", tmp_path / "a.onnx", tmp_path / "m.tflite", "--random", 4)
    assert code == 2 and out == "" and message in err
    assert err.startswith("deepepi: error: ") and len(err.strip().splitlines()) == 1


def _labels_and_events() -> tuple[np.ndarray, np.ndarray]:
    # 10 seizure events of 10 windows each, 10 non-seizure events of 10 windows each.
    labels = np.repeat([1] * 10 + [0] * 10, 10)
    return labels, np.repeat(np.arange(20), 10)


def _data(labels: np.ndarray, events: np.ndarray) -> EvalData:
    """Labelled windows for the gate (flat samples: the gate is off in these decisions anyway)."""
    n = len(labels)
    windows = Windows(X=np.full((n, 250), 1000.0, np.float32), y=labels, event_id=events,
                      user_id=np.zeros(n, np.int64), end_time=np.arange(n) * 5.0)
    return windows_data(windows, hop_s=5.0, gap_seconds=7.5, window_seconds=10.0)


def _probs(positive: np.ndarray) -> np.ndarray:
    p1 = np.where(positive, 0.9, 0.1)
    return np.stack([1 - p1, p1], axis=1)


RAW = Decision(threshold=0.5, acc_sd_threshold=0.0, logic="raw")  # an event detected by any positive window


def _drop(a: np.ndarray, b: np.ndarray, labels: np.ndarray, events: np.ndarray, decision: Decision = RAW,
          max_drop: float = 0.01) -> GateRow:
    rows = quantized_gate(a, b, data=_data(labels, events), decision=decision, max_drop=max_drop)
    return next(r for r in rows if r.name == "quantised accuracy drop")


def test_quantized_drop_passes_within_one_point_and_fails_past_it():
    labels, events = _labels_and_events()
    fp32 = labels == 1
    # 2 of 100 seizure windows lost (2 points of window TPR), no event lost: fails.
    lost_two = fp32.copy()
    lost_two[[0, 10]] = False
    check = _drop(_probs(fp32), _probs(lost_two), labels, events)
    assert check.ok is False and check.figures["drops"]["window TPR"] == pytest.approx(0.02)
    assert check.figures["drops"]["event sensitivity"] == 0.0
    # 1 window lost (1 point): passes at the limit.
    lost_one = fp32.copy()
    lost_one[0] = False
    assert _drop(_probs(fp32), _probs(lost_one), labels, events).ok is True
    # A whole event lost (10 points of event sensitivity): fails.
    lost_event = fp32.copy()
    lost_event[:10] = False
    check = _drop(_probs(fp32), _probs(lost_event), labels, events)
    assert check.ok is False and check.figures["drops"]["event sensitivity"] == pytest.approx(0.1)


def test_quantized_drop_uses_the_strict_decision_threshold():
    labels, events = _labels_and_events()
    p = _probs(labels == 1)
    at_threshold = p.copy()
    at_threshold[labels == 1] = [0.1, 0.9]
    at_threshold[0] = [0.3, 0.7]  # p1 equal to the threshold is negative (strict)
    check = _drop(p, at_threshold, labels, events, decision=RAW.with_threshold(0.7, "test"), max_drop=0.0)
    assert check.ok is False and check.figures["b"]["window"]["fn"] == 1


def test_quantized_drop_without_seizures_cannot_pass():
    labels = np.zeros(20, dtype=np.int64)
    p = _probs(np.zeros(20, dtype=bool))
    check = _drop(p, p, labels, np.arange(20))
    assert check.ok is False and "no seizure windows" in check.detail


def test_the_gate_checks_decisions_and_one_class_models_at_the_decision():
    """Argmax agreement alone misses flips at the model's threshold; a model that never fires at the
    decision FAILS like a one-class model in the label-using modes."""
    labels, events = _labels_and_events()
    p1 = np.where(labels == 1, 0.45, 0.2)
    a = np.stack([1 - p1, p1], axis=1)
    b = a.copy()
    b[labels == 1, 1] = 0.38  # same argmax everywhere, but below the threshold 0.4
    b[:, 0] = 1 - b[:, 1]
    rows = {r.name: r for r in quantized_gate(a, b, data=_data(labels, events), decision=RAW.with_threshold(0.4, "t"))}
    assert rows["argmax agreement"].ok is True and rows["argmax agreement"].figures["agreement"] == 1.0
    assert rows["decision agreement"].ok is False and rows["decision agreement"].figures["agreement"] == 0.5
    assert rows["predicts both classes A"].ok is True and rows["predicts both classes B"].ok is False
    assert "never fires" in rows["predicts both classes B"].detail


def test_captured_output_hides_c_level_and_python_output(capfd):
    with captured_output() as log:
        os.write(1, b"from C stdout\n")
        os.write(2, b"from C stderr\n")
        print("from python")
        print("to stderr", file=sys.stderr)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert "from C stdout" in log.text and "to stderr" in log.text and log.last_line()
    print("visible again")
    assert capfd.readouterr().out == "visible again\n"
