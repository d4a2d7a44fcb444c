"""One set of weights, two frameworks: the TensorFlow export and the PyTorch twin built from
weights.npz must pass `deepepi verify` in same-weights mode (the full DeepEpi architecture)."""

from __future__ import annotations

import json

import onnx
import pytest

from converters.contract import read_metadata
from deepepi.core.config import DEFAULT_CONFIG, load_config
from onnx_helpers import cli, make_run

pytestmark = [pytest.mark.tf, pytest.mark.torch]


@pytest.fixture(scope="module")
def tf_run(tmp_path_factory):
    """A TensorFlow run of the reference DeepEpi spec (14 conv layers, window 750)."""
    return make_run(tmp_path_factory.mktemp("cross") / "run", load_config(DEFAULT_CONFIG), seed=3)


def test_tf_export_and_torch_twin_verify_as_same_weights(tf_run, tmp_path, capsys):
    code, out, _ = cli(capsys, "export", "--onnx", tf_run)
    assert code == 0, out
    code, out, _ = cli(capsys, "export", "--onnx", tf_run, "--framework", "pytorch")
    assert code == 0 and str(tf_run / "model.torch.onnx") in out
    meta_tf = read_metadata(onnx.load(str(tf_run / "model.onnx")))
    meta_torch = read_metadata(onnx.load(str(tf_run / "model.torch.onnx")))
    assert (meta_tf["framework"], meta_torch["framework"]) == ("tensorflow", "pytorch")
    assert meta_tf["trainable_parameters"] == meta_torch["trainable_parameters"] == "97362"
    assert meta_torch["source_file"] == "weights.npz"

    report = tmp_path / "r.json"
    code, out, _ = cli(capsys, "verify", tf_run / "model.onnx", tf_run / "model.torch.onnx",
                       "--random", 256, "--report", report)
    assert code == 0, out
    data = json.loads(report.read_text())
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["A vs B difference"]["figures"]["max_abs"] <= 1e-5
    assert by_name["argmax agreement"]["figures"]["agreement"] == 1.0
    assert by_name["trainable parameters"]["figures"]["trainable_a"] == 97362


def test_torch_run_gets_a_keras_twin(tmp_path, capsys):
    from onnx_helpers import small_config

    run = make_run(tmp_path / "run", small_config(normalise=True), seed=4)
    assert cli(capsys, "export", "--onnx", run)[0] == 0
    code, out, _ = cli(capsys, "export", "--onnx", run / "model.pt", "--framework", "tf")
    assert code == 0 and str(run / "model.tf.onnx") in out
    code, out, _ = cli(capsys, "verify", run / "model.onnx", run / "model.tf.onnx", "--random", 128)
    assert code == 0, out
