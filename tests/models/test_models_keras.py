"""Keras DeepEpi: shapes, probabilities, counts, safe-mode save/load, neutral weight round trip."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from deepepi.core.errors import DataError, ModelError
from deepepi.models.quantile import harrell_davis
from deepepi.models.deepepi_cnn.spec import ArchSpec, ParamCounts
from deepepi.models.weights import load_weights, save_weights

pytestmark = pytest.mark.tf

TINY = ArchSpec(window=48, filters=(4, 6, 6), strides=(1, 2, 1), kernel_size=3, dense_widths=(8, 4))


@pytest.fixture(scope="module")
def K():
    from deepepi.models import keras_files, keras_predict, keras_weights
    from deepepi.models.deepepi_cnn import keras as deepepi_keras

    # the Keras side in one namespace: DeepEpi's builder and the shared weights, files and inference modules
    return SimpleNamespace(**{n: getattr(m, n) for m in (deepepi_keras, keras_weights, keras_predict, keras_files)
                              for n in dir(m) if not n.startswith("_")})


@pytest.fixture(scope="module")
def default_model(K):
    """The default-spec model, built once: Keras model construction is slow."""
    return K.build_keras_model(ArchSpec())


def _windows(n: int, window: int, seed: int = 0) -> np.ndarray:
    """Realistic-scale input: about 1 g of gravity plus movement noise."""
    rng = np.random.default_rng(seed)
    return (1.0 + 0.2 * rng.standard_normal((n, window))).astype(np.float32)


def _random_weights(spec: ArchSpec, seed: int = 1) -> dict[str, np.ndarray]:
    """Random weights and BatchNorm statistics (variances positive)."""
    rng = np.random.default_rng(seed)
    return {k: (0.5 + 0.5 * np.abs(rng.standard_normal(s)) if k.endswith("moving_variance")
                else 0.3 * rng.standard_normal(s)).astype(np.float32)
            for k, s in spec.weight_shapes().items()}


def test_forward_gives_logits_and_proba_sums_to_one(K, default_model):
    x = _windows(5, 750)
    logits = np.asarray(default_model(x, training=False))
    assert logits.shape == (5, 2)
    p = K.predict_proba(default_model, x, batch_size=2)
    assert p.shape == (5, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), atol=1e-6)
    assert default_model.layers[-1].get_config()["activation"] == "linear"


def test_default_counts_and_layer_names(K, default_model):
    assert K.count_parameters(default_model) == ParamCounts(97_362, 1_344, 98_706)
    assert default_model.count_params() == 98_706
    assert [layer.name for layer in default_model.layers] == ArchSpec().layer_names()


def test_input_shape_and_bn_settings(K):
    spec = ArchSpec(window=48, filters=(4,), strides=(1,), dense_widths=(8,), bn_epsilon=1e-4, bn_momentum=0.9)
    model = K.build_keras_model(spec)
    assert tuple(model.input_shape) == (None, 48)
    assert model.get_layer("reshape").output.shape[1:] == (48, 1)
    bn = model.get_layer("conv1_bn")
    assert bn.epsilon == 1e-4 and bn.momentum == 0.9


@pytest.mark.parametrize("spec", [TINY, ArchSpec(window=200, filters=(3,) * 4, strides=(2,) * 4, dense_widths=(),
                                                  num_classes=3, conv_dropout=0.1, dense_dropout=0.0)])
def test_counts_equal_analytic(K, spec):
    assert K.count_parameters(K.build_keras_model(spec)) == spec.expected_counts()


def test_predict_proba_rejects_wrong_shape(K):
    with pytest.raises(DataError, match=r"got shape \(3, 40\), expected \[n, 48\]"):
        K.predict_proba(K.build_keras_model(TINY), np.zeros((3, 40), np.float32))


def test_predict_proba_uses_inference_mode(K):
    spec = ArchSpec(window=48, filters=(4,), strides=(1,), dense_widths=(8,), conv_dropout=0.5, dense_dropout=0.5)
    model = K.build_keras_model(spec)
    K.import_weights(model, spec, _random_weights(spec))
    x = _windows(16, 48)
    np.testing.assert_allclose(K.predict_proba(model, x), K.predict_proba(model, x, batch_size=3), atol=1e-6)


def test_weights_round_trip_keras_npz_keras_bit_exact(K, default_model, tmp_path):
    spec = ArchSpec()
    w = _random_weights(spec)
    K.import_weights(default_model, spec, w)
    out = K.export_weights(default_model, spec)
    assert set(out) == set(w) and all(np.array_equal(out[k], w[k]) for k in w)
    save_weights(tmp_path / "w.npz", out, spec)
    loaded, loaded_spec = load_weights(tmp_path / "w.npz")
    assert loaded_spec == spec and all(np.array_equal(loaded[k], w[k]) for k in w)
    assert np.array_equal(default_model.get_layer("conv3_bn").moving_variance.numpy(), w["conv3_bn/moving_variance"])


def test_import_weights_names_the_bad_key(K):
    model = K.build_keras_model(TINY)
    w = K.export_weights(model, TINY)
    w["dense2/kernel"] = np.zeros((4, 8), np.float32)
    with pytest.raises(ModelError, match=r"'dense2/kernel': got shape \(4, 8\), expected \(8, 4\)"):
        K.import_weights(model, TINY, w)


def test_save_and_load_keras_model_safe_mode(K, tmp_path):
    import keras

    model = K.build_keras_model(TINY)
    K.import_weights(model, TINY, _random_weights(TINY))
    path = tmp_path / "model.keras"
    K.save_keras_model(path, model)
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    loaded = K.load_keras_model(path)
    x = _windows(6, 48)
    np.testing.assert_array_equal(K.predict_proba(model, x), K.predict_proba(loaded, x))
    assert [layer.name for layer in loaded.layers] == TINY.layer_names()
    keras.saving.load_model(path, safe_mode=True)  # no custom objects needed


def test_keras_file_errors(K, tmp_path):
    with pytest.raises(ModelError, match="not found"):
        K.load_keras_model(tmp_path / "absent.keras")
    (tmp_path / "junk.keras").write_bytes(b"junk")
    with pytest.raises(ModelError, match="junk.keras: not a loadable .keras model"):
        K.load_keras_model(tmp_path / "junk.keras")
    with pytest.raises(ModelError, match="'.keras'"):
        K.save_keras_model(tmp_path / "model.h5", K.build_keras_model(TINY))


def test_unsafe_model_refused_by_safe_mode(K, tmp_path):
    import keras

    inputs = keras.Input(shape=(4,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    unsafe.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelError, match="lambda.keras: not a loadable"):
        K.load_keras_model(tmp_path / "lambda.keras")


def test_same_seed_same_model(K):
    import keras

    keras.utils.set_random_seed(7)
    a = K.export_weights(K.build_keras_model(TINY), TINY)
    keras.utils.set_random_seed(7)
    b = K.export_weights(K.build_keras_model(TINY), TINY)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_reference_class_wraps_model_and_harrell_davis(K):
    wrapper = K.DeepEpiCnnModel(TINY)
    assert wrapper.predict_proba(_windows(3, 48)).shape == (3, 2)
    scores = np.random.default_rng(0).random(40)
    assert K.DeepEpiCnnModel.harrell_davis(scores, 0.6) == harrell_davis(scores, 0.6)


def test_registry_builds_keras_model(K):
    import keras

    from deepepi.models.registry import resolve

    model = resolve("user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel", "tensorflow").build(TINY)
    assert isinstance(model, keras.Model) and model.count_params() == TINY.expected_counts().total


def test_cli_summary_shows_counts(tmp_path, capsys):
    from deepepi.cli import main

    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"modelConfig": {"sampleFreq": 8, "bufferSeconds": 6, "nLayers": 3,
                                               "filters": [4, 6, 6], "strides": [1, 2, 1], "kernelSize": 3,
                                               "denseWidths": [8, 4]}}))
    with pytest.raises(SystemExit) as done:
        main(["model", "summary", "--config", str(cfg)])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "Keras output shape" in out and "(None, 46, 4)" in out and f"{TINY.expected_counts().trainable:,}" in out
    assert out.strip().splitlines()[-1].startswith("MATCH: ")


def test_accepts_windows_with_a_channel_axis(K):
    """[n, W, 1] (the reference's input) gives the same logits as [n, W], called or predicted."""
    import keras

    model = K.build_keras_model(TINY)
    x = np.random.default_rng(0).normal(1.0, 0.2, (5, 48)).astype(np.float32)
    flat = keras.ops.convert_to_numpy(model(x, training=False))
    assert np.array_equal(keras.ops.convert_to_numpy(model(x[..., None], training=False)), flat)
    # (Keras traces predict once per model: a model predicts on one of the two layouts, not both.)
    np.testing.assert_allclose(model.predict(x[..., None], verbose=0), flat, atol=1e-6)
    np.testing.assert_array_equal(K.predict_proba(model, x[..., None]), K.predict_proba(model, x))


def test_softmax_model_is_the_reference_form(K):
    model = K.build_keras_model(TINY)
    soft = K.softmax_model(model, TINY)
    x = np.random.default_rng(1).normal(1.0, 0.2, (6, 48)).astype(np.float32)
    assert soft.input_shape == (None, 48, 1) and soft.layers[-1].name == "softmax"
    np.testing.assert_allclose(soft.predict(x[..., None], verbose=0), K.predict_proba(model, x), atol=1e-7)
    assert soft.get_layer("conv1") is model.get_layer("conv1")  # the same weights, not a copy
