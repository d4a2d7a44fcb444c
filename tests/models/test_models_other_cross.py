"""SpecCnn and AMBER in Keras and PyTorch compute the same function: counts, front end, bit-exact
weight transfer, outputs to 1e-5, saving and loading, and ONNX export + verify of both frameworks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from converters.contract import read_metadata
from deepepi.core.config import REPO_CONFIGS, load_config
from deepepi.models import registry
from deepepi.models.amber.spec import AmberSpec
from deepepi.models.speccnn.spec import SpecCnnSpec
from deepepi.models.registry import spec_from_config
from onnx_helpers import cli, make_run, realistic_g

pytestmark = [pytest.mark.torch, pytest.mark.tf]

TOL = 1e-5  # probabilities; float32 rounding alone is ~1e-7 here
TINY = {"specCnn": SpecCnnSpec(filters=(4, 8), analysis_samples=250, spec_step=10),
        "amber": AmberSpec(filters=(4, 8, 8), row_hidden=8, col_hidden=8, heads=2, key_dim=4, dense_units=8)}
CONFIGS = {"specCnn": REPO_CONFIGS / "smoke_speccnn.json", "amber": REPO_CONFIGS / "smoke_amber.json"}


def _random_weights(spec, seed: int) -> dict[str, np.ndarray]:  # noqa: ANN001 - any spec
    """Every weight random (BatchNorm statistics positive and non-trivial), so each one matters."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in spec.weight_shapes().items():
        param = key.rsplit("/", 1)[1]
        if param.endswith("kernel"):
            value = rng.normal(0.0, 1.0 / np.sqrt(np.prod(shape[:-1])), shape)
        elif param in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        out[key] = value.astype(np.float32)
    return out


def _pair(K, T, spec, seed: int):  # noqa: ANN001, ANN202
    weights = _random_weights(spec, seed)
    torch_model = registry.build(spec, "pytorch").eval()
    T.import_weights(torch_model, spec, weights)
    keras_model = registry.build(spec, "tensorflow")
    K.import_weights(keras_model, spec, weights)
    return weights, torch_model, keras_model


@pytest.mark.parametrize("spec", [SpecCnnSpec(analysis_samples=250), AmberSpec()], ids=["specCnn", "amber"])
def test_reference_sized_counts_equal_in_both_frameworks(K, T, spec):
    """SpecCnn 250/50/5 x 3: 20,546 trainable + 192; AMBER 128/128: 1,012,354 + 1,152 (README)."""
    expected = {"specCnn": (20_546, 192), "amber": (1_012_354, 1_152)}[spec.model]
    k_counts = K.count_parameters(registry.build(spec, "tensorflow"))
    t_counts = T.count_parameters(registry.build(spec, "pytorch"))
    assert (k_counts.trainable, k_counts.non_trainable) == expected
    assert k_counts == t_counts == spec.expected_counts()


def test_spectrogram_front_end_equals_numpy_fft_in_both_frameworks():
    import torch

    from deepepi.models.speccnn import keras as keras_speccnn, torch as torch_speccnn

    spec = SpecCnnSpec(analysis_samples=250)
    x = realistic_g(16, spec.window, seed=3)
    x[0] = 1.0  # a still wrist: every bin is below zero_tol and becomes exactly 0
    want = spec.numpy_spectrogram(x)
    with torch.no_grad():
        got_torch = torch_speccnn.Spectrogram(spec)(torch.from_numpy(x)).numpy()[:, 0]
    got_keras = keras_speccnn.spectrogram(spec, x)
    assert want.shape == got_torch.shape == got_keras.shape == (16, 25, 41)
    np.testing.assert_allclose(got_torch, want, atol=1e-5 * want.max())
    np.testing.assert_allclose(got_keras, want, atol=1e-5 * want.max())
    assert np.all(got_torch[0] == 0) and np.all(got_keras[0] == 0)
    assert 0 < np.mean(want == 0) < 1  # the zero_tol rule really acts on these windows


@pytest.mark.parametrize("name", list(TINY))
def test_round_trip_torch_keras_torch_bit_exact(K, T, name):
    spec = TINY[name]
    weights, torch_model, keras_model = _pair(K, T, spec, seed=1)
    from_keras = K.export_weights(keras_model, spec)
    back = registry.build(spec, "pytorch")
    T.import_weights(back, spec, from_keras)
    again = T.export_weights(back, spec)
    assert list(from_keras) == list(again) == list(spec.weight_shapes())
    for key, value in weights.items():
        assert from_keras[key].tobytes() == value.tobytes() == again[key].tobytes(), key
    for (name_a, a), (name_b, b) in zip(torch_model.state_dict().items(), back.state_dict().items()):
        assert name_a == name_b and torch_equal(a, b), name_a


def torch_equal(a, b) -> bool:  # noqa: ANN001
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.parametrize("name", list(TINY))
def test_outputs_agree_and_every_weight_matters(K, T, name):
    spec = TINY[name]
    _, torch_model, keras_model = _pair(K, T, spec, seed=2)
    x = realistic_g(64, spec.window, seed=4)
    p_torch, p_keras = T.predict_proba(torch_model, x), K.predict_proba(keras_model, x)
    assert np.abs(p_torch - p_keras).max() <= TOL
    assert p_torch[:, 1].std() > 1e-3  # the windows are told apart: the comparison is not of constants
    # Perturb one kernel at a time in Keras only (the last three: logits, dense / attention, LSTM / conv):
    # the outputs must move, so the agreement above is not that of weights that do nothing.
    rng = np.random.default_rng(0)
    for key in [k for k in spec.weight_shapes() if k.endswith("kernel")][-3:]:
        w = K.export_weights(keras_model, spec)
        w[key] = w[key] + rng.normal(0.0, 0.3, w[key].shape).astype(np.float32)
        moved = registry.build(spec, "tensorflow")
        K.import_weights(moved, spec, w)
        assert np.abs(K.predict_proba(moved, x) - p_torch).max() > 10 * TOL, key


@pytest.mark.parametrize("name", list(TINY))
def test_native_files_round_trip(K, T, name, tmp_path):
    """A .keras file loads with safe_mode (SpecCnn's spectrogram is a registered layer); a .pt
    checkpoint rebuilds its architecture from the stored spec."""
    spec = TINY[name]
    _, torch_model, keras_model = _pair(K, T, spec, seed=5)
    x = realistic_g(8, spec.window, seed=6)
    K.save_keras_model(tmp_path / "m.keras", keras_model)
    loaded = K.load_keras_model(tmp_path / "m.keras")
    assert np.array_equal(K.predict_proba(loaded, x), K.predict_proba(keras_model, x))
    T.save_checkpoint(tmp_path / "m.pt", torch_model, spec, {})
    model, got, _ = T.load_checkpoint(tmp_path / "m.pt")
    assert got == spec and type(model) is type(torch_model)
    assert np.array_equal(T.predict_proba(model, x), T.predict_proba(torch_model, x))


@pytest.mark.parametrize("name", list(TINY))
def test_model_summary_matches(capsys, name):
    code, out, _ = cli(capsys, "model", "summary", "-c", CONFIGS[name])
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("MATCH: Keras and PyTorch")
    spec = spec_from_config(load_config(CONFIGS[name]))
    assert f"{spec.expected_counts().trainable:,}" in out


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pytorch", "tensorflow"])
@pytest.mark.parametrize("name", list(TINY))
def test_export_both_frameworks_and_verify(tmp_path, capsys, name, framework):
    """Native export and the other framework's twin from weights.npz: same contract, same
    trainable parameters, `deepepi verify` PASS within 1e-5."""
    cfg = load_config(CONFIGS[name]).with_overrides(framework=framework, modelType=framework)
    run = make_run(tmp_path / "run", cfg, seed=7)
    other = "tf" if framework == "pytorch" else "pytorch"
    assert cli(capsys, "export", "--onnx", run)[0] == 0
    code, out, _ = cli(capsys, "export", "--onnx", run, "--framework", other)
    assert code == 0, out
    twin = run / ("model.tf.onnx" if other == "tf" else "model.torch.onnx")
    spec = spec_from_config(cfg)
    metas = [read_metadata(onnx.load(str(p))) for p in (run / "model.onnx", twin)]
    model = onnx.load(str(twin))
    assert [i.name for i in model.graph.input] == ["acc"] and [o.name for o in model.graph.output] == ["probabilities"]
    for meta in metas:
        assert meta["trainable_parameters"] == str(spec.expected_counts().trainable)
        assert json.loads(meta["spec"]) == spec.to_dict()
    report = tmp_path / "r.json"
    code, out, _ = cli(capsys, "verify", run / "model.onnx", twin, "--random", 128, "--report", report)
    assert code == 0, out
    checks = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    assert checks["A vs B difference"]["figures"]["max_abs"] <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pytorch", "tensorflow"])
@pytest.mark.parametrize("name", list(TINY))
def test_train_one_epoch(tmp_path, capsys, tiny_csv, name, framework):
    """`deepepi train` runs each model in each framework; weights.npz names the architecture and holds
    exactly the saved native model's weights (which loads: safe_mode for .keras, weights_only for .pt)."""
    from deepepi.models.weights import load_weights

    out = tmp_path / "run"
    code, text, _ = cli(capsys, "train", "--config", CONFIGS[name], "--data", tiny_csv, "--framework", framework,
                        "--out", out, "--epochs", 1, "--quiet")
    assert code == 0, text
    weights, spec = load_weights(out / "weights.npz")
    assert spec == spec_from_config(load_config(CONFIGS[name]))
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["framework"], metrics["epochs_run"]) == (framework, 1)
    assert np.isfinite(metrics["test"]["loss"])
    if framework == "pytorch":
        from deepepi.models import torch_checkpoint, torch_weights

        native = torch_weights.export_weights(torch_checkpoint.load_checkpoint(out / "model.pt")[0], spec)
    else:
        from deepepi.models import keras_files, keras_weights

        native = keras_weights.export_weights(keras_files.load_keras_model(out / "model.keras"), spec)
    assert all(native[k].tobytes() == weights[k].tobytes() for k in spec.weight_shapes())


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepepi.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("data"), users=3, events=24, seed=0).csv_path


@pytest.mark.slow
@pytest.mark.litert
@pytest.mark.parametrize("name", list(TINY))
def test_app_file_tflite(tmp_path, capsys, name):
    """`export --tflite` (self-checked against the Keras model before it is written): the spectrogram
    layer and the unrolled LSTMs convert."""
    cfg = load_config(CONFIGS[name]).with_overrides(framework="tensorflow", modelType="tensorflow")
    run = make_run(tmp_path / "run", cfg, seed=8)
    code, out, err = cli(capsys, "export", "--tflite", run)
    assert code == 0 and (run / "model.tflite").is_file(), out + err
    assert json.loads((run / "model.tflite.json").read_text())["input_size"] == 750


@pytest.mark.slow
@pytest.mark.executorch
def test_app_file_pte_of_speccnn(tmp_path, capsys):
    """`export --pte` (self-checked against the PyTorch model): the DFT kernel is a plain tensor
    attribute, which ExecuTorch's export accepts (it refuses non-persistent buffers). AMBER's .pte
    export works the same way; it is left out here for time (about 45 s)."""
    cfg = load_config(CONFIGS["specCnn"]).with_overrides(framework="pytorch", modelType="pytorch")
    run = make_run(tmp_path / "run", cfg, seed=9)
    code, out, err = cli(capsys, "export", "--pte", run)
    assert code == 0 and (run / "model.pte").is_file(), out + err
