"""`deepepi verify` on tiny hand-built contract graphs (no framework): exit codes 0 / 1 / 2 and figures."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import helper

from converters.contract import realistic_windows
from deepepi.cli import main
from deepepi.verify import checks
from deepepi.verify.inputs import Subject
from onnx_helpers import reference, tiny_weights, write_tiny

WINDOW = 64


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", *map(str, args)])
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two files with identical weights, one with perturbed weights."""
    root = tmp_path_factory.mktemp("tiny")
    w, b = tiny_weights(WINDOW)
    write_tiny(root / "a.onnx", w, b)
    write_tiny(root / "b.onnx", w, b)
    noise = np.random.default_rng(9).normal(0, 2e-3, w.shape).astype(np.float32)
    write_tiny(root / "perturbed.onnx", w + noise, b)
    return root


def test_same_weights_pass_with_zero_difference(pair, tmp_path, capsys):
    report = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, pair / "a.onnx", pair / "b.onnx", "--random", 200, "--report", report)
    assert code == 0, out
    assert "providers used: A ['CPUExecutionProvider']" in out
    assert "verdict: PASS" in out
    data = json.loads(report.read_text())
    assert data["passed"] is True and data["inputs"]["n"] == 200
    diff = next(c for c in data["checks"] if c["name"] == "A vs B difference")
    assert diff["status"] == "PASS" and diff["figures"]["max_abs"] <= 1e-5
    assert {c["status"] for c in data["checks"]} <= {"PASS", "INFO"}


def test_perturbed_weights_fail_with_exit_1(pair, tmp_path, capsys):
    report = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, pair / "a.onnx", pair / "perturbed.onnx", "--report", report)
    assert code == 1
    assert "verdict: FAIL (A vs B difference)" in out
    figures = next(c for c in json.loads(report.read_text())["checks"]
                   if c["name"] == "A vs B difference")["figures"]
    assert figures["max_abs"] > 1e-5 and figures["atol_needed"] > 1e-5


def test_perturbed_weights_pass_with_a_looser_atol(pair, capsys):
    _, out, _ = run_cli(capsys, pair / "a.onnx", pair / "perturbed.onnx", "--report", "/dev/null")
    needed = float(out.split("atol needed ")[1].split()[0])
    code, out, _ = run_cli(capsys, pair / "a.onnx", pair / "perturbed.onnx", "--atol", needed * 1.01)
    assert code == 0, out


def test_removed_softmax_fails_with_exit_1(pair, tmp_path, capsys):
    model = onnx.load(str(pair / "b.onnx"))
    graph = model.graph
    softmax = next(n for n in graph.node if n.op_type == "Softmax")
    for node in graph.node:
        node.output[:] = ["probabilities" if o == softmax.input[0] else o for o in node.output]
    graph.node.remove(softmax)
    onnx.save(model, str(tmp_path / "nosoftmax.onnx"))
    report = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, pair / "a.onnx", tmp_path / "nosoftmax.onnx", "--report", report)
    assert code == 1
    status = {c["name"]: c["status"] for c in json.loads(report.read_text())["checks"]}
    assert status["softmax A"] == "PASS" and status["softmax B"] == "FAIL"
    assert status["A vs B difference"] == "FAIL"


def test_truncated_file_is_unusable_exit_2(pair, tmp_path, capsys):
    data = (pair / "a.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    code, out, err = run_cli(capsys, pair / "a.onnx", tmp_path / "cut.onnx")
    assert code == 2 and out == ""
    assert err.startswith("deepepi: error: ") and "cut.onnx" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"", b"not an onnx file at all\n", b'{"json": true}'])
def test_not_onnx_is_unusable_exit_2(pair, tmp_path, capsys, content):
    (tmp_path / "x.onnx").write_bytes(content)
    code, _, err = run_cli(capsys, tmp_path / "x.onnx", pair / "a.onnx")
    assert code == 2 and "x.onnx" in err and "Traceback" not in err


def test_missing_file_is_unusable_exit_2(pair, capsys):
    code, _, err = run_cli(capsys, pair / "a.onnx", pair / "absent.onnx")
    assert code == 2 and "absent.onnx: ONNX file not found" in err


def test_different_window_is_unusable_exit_2(pair, tmp_path, capsys):
    w, b = tiny_weights(WINDOW + 8)
    write_tiny(tmp_path / "wide.onnx", w, b)
    code, _, err = run_cli(capsys, pair / "a.onnx", tmp_path / "wide.onnx")
    assert code == 2 and "contract mismatch" in err and f"window {WINDOW + 8}" in err


def test_renamed_input_is_unusable_exit_2(pair, tmp_path, capsys):
    model = onnx.load(str(pair / "b.onnx"))
    for node in model.graph.node:
        node.input[:] = ["x" if i == "acc" else i for i in node.input]
    model.graph.input[0].name = "x"
    onnx.save(model, str(tmp_path / "renamed.onnx"))
    code, _, err = run_cli(capsys, pair / "a.onnx", tmp_path / "renamed.onnx")
    assert code == 2 and "renamed.onnx" in err and "'acc'" in err


def test_different_preprocessing_metadata_fails_contract_check(pair, tmp_path, capsys):
    model = onnx.load(str(pair / "b.onnx"))
    prop = next(p for p in model.metadata_props if p.key == "preprocessing")
    changed = json.loads(prop.value)
    changed["normalise"] = True
    prop.value = json.dumps(changed)
    onnx.save(model, str(tmp_path / "norm.onnx"))
    code, out, _ = run_cli(capsys, pair / "a.onnx", tmp_path / "norm.onnx")
    assert code == 1 and "FAIL (contract + preprocessing)" in out


def test_different_parameter_count_fails(pair, tmp_path, capsys):
    model = onnx.load(str(pair / "b.onnx"))
    next(p for p in model.metadata_props if p.key == "trainable_parameters").value = "1"
    onnx.save(model, str(tmp_path / "count.onnx"))
    code, out, _ = run_cli(capsys, pair / "a.onnx", tmp_path / "count.onnx")
    assert code == 1 and "FAIL (trainable parameters)" in out


def test_lockstep_mode_uses_min_agreement(pair, tmp_path, capsys):
    w2, b2 = tiny_weights(WINDOW, seed=5)
    write_tiny(tmp_path / "other.onnx", w2, b2)
    report = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, pair / "a.onnx", tmp_path / "other.onnx", "--mode", "lockstep",
                           "--min-agreement", 0, "--random", 300, "--seed", 4, "--report", report)
    assert code == 0, out
    data = json.loads(report.read_text())
    checks_by_name = {c["name"]: c for c in data["checks"]}
    assert checks_by_name["A vs B difference"]["status"] == "INFO"
    # the reported agreement is the one recomputed here from the same windows
    raw = realistic_windows(300, WINDOW, seed=4)
    wa, ba = tiny_weights(WINDOW)
    same = np.argmax(reference(wa, ba)(raw), 1) == np.argmax(reference(w2, b2)(raw), 1)
    assert checks_by_name["argmax agreement"]["figures"]["agreement"] == pytest.approx(same.mean())
    assert same.mean() < 1.0
    code, out, _ = run_cli(capsys, pair / "a.onnx", tmp_path / "other.onnx", "--mode", "lockstep",
                           "--random", 300, "--seed", 4, "--min-agreement", 1.0)
    assert code == 1 and "FAIL (argmax agreement)" in out


@pytest.mark.parametrize("args, message", [
    (["--providers", "NoSuchExecutionProvider"], "not available"),
    (["--random", "5", "--data", "x.csv"], "mutually exclusive"),
    (["--random", "0"], "--random"),
    (["--mode", "trained", "--random", "50"], "needs labelled --data"),
])
def test_bad_options_are_one_line_exit_2(pair, capsys, args, message):
    code, _, err = run_cli(capsys, pair / "a.onnx", pair / "b.onnx", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_diff_stats_follow_polygraphy_rule():
    a = np.array([[0.5, 0.5], [0.9, 0.1]])
    b = np.array([[0.5, 0.5], [0.8, 0.2]])
    stats = checks.diff_stats(a, b, rtol=0.1)
    assert stats["max_abs"] == pytest.approx(0.1)
    # |a-b| - rtol*|b|: 0.1 - 0.08 = 0.02 and 0.1 - 0.02 = 0.08 -> atol 0.08 is the smallest that passes
    assert stats["atol_needed"] == pytest.approx(0.08)
    assert stats["max_rel"] == pytest.approx(0.5)
    assert checks.tolerance(a, b, atol=0.08 + 1e-12, rtol=0.1, enforce=True).status == "PASS"
    assert checks.tolerance(a, b, atol=0.079, rtol=0.1, enforce=True).status == "FAIL"
    assert checks.tolerance(a, b, atol=0.079, rtol=0.1, enforce=False).status == "INFO"


def test_softmax_sanity_catches_nan_and_out_of_range():
    assert checks.softmax_sanity(np.array([[0.25, 0.75]]), "A").status == "PASS"
    assert checks.softmax_sanity(np.array([[np.nan, 1.0]]), "A").status == "FAIL"
    assert checks.softmax_sanity(np.array([[1.5, -0.5]]), "A").status == "FAIL"
    assert checks.softmax_sanity(np.array([[0.5, 0.6]]), "A").status == "FAIL"


def test_rates_and_per_class_agreement():
    probs_a = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    probs_b = np.array([[0.2, 0.8], [0.4, 0.6], [0.3, 0.7], [0.7, 0.3]])
    labels = np.array([1, 0, 0, 1])
    rates = checks.rates(probs_a, labels)
    assert (rates["tp"], rates["fn"], rates["fp"], rates["tn"]) == (1, 1, 1, 1)
    assert rates["tpr"] == 0.5 and rates["fpr"] == 0.5
    agree = checks.agreement(probs_a, probs_b, labels, min_agreement=0.8)
    assert agree.figures["agreement"] == 0.75 and agree.status == "FAIL"
    assert agree.figures["per_class"] == {"0": {"n": 2, "agreement": 0.5}, "1": {"n": 2, "agreement": 1.0}}
    assert agree.figures["predicted_a"] == [2, 2] and agree.figures["predicted_b"] == [1, 3]
    assert "one class only" not in agree.detail
    constant = checks.agreement(probs_a[:, ::-1] * 0 + [0.9, 0.1], probs_b * 0 + [0.8, 0.2], labels,
                                min_agreement=0.99)
    assert constant.status == "PASS" and "each predict one class only (0, 0)" in constant.detail


def test_checker_failure_is_reported_not_raised(pair):
    model = onnx.load(str(pair / "a.onnx"))
    model.graph.node.append(helper.make_node("NoSuchOp", ["acc"], ["junk"]))
    check = checks.file_check(Subject(runtime=None, proto=model), "A")
    assert check.status == "FAIL" and check.detail.startswith("onnx checker:")


def test_csv_data_gives_labelled_figures(tmp_path, capsys):
    from deepepi.data.synth import synthesize

    csv = synthesize(tmp_path / "data", users=2, events=6, seed=3).csv_path
    for name, seed in (("a", 0), ("b", 1)):
        write_tiny(tmp_path / f"{name}.onnx", *tiny_weights(750, seed=seed))
    report = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, tmp_path / "a.onnx", tmp_path / "b.onnx", "--data", csv,
                           "--mode", "lockstep", "--min-agreement", 0, "--report", report)
    data = json.loads(report.read_text())
    # the random tiny model A always fires on this data: the one failure, named
    assert code == 1 and [c["name"] for c in data["checks"] if c["status"] == "FAIL"] == ["predicts both classes A"]
    assert data["inputs"]["kind"] == "csv" and data["inputs"]["labelled"] is True
    by_name = {c["name"]: c for c in data["checks"]}
    per_class = by_name["argmax agreement"]["figures"]["per_class"]
    assert set(per_class) == {"0", "1"}
    assert sum(v["n"] for v in per_class.values()) == data["inputs"]["n"]
    rates = by_name["TPR / FPR"]["figures"]
    assert rates["a"]["tp"] + rates["a"]["fn"] == per_class["1"]["n"]
    assert rates["b"]["fp"] + rates["b"]["tn"] == per_class["0"]["n"]


def test_csv_with_a_config_of_another_window_is_unusable(tmp_path, capsys):
    from deepepi.core.io import write_json

    write_tiny(tmp_path / "a.onnx", *tiny_weights(750))
    write_json(tmp_path / "short.json", {"modelConfig": {"bufferSeconds": 4}})
    (tmp_path / "d.csv").write_text("eventId\n1\n")
    code, _, err = run_cli(capsys, tmp_path / "a.onnx", tmp_path / "a.onnx", "--data",
                           tmp_path / "d.csv", "--config", tmp_path / "short.json")
    assert code == 2 and "config window 100" in err


def test_every_truncation_point_is_unusable(pair):
    """Cutting the file anywhere (metadata included, which is serialised last) gives exit 2."""
    from deepepi.core.errors import UnusableInputError
    from deepepi.verify.runner import verify

    data = (pair / "a.onnx").read_bytes()
    cut_path = pair / "cut.onnx"
    for cut in range(len(data)):
        cut_path.write_bytes(data[:cut])
        with pytest.raises(UnusableInputError):
            verify(pair / "a.onnx", cut_path, random_n=4)


def test_requested_provider_that_cannot_start_is_named(pair, capsys):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider")
    code, out, err = run_cli(capsys, pair / "a.onnx", pair / "b.onnx", "--random", 8,
                             "--providers", "CUDAExecutionProvider,CPUExecutionProvider")
    assert code == 0, out
    used = next(line for line in out.splitlines() if line.startswith("providers used"))
    assert ("CUDAExecutionProvider" in used) != ("could not start CUDAExecutionProvider" in err)


def test_graph_that_loads_but_cannot_run_is_unusable(pair, tmp_path, capsys):
    model = onnx.load(str(pair / "b.onnx"))
    matmul = next(n for n in model.graph.node if n.op_type == "MatMul")
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([7, -1], np.int64), "bad_shape"))
    reshape = helper.make_node("Reshape", [matmul.input[0], "bad_shape"], ["reshaped"])
    matmul.input[0] = "reshaped"
    model.graph.node.insert(list(model.graph.node).index(matmul), reshape)
    onnx.save(model, str(tmp_path / "broken.onnx"))
    code, _, err = run_cli(capsys, pair / "a.onnx", tmp_path / "broken.onnx", "--random", 10)
    assert code == 2 and "broken.onnx: onnxruntime cannot" in err and len(err.strip().splitlines()) == 1


def test_batch_axis_not_named_batch_fails_contract_check(pair, tmp_path, capsys):
    model = onnx.load(str(pair / "b.onnx"))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(model, str(tmp_path / "n.onnx"))
    code, out, _ = run_cli(capsys, pair / "a.onnx", tmp_path / "n.onnx")
    assert code == 1 and "FAIL (contract + preprocessing)" in out and "B: input must be acc" in out
