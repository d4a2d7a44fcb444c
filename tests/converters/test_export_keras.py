"""Keras -> ONNX (tf2onnx): contract, agreement with the native model, self-check refusal via the CLI.

tf2onnx conversion is slow, so one module-scoped export serves most tests.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

from converters.contract import contract_problems, read_metadata, realistic_windows
from deepepi.cli import main
from deepepi.core.io import sha256_file
from deepepi.core.preprocessing import Preprocessing
from onnx_helpers import cli, make_run, small_config

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A Keras run directory (normalising preprocessing) exported through the CLI entry point."""
    run_dir = make_run(tmp_path_factory.mktemp("keras") / "run",
                       small_config(normalise=True, framework="tensorflow"), seed=2)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--onnx", str(run_dir)])
    assert exit_info.value.code == 0
    return run_dir


def test_export_passes_checker_and_contract(run):
    from deepepi.models.deepepi_cnn.spec import ArchSpec

    model = onnx.load(str(run / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert contract_problems(model, window=100, num_classes=2) == []
    meta = read_metadata(model)
    spec = ArchSpec.from_config(small_config())
    assert meta["framework"] == "tensorflow" and meta["exporter"] == "tf2onnx"
    assert meta["source_file"] == "model.keras" and meta["source_sha256"] == sha256_file(run / "model.keras")
    assert int(meta["trainable_parameters"]) == spec.expected_counts().trainable
    assert json.loads(meta["preprocessing"])["normalise"] is True
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]


def test_onnx_matches_native_model_and_reference_evaluator(run):
    from deepepi.models.keras_files import load_keras_model
    from deepepi.models.keras_predict import predict_proba

    raw = realistic_windows(9, 100, seed=12)
    raw[0] = 980.0  # a still sensor: flat, normalisation must only subtract the mean
    got = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"]) \
        .run(["probabilities"], {"acc": raw})[0]
    want = predict_proba(load_keras_model(run / "model.keras"), Preprocessing(normalise=True).apply(raw))
    assert np.max(np.abs(got - want)) <= 1e-5
    assert 0.02 < float(want[:, 1].mean()) < 0.98
    got_ref = ReferenceEvaluator(str(run / "model.onnx")).run(None, {"acc": raw[:4]})[0]
    assert np.max(np.abs(got[:4] - got_ref)) <= 1e-5


def test_self_check_refusal_exits_1_and_writes_nothing(run, tmp_path, capsys, monkeypatch):
    """A native reference with the wrong preprocessing stands in for a broken export."""
    from converters import keras_onnx

    real = keras_onnx.native_reference
    monkeypatch.setattr(keras_onnx, "native_reference",
                        lambda model, pre: real(model, Preprocessing(normalise=not pre.normalise)))
    code, _, err = cli(capsys, "export", "--onnx", run / "model.keras", "-o", tmp_path / "bad.onnx")
    assert code == 1 and "self-check failed" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
