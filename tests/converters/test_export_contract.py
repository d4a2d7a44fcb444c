"""converters.contract without a framework: conforming, metadata, checker, self-check refusal."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from converters import check, contract
from deepepi.core.errors import ExportError
from onnx_helpers import EXPORTER, info, reference, tiny_model, tiny_weights, write_tiny

WINDOW = 64


def test_finish_conforms_names_axis_opset_and_metadata(tmp_path):
    w, b = tiny_weights(WINDOW)
    result = write_tiny(tmp_path / "m.onnx", w, b)
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model, full_check=True)
    assert contract.contract_problems(model, window=WINDOW, num_classes=2) == []
    io = contract.graph_io(model)
    assert io.inputs == (("acc", onnx.TensorProto.FLOAT, ("batch", WINDOW)),)
    assert io.outputs == (("probabilities", onnx.TensorProto.FLOAT, ("batch", 2)),)
    assert io.opset == 17
    meta = contract.read_metadata(model)
    assert list(meta) == list(contract.META_KEYS)
    assert json.loads(meta["class_names"]) == ["non-seizure", "seizure"]
    assert json.loads(meta["preprocessing"])["scale"] == pytest.approx(1e-3)
    assert meta["window"] == str(WINDOW) and meta["trainable_parameters"] == str(WINDOW * 2 + 2)
    assert result.max_abs_diff <= 1e-5
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_self_check_refuses_a_wrong_reference_and_writes_nothing(tmp_path):
    w, b = tiny_weights(WINDOW)
    wrong = reference(w, b * 0 + np.array([0.5, -0.5], np.float32))  # tampered native model
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="self-check failed") as err:
        check.finish_onnx(tiny_model(w, b), out, info(WINDOW), EXPORTER, wrong)
    assert err.value.exit_code == 1
    assert list(tmp_path.iterdir()) == []


def test_finish_refuses_a_graph_with_two_inputs(tmp_path):
    w, b = tiny_weights(WINDOW)
    model = tiny_model(w, b)
    model.graph.input.append(helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [1]))
    with pytest.raises(ExportError, match="2 inputs"):
        check.finish_onnx(model, tmp_path / "m.onnx", info(WINDOW), EXPORTER, reference(w, b))
    assert list(tmp_path.iterdir()) == []


def test_contract_problems_name_every_departure():
    w, b = tiny_weights(WINDOW)
    model = tiny_model(w, b)  # raw names, no metadata
    problems = contract.contract_problems(model, window=WINDOW, num_classes=2)
    assert any("input must be acc" in p for p in problems)
    assert any("output must be probabilities" in p for p in problems)
    assert any("metadata_props lack" in p for p in problems)


def test_conform_drops_unused_opset_imports():
    w, b = tiny_weights(WINDOW)
    model = tiny_model(w, b)
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 2))
    conformed = contract.conform(model, info(WINDOW), EXPORTER)
    assert [(o.domain, o.version) for o in conformed.opset_import] == [("", 17)]


def test_reference_evaluator_agrees_with_onnxruntime(tmp_path):
    w, b = tiny_weights(WINDOW)
    path = write_tiny(tmp_path / "m.onnx", w, b).path
    raw = contract.realistic_windows(16, WINDOW, seed=3)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got_ort = session.run(None, {"acc": raw})[0]
    got_ref = ReferenceEvaluator(str(path)).run(None, {"acc": raw})[0]
    assert np.max(np.abs(got_ort - got_ref)) <= 1e-5
    assert np.max(np.abs(got_ort - reference(w, b)(raw))) <= 1e-5


def test_realistic_windows_are_seeded_and_plausible():
    a = contract.realistic_windows(64, 750, seed=7)
    assert a.dtype == np.float32 and a.shape == (64, 750)
    assert np.array_equal(a, contract.realistic_windows(64, 750, seed=7))
    assert not np.array_equal(a, contract.realistic_windows(64, 750, seed=8))
    assert 900 < float(np.median(a)) < 1100 and a.min() >= 0 and a.max() <= 4000
    shaking = a.std(axis=1) > 100
    assert 0 < shaking.sum() < 64  # some windows shake, some are calm


def test_softmax_reference_rows_sum_to_one():
    p = contract.softmax(np.array([[0.0, 0.0], [1000.0, -1000.0], [-3.0, 2.0]]))
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-7)
    np.testing.assert_allclose(p[0], [0.5, 0.5])
    assert p[1, 0] == 1.0


def test_export_without_the_framework_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    from deepepi.cli import main
    from deepepi.core.io import write_json
    from onnx_helpers import small_config

    import converters
    import deepepi.models

    for module in ("torch", "converters.torch_onnx", "deepepi.models.torch_checkpoint", "deepepi.models.torch_weights"):
        monkeypatch.setitem(sys.modules, module, None)  # as if torch were not installed
    # `from package import name` finds a submodule imported by an earlier test as a package attribute
    monkeypatch.delattr(converters, "torch_onnx", raising=False)
    monkeypatch.delattr(deepepi.models, "torch_deepepi", raising=False)
    write_json(tmp_path / "config.json", small_config().to_dict())
    (tmp_path / "model.pt").write_bytes(b"checkpoint")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--onnx", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "needs torch" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "model.onnx").exists()
