"""Keras -> ONNX (tf2onnx) and PyTorch -> ONNX: contract, agreement with the native model, self-check refusal
via the CLI; for PyTorch also the converter's own refusal, CLI export to a chosen path and verify.

tf2onnx conversion is slow, so one module-scoped export per framework serves most tests. A check whose
assertions are the same in both frameworks is one test parametrised over `framework`, each case carrying its
own framework marker (tf or torch: its tox environment); the checks that differ follow, Keras's marked tf and
PyTorch's marked torch.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

from converters.contract import contract_problems, read_metadata, realistic_windows
from deepepi.cli import main
from deepepi.core.errors import ExportError
from deepepi.core.io import sha256_file
from deepepi.core.preprocessing import Preprocessing
from onnx_helpers import cli, make_run, small_config

FRAMEWORKS = [pytest.param("tensorflow", marks=pytest.mark.tf), pytest.param("pytorch", marks=pytest.mark.torch)]
# framework -> (its run fixture, its converter module, the model file `deepepi export --onnx` is given: None
# gives the run directory itself)
EXPORTS = {"tensorflow": ("keras_run", "converters.keras_onnx", "model.keras"),
           "pytorch": ("torch_run", "converters.torch_onnx", None)}


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    """A Keras run directory (normalising preprocessing) exported through the CLI entry point."""
    run_dir = make_run(tmp_path_factory.mktemp("keras") / "run",
                       small_config(normalise=True, framework="tensorflow"), seed=2)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--onnx", str(run_dir)])
    assert exit_info.value.code == 0
    return run_dir


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    """A PyTorch run directory (normalising preprocessing) and its default export."""
    run_dir = make_run(tmp_path_factory.mktemp("torch") / "run", small_config(normalise=True), seed=1)
    from deepepi.export.onnx_file import export_run

    export_run(run_dir)
    return run_dir


def native_probs(run_dir, raw: np.ndarray) -> np.ndarray:
    from deepepi.models.torch_checkpoint import load_checkpoint
    from deepepi.models.torch_predict import predict_proba

    model, _, _ = load_checkpoint(run_dir / "model.pt")
    return predict_proba(model, Preprocessing(normalise=True).apply(raw))


# Same assertions in both frameworks.

@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_self_check_refusal_exits_1_and_writes_nothing(framework, request, tmp_path, capsys, monkeypatch):
    """A native reference with the wrong preprocessing stands in for a broken export."""
    fixture, module, source = EXPORTS[framework]
    run = request.getfixturevalue(fixture)
    converter = importlib.import_module(module)

    real = converter.native_reference
    monkeypatch.setattr(converter, "native_reference",
                        lambda model, pre: real(model, Preprocessing(normalise=not pre.normalise)))
    code, _, err = cli(capsys, "export", "--onnx", run / source if source else run, "-o", tmp_path / "bad.onnx")
    assert code == 1 and "self-check failed" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


# Keras only.

@pytest.mark.tf
def test_keras_export_passes_checker_and_contract(keras_run):
    from deepepi.models.deepepi_cnn.spec import ArchSpec

    model = onnx.load(str(keras_run / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert contract_problems(model, window=100, num_classes=2) == []
    meta = read_metadata(model)
    spec = ArchSpec.from_config(small_config())
    assert meta["framework"] == "tensorflow" and meta["exporter"] == "tf2onnx"
    assert meta["source_file"] == "model.keras" and meta["source_sha256"] == sha256_file(keras_run / "model.keras")
    assert int(meta["trainable_parameters"]) == spec.expected_counts().trainable
    assert json.loads(meta["preprocessing"])["normalise"] is True
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]


@pytest.mark.tf
def test_onnx_matches_native_model_and_reference_evaluator(keras_run):
    from deepepi.models.keras_files import load_keras_model
    from deepepi.models.keras_predict import predict_proba

    raw = realistic_windows(9, 100, seed=12)
    raw[0] = 980.0  # a still sensor: flat, normalisation must only subtract the mean
    got = ort.InferenceSession(str(keras_run / "model.onnx"), providers=["CPUExecutionProvider"]) \
        .run(["probabilities"], {"acc": raw})[0]
    want = predict_proba(load_keras_model(keras_run / "model.keras"), Preprocessing(normalise=True).apply(raw))
    assert np.max(np.abs(got - want)) <= 1e-5
    assert 0.02 < float(want[:, 1].mean()) < 0.98
    got_ref = ReferenceEvaluator(str(keras_run / "model.onnx")).run(None, {"acc": raw[:4]})[0]
    assert np.max(np.abs(got[:4] - got_ref)) <= 1e-5


# PyTorch only.

@pytest.mark.torch
def test_torch_export_passes_checker_and_contract(torch_run):
    model = onnx.load(str(torch_run / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert contract_problems(model, window=100, num_classes=2) == []
    meta = read_metadata(model)
    from deepepi.models.deepepi_cnn.spec import ArchSpec

    spec = ArchSpec.from_config(small_config())
    assert meta["framework"] == "pytorch" and meta["exporter"].startswith("torch.onnx")
    assert meta["source_file"] == "model.pt" and meta["source_sha256"] == sha256_file(torch_run / "model.pt")
    assert int(meta["trainable_parameters"]) == spec.expected_counts().trainable
    assert json.loads(meta["preprocessing"])["normalise"] is True
    assert json.loads(meta["spec"]) == spec.to_dict()
    assert (meta["sample_freq"], meta["window"], meta["step"]) == ("25", "100", "125")


@pytest.mark.torch
@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_matches_native_model_including_flat_windows(torch_run, batch):
    raw = realistic_windows(batch, 100, seed=11)
    raw[0] = 980.0  # a still sensor: flat, normalisation must only subtract the mean
    session = ort.InferenceSession(str(torch_run / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"acc": raw})[0]
    want = native_probs(torch_run, raw)
    assert got.shape == (batch, 2)
    assert np.max(np.abs(got - want)) <= 1e-5
    assert 0.02 < float(want[:, 1].mean()) < 0.98  # not saturated: the comparison means something


@pytest.mark.torch
def test_reference_evaluator_agrees_with_onnxruntime(torch_run):
    raw = realistic_windows(8, 100, seed=5)
    got_ort = ort.InferenceSession(str(torch_run / "model.onnx"), providers=["CPUExecutionProvider"]) \
        .run(None, {"acc": raw})[0]
    got_ref = ReferenceEvaluator(str(torch_run / "model.onnx")).run(None, {"acc": raw})[0]
    assert np.max(np.abs(got_ort - got_ref)) <= 1e-5


@pytest.mark.torch
def test_cli_export_of_model_file_to_chosen_path(torch_run, tmp_path, capsys):
    code, out, _ = cli(capsys, "export", "--onnx", torch_run / "model.pt", "-o", tmp_path / "x.onnx")
    assert code == 0 and f"wrote {tmp_path / 'x.onnx'}" in out
    a = onnx.load(str(torch_run / "model.onnx"))
    b = onnx.load(str(tmp_path / "x.onnx"))
    assert read_metadata(a) == read_metadata(b)


@pytest.mark.torch
def test_converter_raises_export_error_on_tampered_reference(torch_run, tmp_path):
    from converters import torch_onnx
    from deepepi.runs.resolve import resolve_run, source_for
    from deepepi.models.torch_checkpoint import load_checkpoint

    model, spec, _ = load_checkpoint(torch_run / "model.pt")
    reference = torch_onnx.native_reference(model, Preprocessing(normalise=True))
    with pytest.raises(ExportError, match="max abs difference"):
        torch_onnx.export(model, spec, tmp_path / "m.onnx",
                          source_for(torch_run / "model.pt", resolve_run(torch_run).config),
                          reference=lambda raw: reference(raw)[:, ::-1])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.torch
def test_verify_same_weights_and_perturbed(torch_run, tmp_path, capsys):
    import torch

    from deepepi.models import torch_checkpoint

    code, out, _ = cli(capsys, "verify", torch_run / "model.onnx", torch_run / "model.onnx", "--random", 64)
    assert code == 0, out
    model, spec, payload = torch_checkpoint.load_checkpoint(torch_run / "model.pt")
    with torch.no_grad():
        model.conv1.weight.mul_(1.01)
    other = make_run(tmp_path / "perturbed", small_config(normalise=True), seed=1)
    torch_checkpoint.save_checkpoint(other / "model.pt", model, spec, payload["config"])
    assert cli(capsys, "export", "--onnx", other)[0] == 0
    report = tmp_path / "r.json"
    code, out, _ = cli(capsys, "verify", torch_run / "model.onnx", other / "model.onnx", "--random", 64,
                       "--report", report)
    assert code == 1 and "FAIL (A vs B difference)" in out
    diff = next(c for c in json.loads(report.read_text())["checks"] if c["name"] == "A vs B difference")
    assert diff["figures"]["max_abs"] > 1e-5


@pytest.mark.torch
def test_missing_config_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"x")
    code, _, err = cli(capsys, "export", "--onnx", tmp_path / "model.pt")
    assert code == 2 and "config.json" in err and len(err.strip().splitlines()) == 1


@pytest.mark.torch
def test_verify_rejects_a_torch_export_without_softmax_or_truncated(torch_run, tmp_path, capsys):
    model = onnx.load(str(torch_run / "model.onnx"))
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    for node in model.graph.node:
        node.output[:] = ["probabilities" if o == softmax.input[0] else o for o in node.output]
    model.graph.node.remove(softmax)
    onnx.save(model, str(tmp_path / "logits.onnx"))
    code, out, _ = cli(capsys, "verify", torch_run / "model.onnx", tmp_path / "logits.onnx", "--random", 32)
    assert code == 1 and "softmax B" in out and "FAIL (softmax B, A vs B difference)" in out

    data = (torch_run / "model.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) * 2 // 3])
    code, out, err = cli(capsys, "verify", torch_run / "model.onnx", tmp_path / "cut.onnx")
    assert code == 2 and out == "" and "cut.onnx" in err and len(err.strip().splitlines()) == 1
