"""Deployment files: .tflite and .pte exports equal to the verified ONNX, quantised files gated on
accuracy, and `deepepi predict --stream` equal to batch windowing.

One small PyTorch model is trained once per module (configs/smoke.json, 15 epochs on 40 synthetic
events of the generator's separable mix, onnx_helpers.learning_smoke); every test reads that run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from deepepi.data.csvio import load_csv
from deepepi.data.windows import make_windows
from deepepi.core.quiet import split_native_lines
from deepepi.runs.layout import THRESHOLD
from onnx_helpers import SEPARABLE_MIX, cli, learning_smoke, random_weights

pytestmark = [pytest.mark.torch, pytest.mark.slow]


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepepi.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("data"), users=3, events=40, seed=0, mix=SEPARABLE_MIX).csv_path


@pytest.fixture(scope="module")
def run(csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained PyTorch smoke run (window 750) that detects most seizure windows."""
    import torch

    from deepepi.train.run import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("torch") / "run"
        train(learning_smoke(), data=csv_path, framework="pytorch", out=out, quiet=True)
    finally:
        torch.set_num_threads(threads)
    # Decisions by argmax: the validation-chosen threshold of so small a model sits at 0.98, where
    # int8 rounding flips a few seizure windows and the quantised gate (rightly) fails it.
    (out / THRESHOLD).unlink(missing_ok=True)
    return out


@pytest.fixture(scope="module")
def raw_windows(csv_path: Path) -> tuple[np.ndarray, np.ndarray]:
    windows = make_windows(load_csv(csv_path), preprocessing=None)
    return windows.X, windows.y


def _checks(report: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(report.read_text())["checks"]}


@pytest.mark.tf
@pytest.mark.litert
@pytest.mark.executorch
def test_tflite_and_pte_of_trained_model_verify_against_its_onnx(run, tmp_path, capfd):
    assert cli(capfd, "export", "--onnx", run)[0] == 0
    # Descriptor-level capture: the converters' and runtimes' C++ console output stays out of view.
    # Unless --verbose, deepepi raises a lower TF_CPP_MIN_LOG_LEVEL (tox sets 2) to 3; TensorFlow/absl C++
    # lines are tolerated here all the same, and nothing else may reach stderr.
    code, out, err = cli(capfd, "export", "--tflite", run)
    assert code == 0 and "model.tflite" in out and split_native_lines(err)[0] == [], err
    assert out.count("\n") == 2, out  # the model and its metadata, nothing else
    code, out, err = cli(capfd, "export", "--pte", run)
    assert code == 0 and "model.pte" in out and split_native_lines(err)[0] == [], err

    for name, app_framework, shape, output in (("model.tflite", "tflite", [1, 750, 1], "probabilities"),
                                               ("model.pte", "pytorch", [1, 1, 750], "logits")):
        side = json.loads((run / f"{name}.json").read_text())
        assert (side["framework"], side["input_size"], side["input_format_val"]) == (app_framework, 750, 1)
        assert side["io"]["input_shape"] == shape and side["io"]["output"] == output
        assert side["io"]["input_unit"] == "g"
        assert side["deepepi"]["source_sha256"] and side["deepepi"]["trainable_parameters"] == "3586"
        # the rest of the Decision and the window rule travel with the file (the run config's values)
        assert (side["warn_time_s"], side["alarm_time_s"]) == (5.0, 10.0)
        assert side["deepepi"]["validate_datapoints"] == "false"
        report = tmp_path / f"{name}.json"
        code, out, _ = cli(capfd, "verify", run / "model.onnx", run / name, "--random", 200,
                           "--atol", 1e-5, "--report", report)
        assert code == 0, out
        checks = _checks(report)
        assert checks["A vs B difference"]["figures"]["max_abs"] <= 1e-5
        assert checks["argmax agreement"]["figures"]["agreement"] == 1.0
        # A file cut short cannot be compared: one line, exit 2.
        cut = tmp_path / name
        cut.write_bytes((run / name).read_bytes()[:4000])
        shutil.copy(run / f"{name}.json", tmp_path / f"{name}.json")
        code, out, err = cli(capfd, "verify", run / "model.onnx", cut, "--random", 4)
        assert code == 2 and out == "" and err.startswith(f"deepepi: error: {cut}: ")
        assert "cannot load" in err and len(err.strip().splitlines()) == 1


@pytest.mark.tf
@pytest.mark.litert
def test_pytorch_run_exported_to_tflite_equals_the_trained_model(run, raw_windows, tmp_path, capsys):
    """Regression for the reference's PyTorch -> TFLite path, which exported an untrained network."""
    import torch

    from deepepi.models.deepepi_cnn.torch import DeepEpiCnn
    from deepepi.models.torch_checkpoint import load_checkpoint
    from deepepi.runtimes import open_model

    out = tmp_path / "app.tflite"
    assert cli(capsys, "export", "--tflite", run, "-o", out)[0] == 0
    x, _ = raw_windows
    got = open_model(out).predict_proba(x)
    model, spec, _ = load_checkpoint(run / "model.pt")
    with torch.no_grad():
        trained = torch.softmax(model.eval()(torch.from_numpy(x / np.float32(1000))), -1).numpy()
        torch.manual_seed(0)
        untrained = torch.softmax(DeepEpiCnn(spec).eval()(torch.from_numpy(x / np.float32(1000))), -1).numpy()
    # deepepi verify's fp32 rule, |a - b| <= 1e-5 + 1e-4 |b| (float32 summation order differs).
    np.testing.assert_allclose(got, trained, atol=1e-5, rtol=1e-4)
    # The comparison would catch the bug: an untrained network of the same shape is far off.
    assert np.max(np.abs(untrained - trained)) > 1e-2


@pytest.mark.tf
@pytest.mark.litert
def test_export_refuses_a_twin_that_lost_the_trained_weights(run, tmp_path, capsys):
    """weights.npz no longer holds the trained model.pt's weights: the LiteRT self-check against the
    trained model fails and nothing is written."""
    from deepepi.models.weights import load_weights, save_weights

    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("*.tflite*", "*.pte*", "*.onnx"))
    _, spec = load_weights(copy / "weights.npz")
    save_weights(copy / "weights.npz", random_weights(spec, seed=7), spec)
    code, _, err = cli(capsys, "export", "--tflite", copy)
    assert code == 1 and "self-check failed" in err and len(err.strip().splitlines()) == 1
    assert not (copy / "model.tflite").exists() and not (copy / "model.tflite.json").exists()


def test_int8_onnx_passes_the_gate_and_a_bad_calibration_fails_it(run, csv_path, tmp_path, capsys):
    from converters.quantize import int8
    from deepepi.core.io import write_bytes

    code, out, _ = cli(capsys, "export", "--onnx", run, "--quantize", "int8", "--calibration", csv_path)
    assert code == 0 and "model.int8.onnx (int8" in out
    quantized = onnx.load(str(run / "model.int8.onnx"))
    assert {n.op_type for n in quantized.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    assert "int8 static QDQ per-channel" in {p.key: p.value for p in quantized.metadata_props}["quantization"]
    # The input side up to the first convolution stays float32 (gravity leaves int8 steps of ~12 mg
    # there); every later convolution reads dequantised int8.
    producer = {out: node.op_type for node in quantized.graph.node for out in node.output}
    convs = [node for node in quantized.graph.node if node.op_type == "Conv"]
    assert producer.get(convs[0].input[0]) != "DequantizeLinear"
    assert len(convs) == 6 and all(producer[conv.input[0]] == "DequantizeLinear" for conv in convs[1:])
    gate = ("--mode", "quantized", "--data", csv_path, "--config", run / "config.json")
    report = tmp_path / "good.json"
    code, out, _ = cli(capsys, "verify", run / "model.onnx", run / "model.int8.onnx", *gate,
                       "--report", report)
    assert code == 0, out
    checks = _checks(report)
    assert checks["argmax agreement"]["figures"]["agreement"] >= 0.99
    drops = checks["quantised accuracy drop"]["figures"]
    assert drops["a"]["window"]["tpr"] > 0.5  # the model detects seizures, so the gate measures something
    assert max(drops["drops"].values()) <= 0.01

    # Calibrated on still windows only: activation ranges far too narrow for real movement.
    flat = np.full((64, 750), 1000.0, dtype=np.float32)
    write_bytes(tmp_path / "bad.int8.onnx", int8(onnx.load(str(run / "model.onnx")), flat).SerializeToString())
    code, out, _ = cli(capsys, "verify", run / "model.onnx", tmp_path / "bad.int8.onnx", *gate)
    assert code == 1 and "FAIL (argmax agreement" in out


def test_fp16_onnx_keeps_float32_io_and_passes_the_gate(run, csv_path, capsys):
    code, out, _ = cli(capsys, "export", "--onnx", run, "--quantize", "fp16", "--calibration", csv_path)
    assert code == 0, out
    model = onnx.load(str(run / "model.fp16.onnx"))
    f32 = onnx.TensorProto.FLOAT
    assert [v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)] == [f32, f32]
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    assert (run / "model.fp16.onnx").stat().st_size < (run / "model.onnx").stat().st_size
    code, out, _ = cli(capsys, "verify", run / "model.onnx", run / "model.fp16.onnx", "--mode", "quantized",
                       "--data", csv_path, "--config", run / "config.json")
    assert code == 0, out


@pytest.mark.tf
@pytest.mark.litert
def test_tflite_full_integer_passes_the_gate(run, csv_path, capsys):
    assert cli(capsys, "export", "--onnx", run)[0] == 0
    code, out, _ = cli(capsys, "export", "--tflite", run, "--quantize", "int8", "--calibration", csv_path)
    assert code == 0, out
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(run / "model.int8.tflite"))
    details = interpreter._get_ops_details()
    ops = [op["op_name"] for op in details]
    # A float32 first convolution, integer ones after it, then the softmax in float32 after the last
    # DEQUANTIZE.
    assert "QUANTIZE" in ops and ops.index("DEQUANTIZE") < ops.index("SOFTMAX")
    dtype = {d["index"]: d["dtype"] for d in interpreter.get_tensor_details()}
    conv_in = [dtype[op["inputs"][0]] for op in details if op["op_name"] == "CONV_2D"]
    assert conv_in == [np.float32] + [np.int8] * 5, conv_in
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    code, out, _ = cli(capsys, "verify", run / "model.onnx", run / "model.int8.tflite", "--mode",
                       "quantized", "--data", csv_path, "--config", run / "config.json")
    assert code == 0, out


@pytest.mark.executorch
def test_pte_int8_is_smaller_and_passes_the_gate(run, csv_path, tmp_path, capsys):
    fp32 = tmp_path / "fp32.pte"
    assert cli(capsys, "export", "--pte", run, "-o", fp32)[0] == 0
    code, out, _ = cli(capsys, "export", "--pte", run, "--quantize", "int8", "--calibration", csv_path)
    assert code == 0 and "model.int8.pte (int8" in out, (out, _)
    side = json.loads((run / "model.int8.pte.json").read_text())
    assert side["deepepi"]["quantization"] == "int8" and side["io"]["output"] == "logits"
    # int8 weights: the program shrinks although quantisation parameters are added (3,586 weights
    # here, so only a little; the reference network's program shrinks about 3x, docs/PERFORMANCE.md).
    assert (run / "model.int8.pte").stat().st_size < fp32.stat().st_size
    assert cli(capsys, "export", "--onnx", run)[0] == 0
    report = tmp_path / "pte.json"
    code, out, _ = cli(capsys, "verify", run / "model.onnx", run / "model.int8.pte", "--mode", "quantized",
                       "--data", csv_path, "--config", run / "config.json", "--report", report)
    assert code == 0, out
    checks = _checks(report)
    assert checks["A vs B difference"]["figures"]["max_abs"] > 1e-4  # B really is quantised
    assert checks["argmax agreement"]["figures"]["agreement"] >= 0.99
    code, _, err = cli(capsys, "export", "--pte", run, "--quantize", "fp16", "-o", tmp_path / "h.pte")
    assert code == 2 and "--quantize fp16 needs --onnx or --tflite" in err and not (tmp_path / "h.pte").exists()


def test_stream_replay_equals_batch_windowing(run, csv_path):
    from deepepi.scoring.alarm import AlarmStateMachine
    from deepepi.export.onnx_file import export_run
    from deepepi.core.config import load_config
    from deepepi.evaluate.predict import predict_batch, predict_stream
    from deepepi.runtimes import open_model
    from deepepi.scoring.decision import Decision

    runtime = open_model(export_run(run, out=run / "stream.onnx").path)
    cfg = load_config(run / "config.json")
    df = load_csv(csv_path)
    event = df[df["eventId"] == int(df.loc[df["type"] == 1, "eventId"].iloc[0])]
    # A threshold under most of this event's probabilities, so that the replay reaches ALARM whatever
    # the tiny fixture model makes of the event (the claim here is stream == batch, not detection).
    # The movement gate is off here; test_alarm and the predict tests cover it.
    p = predict_batch(runtime, event, Decision(threshold=0.5, acc_sd_threshold=0.0), cfg)["p_seizure"]
    rules = Decision(threshold=float(np.quantile(p, 0.2)), acc_sd_threshold=0.0)
    batch = predict_batch(runtime, event, rules, cfg)
    stream = predict_stream(runtime, event, rules, cfg)
    assert len(stream) == len(event) and len(batch) == len(event) - 5
    warmup, full = stream[stream["buffer_full"] == 0], stream[stream["buffer_full"] == 1]
    assert len(warmup) == 5 and (warmup["p_seizure"] == 0).all() and (warmup["state"] == "OK").all()
    np.testing.assert_allclose(full["p_seizure"].to_numpy(), batch["p_seizure"].to_numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(full["dataTime"].to_numpy(), batch["dataTime"].to_numpy())
    assert full["state"].tolist() == batch["state"].tolist()
    assert "ALARM" in set(batch["state"])  # the replay exercises the whole state machine
    # The stream's states are the streaming state machine stepped on its own decisions.
    machine = AlarmStateMachine()
    assert [("OK", "WARNING", "ALARM")[machine.step(bool(p))] for p in stream["positive"]] == \
        stream["state"].tolist()


def test_predict_cli_writes_per_datapoint_csv(run, csv_path, tmp_path, capsys):
    import pandas as pd

    from deepepi.export.onnx_file import export_run

    model = export_run(run, out=tmp_path / "m.onnx").path
    out = tmp_path / "p.csv"
    code, text, _ = cli(capsys, "predict", model, "--data", csv_path, "--stream", "-o", out)
    assert code == 0 and "stream:" in text
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["eventId", "userId", "dataTime", "label", "p_seizure", "p_decision",
                                   "positive", "state", "alarm", "buffer_full"]
    assert set(frame["state"]) <= {"OK", "WARNING", "ALARM"}
    assert frame["dataTime"].equals(frame["dataTime"].round(3)) and frame["dataTime"].min() > 1e9
    code, _, err = cli(capsys, "predict", model, "--data", tmp_path / "absent.csv")
    assert code == 2 and err.startswith("deepepi: error: ") and "absent.csv" in err


def test_quantized_mode_needs_labelled_data(run, capsys):
    from deepepi.export.onnx_file import export_run

    model = export_run(run, out=run / "q.onnx").path
    code, _, err = cli(capsys, "verify", model, model, "--mode", "quantized", "--random", 10)
    assert code == 2 and "needs labelled windows" in err

