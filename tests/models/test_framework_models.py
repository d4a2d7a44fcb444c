"""Keras and PyTorch DeepEpi: shapes, probabilities, counts, neutral weight round trips, Keras safe-mode
save/load and PyTorch weights-only checkpoints.

A check whose assertions are the same in both frameworks is one test parametrised over `framework`, each case
carrying its own framework marker (tf or torch: its tox environment); the checks that differ follow, Keras's
marked tf and PyTorch's marked torch.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from deepepi.core.errors import DataError, ModelError
from deepepi.models.quantile import harrell_davis
from deepepi.models.deepepi_cnn.spec import ArchSpec, ParamCounts
from deepepi.models.weights import load_weights, save_weights

FRAMEWORKS = [pytest.param("tensorflow", marks=pytest.mark.tf), pytest.param("pytorch", marks=pytest.mark.torch)]

TINY = ArchSpec(window=48, filters=(4, 6, 6), strides=(1, 2, 1), kernel_size=3, dense_widths=(8, 4))


@pytest.fixture(scope="module")
def default_model(K):
    """The default-spec model, built once: Keras model construction is slow."""
    return K.build_keras_model(ArchSpec())


@pytest.fixture
def side(framework: str, request: pytest.FixtureRequest) -> SimpleNamespace:
    """One framework's side under shared names: `build(spec)` a model, `seed(n)` its generator, its
    reference-named `wrapper` class, and the whole namespace `ns` (K or T)."""
    if framework == "tensorflow":
        import keras

        K = request.getfixturevalue("K")
        return SimpleNamespace(build=K.build_keras_model, seed=keras.utils.set_random_seed,
                               wrapper=K.DeepEpiCnnModel, ns=K)
    import torch

    T = request.getfixturevalue("T")
    return SimpleNamespace(build=T.DeepEpiCnn, seed=torch.manual_seed, wrapper=T.DeepEpiCnnModelPyTorch, ns=T)


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


def _randomise(model, seed: int = 1) -> None:
    """Random weights and BatchNorm statistics, so transfers that drop anything are caught."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if name.endswith("num_batches_tracked"):
                continue
            noise = torch.randn(t.shape, generator=g)
            t.copy_(0.5 + 0.5 * noise.abs() if name.endswith("running_var") else 0.3 * noise)


# Same assertions in both frameworks.

@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("spec", [TINY, ArchSpec(window=200, filters=(3,) * 4, strides=(2,) * 4, dense_widths=(),
                                                  num_classes=3, conv_dropout=0.1, dense_dropout=0.0)])
def test_counts_equal_analytic(side, spec):
    assert side.ns.count_parameters(side.build(spec)) == spec.expected_counts()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_predict_proba_rejects_wrong_shape(side):
    with pytest.raises(DataError, match=r"got shape \(3, 40\), expected \[n, 48\]"):
        side.ns.predict_proba(side.build(TINY), np.zeros((3, 40), np.float32))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_same_seed_same_model(side):
    side.seed(7)
    a = side.ns.export_weights(side.build(TINY), TINY)
    side.seed(7)
    b = side.ns.export_weights(side.build(TINY), TINY)
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_reference_class_wraps_model_and_harrell_davis(side):
    wrapper = side.wrapper(TINY)
    assert wrapper.predict_proba(_windows(3, 48)).shape == (3, 2)
    scores = np.random.default_rng(0).random(40)
    assert side.wrapper.harrell_davis(scores, 0.6) == harrell_davis(scores, 0.6)


# Keras only.

@pytest.mark.tf
def test_keras_forward_gives_logits_and_proba_sums_to_one(K, default_model):
    x = _windows(5, 750)
    logits = np.asarray(default_model(x, training=False))
    assert logits.shape == (5, 2)
    p = K.predict_proba(default_model, x, batch_size=2)
    assert p.shape == (5, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), atol=1e-6)
    assert default_model.layers[-1].get_config()["activation"] == "linear"


@pytest.mark.tf
def test_default_counts_and_layer_names(K, default_model):
    assert K.count_parameters(default_model) == ParamCounts(97_362, 1_344, 98_706)
    assert default_model.count_params() == 98_706
    assert [layer.name for layer in default_model.layers] == ArchSpec().layer_names()


@pytest.mark.tf
def test_input_shape_and_bn_settings(K):
    spec = ArchSpec(window=48, filters=(4,), strides=(1,), dense_widths=(8,), bn_epsilon=1e-4, bn_momentum=0.9)
    model = K.build_keras_model(spec)
    assert tuple(model.input_shape) == (None, 48)
    assert model.get_layer("reshape").output.shape[1:] == (48, 1)
    bn = model.get_layer("conv1_bn")
    assert bn.epsilon == 1e-4 and bn.momentum == 0.9


@pytest.mark.tf
def test_predict_proba_uses_inference_mode(K):
    spec = ArchSpec(window=48, filters=(4,), strides=(1,), dense_widths=(8,), conv_dropout=0.5, dense_dropout=0.5)
    model = K.build_keras_model(spec)
    K.import_weights(model, spec, _random_weights(spec))
    x = _windows(16, 48)
    np.testing.assert_allclose(K.predict_proba(model, x), K.predict_proba(model, x, batch_size=3), atol=1e-6)


@pytest.mark.tf
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


@pytest.mark.tf
def test_keras_import_weights_names_the_bad_key(K):
    model = K.build_keras_model(TINY)
    w = K.export_weights(model, TINY)
    w["dense2/kernel"] = np.zeros((4, 8), np.float32)
    with pytest.raises(ModelError, match=r"'dense2/kernel': got shape \(4, 8\), expected \(8, 4\)"):
        K.import_weights(model, TINY, w)


@pytest.mark.tf
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


@pytest.mark.tf
def test_keras_file_errors(K, tmp_path):
    with pytest.raises(ModelError, match="not found"):
        K.load_keras_model(tmp_path / "absent.keras")
    (tmp_path / "junk.keras").write_bytes(b"junk")
    with pytest.raises(ModelError, match="junk.keras: not a loadable .keras model"):
        K.load_keras_model(tmp_path / "junk.keras")
    with pytest.raises(ModelError, match="'.keras'"):
        K.save_keras_model(tmp_path / "model.h5", K.build_keras_model(TINY))


@pytest.mark.tf
def test_unsafe_model_refused_by_safe_mode(K, tmp_path):
    import keras

    inputs = keras.Input(shape=(4,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0)(inputs))
    unsafe.save(tmp_path / "lambda.keras")
    with pytest.raises(ModelError, match="lambda.keras: not a loadable"):
        K.load_keras_model(tmp_path / "lambda.keras")


@pytest.mark.tf
def test_registry_builds_keras_model(K):
    import keras

    from deepepi.models.registry import resolve

    model = resolve("user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel", "tensorflow").build(TINY)
    assert isinstance(model, keras.Model) and model.count_params() == TINY.expected_counts().total


def _tiny_summary(tmp_path, capsys):
    """`deepepi model summary` of TINY's config: (the SystemExit info, stdout)."""
    from deepepi.cli import main

    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"modelConfig": {"sampleFreq": 8, "bufferSeconds": 6, "nLayers": 3,
                                               "filters": [4, 6, 6], "strides": [1, 2, 1], "kernelSize": 3,
                                               "denseWidths": [8, 4]}}))
    with pytest.raises(SystemExit) as done:
        main(["model", "summary", "--config", str(cfg)])
    out = capsys.readouterr().out
    return done, out


@pytest.mark.tf
def test_keras_cli_summary_shows_counts(tmp_path, capsys):
    done, out = _tiny_summary(tmp_path, capsys)
    assert done.value.code == 0
    assert "Keras output shape" in out and "(None, 46, 4)" in out and f"{TINY.expected_counts().trainable:,}" in out
    assert out.strip().splitlines()[-1].startswith("MATCH: ")


@pytest.mark.tf
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


@pytest.mark.tf
def test_softmax_model_is_the_reference_form(K):
    model = K.build_keras_model(TINY)
    soft = K.softmax_model(model, TINY)
    x = np.random.default_rng(1).normal(1.0, 0.2, (6, 48)).astype(np.float32)
    assert soft.input_shape == (None, 48, 1) and soft.layers[-1].name == "softmax"
    np.testing.assert_allclose(soft.predict(x[..., None], verbose=0), K.predict_proba(model, x), atol=1e-7)
    assert soft.get_layer("conv1") is model.get_layer("conv1")  # the same weights, not a copy


# PyTorch only.

@pytest.mark.torch
def test_torch_forward_gives_logits_and_proba_sums_to_one(T):
    import torch

    model = T.DeepEpiCnn(ArchSpec()).eval()
    x = _windows(5, 750)
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    assert logits.shape == (5, 2) and logits.dtype == torch.float32
    p = T.predict_proba(model, x, batch_size=2)
    assert p.shape == (5, 2) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(p, torch.softmax(logits, -1).numpy(), atol=1e-7)
    assert not np.allclose(logits.numpy(), torch.softmax(logits, -1).numpy())  # forward is not softmaxed


@pytest.mark.torch
def test_default_counts(T):
    counts = T.count_parameters(T.DeepEpiCnn(ArchSpec()))
    assert counts == ParamCounts(97_362, 1_344, 98_706)


@pytest.mark.torch
def test_bn_settings_follow_spec(T):
    spec = ArchSpec(bn_epsilon=1e-4, bn_momentum=0.9)
    bn = T.DeepEpiCnn(spec).conv3_bn
    assert bn.eps == 1e-4 and bn.momentum == pytest.approx(0.1, abs=1e-12)


@pytest.mark.torch
def test_module_names_follow_spec(T):
    model = T.DeepEpiCnn(ArchSpec(conv_dropout=0.2))
    assert [n for n, _ in model.named_children()] == ArchSpec(conv_dropout=0.2).layer_names()[1:]


@pytest.mark.torch
def test_predict_proba_is_eval_mode_and_restores_training(T):
    model = T.DeepEpiCnn(ArchSpec(window=48, filters=(4,), strides=(1,), dense_widths=(8,), dense_dropout=0.5,
                                  conv_dropout=0.5))
    _randomise(model)
    model.train()
    x = _windows(16, 48)
    first, second = T.predict_proba(model, x), T.predict_proba(model, x, batch_size=3)
    np.testing.assert_allclose(first, second, atol=1e-6)  # no dropout, no batch statistics
    assert model.training


@pytest.mark.torch
def test_weights_round_trip_torch_npz_torch_bit_exact(T, tmp_path):
    spec = ArchSpec()
    src = T.DeepEpiCnn(spec)
    _randomise(src)
    w = T.export_weights(src, spec)
    assert w["conv2/kernel"].shape == (5, 16, 32) and w["dense1/kernel"].shape == (64, 64)
    np.testing.assert_array_equal(w["conv2/kernel"], src.conv2.weight.detach().numpy().transpose(2, 1, 0))
    save_weights(tmp_path / "w.npz", w, spec)
    loaded, loaded_spec = load_weights(tmp_path / "w.npz")
    dst = T.DeepEpiCnn(loaded_spec)
    T.import_weights(dst, loaded_spec, loaded)
    src_state, dst_state = src.state_dict(), dst.state_dict()
    for key, value in src_state.items():
        if not key.endswith("num_batches_tracked"):
            assert np.array_equal(value.numpy(), dst_state[key].numpy()), key
    x = _windows(8, 750)
    np.testing.assert_array_equal(T.predict_proba(src, x), T.predict_proba(dst, x))


@pytest.mark.torch
def test_torch_import_weights_names_the_bad_key(T):
    w = T.export_weights(T.DeepEpiCnn(TINY), TINY)
    w["conv2_bn/moving_variance"] = np.ones(5, np.float32)
    with pytest.raises(ModelError, match="'conv2_bn/moving_variance'"):
        T.import_weights(T.DeepEpiCnn(TINY), TINY, w)


@pytest.mark.torch
def test_checkpoint_round_trip_weights_only(T, tmp_path):
    import torch

    model = T.DeepEpiCnn(TINY)
    _randomise(model)
    path = tmp_path / "model.pt"
    T.save_checkpoint(path, model, TINY, {"modelConfig": {"epochs": 3}}, extra={"epoch": 2, "val_loss": 0.5})
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"state_dict", "spec", "config", "deepepi_version", "epoch", "val_loss"}
    loaded, spec, payload = T.load_checkpoint(path)
    assert spec == TINY and payload["epoch"] == 2 and payload["config"] == {"modelConfig": {"epochs": 3}}
    assert not loaded.training
    x = _windows(6, 48)
    np.testing.assert_array_equal(T.predict_proba(model, x), T.predict_proba(loaded, x))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


@pytest.mark.torch
def test_checkpoint_errors(T, tmp_path):
    import torch

    model = T.DeepEpiCnn(TINY)
    with pytest.raises(ModelError, match="reserved"):
        T.save_checkpoint(tmp_path / "a.pt", model, TINY, {}, extra={"spec": {}})
    with pytest.raises(ModelError, match="not found"):
        T.load_checkpoint(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ModelError, match="junk.pt: not a loadable"):
        T.load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}, "spec": TINY.to_dict(), "config": {}, "deepepi_version": "0",
                "evil": ArchSpec}, tmp_path / "pickled.pt")  # a class object: refused by weights_only
    with pytest.raises(ModelError, match="pickled.pt: not a loadable weights-only"):
        T.load_checkpoint(tmp_path / "pickled.pt")
    T.save_checkpoint(tmp_path / "other.pt", T.DeepEpiCnn(ArchSpec(window=48, filters=(4,), strides=(1,))),
                      TINY, {})
    with pytest.raises(ModelError, match="does not match its spec"):
        T.load_checkpoint(tmp_path / "other.pt")


@pytest.mark.torch
def test_registry_builds_torch_model(T):
    from deepepi.models.registry import resolve

    model = resolve("user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch", "pytorch").build(TINY)
    assert isinstance(model, T.DeepEpiCnn)


@pytest.mark.torch
def test_torch_cli_summary_shows_counts(tmp_path, capsys):
    done, out = _tiny_summary(tmp_path, capsys)
    exp = TINY.expected_counts()
    assert done.value.code == 0
    assert "PyTorch output shape" in out and "conv2_bn" in out and f"{exp.trainable:,}" in out
    assert out.strip().splitlines()[-1].startswith("MATCH: ")


@pytest.mark.torch
def test_accepts_the_reference_input_shapes(T):
    """[n, W], [n, 1, W] and [n, W, 1] (what the reference trainer feeds) give the same logits."""
    import torch

    model = T.DeepEpiCnn(TINY).eval()
    _randomise(model)
    x = torch.from_numpy(_windows(4, 48))
    with torch.no_grad():
        flat = model(x)
        assert torch.equal(model(x[:, None, :]), flat) and torch.equal(model(x[..., None]), flat)
        with pytest.raises(ValueError, match=r"got shape \(4, 47\)"):
            model(x[:, :47])
    np.testing.assert_array_equal(T.predict_proba(model, x.numpy()[..., None]), T.predict_proba(model, x.numpy()))


@pytest.mark.torch
def test_a_user_module_with_the_spec_layer_names_transfers_weights(T):
    """An --allow-import class has no neutral_tensors(): its weights are found by the spec's layer names."""
    from torch import nn

    spec = ArchSpec(filters=(4, 8), strides=(1, 2), dense_widths=(8,), window=64)
    source = T.DeepEpiCnn(spec)
    _randomise(source)

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name, module in T.DeepEpiCnn(spec).named_children():
                self.add_module(name, module)

    plain = Plain()
    assert not hasattr(plain, "neutral_tensors")
    weights = T.export_weights(source, spec)
    T.import_weights(plain, spec, weights)
    again = T.export_weights(plain, spec)
    assert list(again) == list(weights) and all(again[k].tobytes() == weights[k].tobytes() for k in weights)
