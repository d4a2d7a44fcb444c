"""Keras and PyTorch DeepEpi compute the same function: counts, bit-exact weight transfer, outputs to 1e-5."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx_helpers import realistic_g

from deepepi.models.deepepi_cnn.spec import ArchSpec, ParamCounts

pytestmark = [pytest.mark.torch, pytest.mark.tf]

# Float32 rounding alone moves the default network's probabilities by a few 1e-6 (both frameworks are
# equally far from a float64 reference), so 1e-5 catches any real difference in what is computed.
TOL = 1e-5
DEFAULT = ArchSpec()


def _calibrate_and_randomise(model, spec: ArchSpec, x: np.ndarray, seed: int) -> None:
    """Random weights and BN gamma/beta; BN statistics measured on ``x`` (so activations neither vanish
    nor explode) and then perturbed: every BN parameter and statistic matters to the output."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * (p[0].numel() ** -0.5))
            elif "_bn." in name and name.endswith("weight"):
                p.copy_(0.7 + 0.6 * torch.rand(p.shape, generator=gen))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: after one batch, running stats = statistics of x
        model.train()
        model(torch.from_numpy(x))
        for bn in bns:
            bn.momentum = spec.torch_bn_momentum
            bn.running_mean.add_(0.05 * bn.running_var.sqrt() * torch.randn(bn.running_mean.shape, generator=gen))
            bn.running_var.mul_(0.9 + 0.2 * torch.rand(bn.running_var.shape, generator=gen))
    model.eval()


@pytest.fixture(scope="module")
def pair(K, T):
    """Default-spec PyTorch model with calibrated random weights, and the Keras model given the same."""
    torch_model = T.DeepEpiCnn(DEFAULT)
    _calibrate_and_randomise(torch_model, DEFAULT, realistic_g(256, DEFAULT.window, seed=100), seed=1)
    keras_model = K.build_keras_model(DEFAULT)
    K.import_weights(keras_model, DEFAULT, T.export_weights(torch_model, DEFAULT))
    return torch_model, keras_model


@pytest.fixture(scope="module")
def builtin_windows(tmp_path_factory):
    """1,000 windows of the built-in synthetic dataset, in g: the first 500 seizure and 500 other windows."""
    from deepepi.data.csvio import load_csv
    from deepepi.data.synth import default_dataset
    from deepepi.data.windows import make_windows

    csv = default_dataset(root=tmp_path_factory.mktemp("builtin"))
    windows = make_windows(load_csv(csv), window=DEFAULT.window, step=125)
    order = np.r_[np.flatnonzero(windows.y == 1)[:500], np.flatnonzero(windows.y == 0)[:500]]
    return windows.subset(order)


def _assert_agree(K, T, pair, x: np.ndarray) -> np.ndarray:
    torch_model, keras_model = pair
    p_torch = T.predict_proba(torch_model, x)
    p_keras = K.predict_proba(keras_model, x)
    assert np.abs(p_torch - p_keras).max() <= TOL
    return p_torch


def test_default_counts_equal(K, T, pair):
    torch_model, keras_model = pair
    assert K.count_parameters(keras_model) == T.count_parameters(torch_model) == ParamCounts(97_362, 1_344)


def test_round_trip_torch_keras_torch_bit_exact(K, T, pair):
    torch_model, keras_model = pair
    first = T.export_weights(torch_model, DEFAULT)
    via_keras = K.export_weights(keras_model, DEFAULT)
    back = T.DeepEpiCnn(DEFAULT)
    T.import_weights(back, DEFAULT, via_keras)
    again = T.export_weights(back, DEFAULT)
    assert set(first) == set(via_keras) == set(again)
    for key in first:
        assert np.array_equal(first[key], via_keras[key]) and np.array_equal(first[key], again[key]), key
    for key, value in torch_model.state_dict().items():
        assert np.array_equal(value.numpy(), back.state_dict()[key].numpy()) or key.endswith("num_batches_tracked")


def test_agree_on_random_windows(K, T, pair):
    x = realistic_g(1000, DEFAULT.window, seed=7)
    p = _assert_agree(K, T, pair, x)
    assert p[:, 1].std() > 0.05  # outputs depend on the input: the comparison is not between constants


def test_agree_on_builtin_dataset_windows(K, T, pair, builtin_windows):
    assert len(builtin_windows) == 1000 and 0 < builtin_windows.y.sum() < 1000
    p = _assert_agree(K, T, pair, builtin_windows.X)
    assert p[:, 1].std() > 0.01


def test_bn_momentum_is_the_same_rule(K, T):
    """One training-mode step moves the running mean identically: keras momentum m == torch 1 - m."""
    import torch

    spec = ArchSpec(window=20, filters=(3,), strides=(1,), dense_widths=(), bn_momentum=0.9)
    torch_model = T.DeepEpiCnn(spec)
    keras_model = K.build_keras_model(spec)
    K.import_weights(keras_model, spec, T.export_weights(torch_model, spec))
    x = realistic_g(8, 20, seed=1)
    torch_model.train()
    with torch.no_grad():
        torch_model(torch.from_numpy(x))
    keras_model(x, training=True)
    np.testing.assert_allclose(keras_model.get_layer("conv1_bn").moving_mean.numpy(),
                               torch_model.conv1_bn.running_mean.numpy(), atol=1e-6)


@st.composite
def small_specs(draw) -> ArchSpec:
    n = draw(st.integers(1, 3))
    kernel = draw(st.integers(1, 4))
    strides = tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))
    probe = ArchSpec(window=64, filters=(1,) * n, strides=strides, kernel_size=kernel)
    return ArchSpec(
        window=probe.min_window() + draw(st.integers(0, 24)),
        filters=tuple(draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))),
        strides=strides, kernel_size=kernel,
        dense_widths=tuple(draw(st.lists(st.integers(1, 8), max_size=2))),
        num_classes=draw(st.integers(2, 3)),
        conv_dropout=draw(st.sampled_from([0.0, 0.2])), dense_dropout=draw(st.sampled_from([0.0, 0.025])),
        bn_epsilon=draw(st.sampled_from([1e-5, 1e-3])), bn_momentum=draw(st.sampled_from([0.9, 0.99])),
    )


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=small_specs(), seed=st.integers(0, 2**16))
def test_random_specs_same_counts_and_outputs(K, T, spec, seed):
    torch_model = T.DeepEpiCnn(spec)
    x = realistic_g(32, spec.window, seed=seed)
    _calibrate_and_randomise(torch_model, spec, x, seed=seed)
    keras_model = K.build_keras_model(spec)
    assert K.count_parameters(keras_model) == T.count_parameters(torch_model) == spec.expected_counts()
    K.import_weights(keras_model, spec, T.export_weights(torch_model, spec))
    back = K.export_weights(keras_model, spec)
    assert all(np.array_equal(v, back[k]) for k, v in T.export_weights(torch_model, spec).items())
    diff = np.abs(T.predict_proba(torch_model, x) - K.predict_proba(keras_model, x)).max()
    assert diff <= TOL


@pytest.mark.parametrize("preset", ["reference-tensorflow", "reference-pytorch", "seed"])
def test_presets_same_conv_lengths_counts_and_outputs(K, T, preset):
    """Per preset: both frameworks' conv layers give the spec's lengths (the stride pattern, which the
    parameter count cannot see), and a PyTorch model's Keras twin computes the same (epsilon included)."""
    import torch

    from deepepi.models.deepepi_cnn.spec import PRESETS

    p = PRESETS[preset]
    spec = ArchSpec(strides=p.strides, bn_epsilon=p.bn_epsilon, bn_momentum=p.bn_momentum)
    expected = [746, 742, 738, 734, 365, 361, 357, 353, 349, 173, 169, 165, 161, 79 if preset == "seed" else 157]
    assert spec.conv_lengths() == expected
    torch_model = T.DeepEpiCnn(spec)
    keras_model = K.build_keras_model(spec)
    assert [keras_model.get_layer(f"conv{i}").output.shape[1] for i in range(1, 15)] == expected
    lengths = {}
    hooks = [getattr(torch_model, f"conv{i}").register_forward_hook(
        lambda _m, _i, out, i=i: lengths.__setitem__(i, out.shape[-1])) for i in range(1, 15)]
    with torch.no_grad():
        torch_model.eval()(torch.zeros(2, spec.window))
    for hook in hooks:
        hook.remove()
    assert [lengths[i] for i in range(1, 15)] == expected
    assert keras_model.get_layer("conv1_bn").epsilon == torch_model.conv1_bn.eps == p.bn_epsilon
    _calibrate_and_randomise(torch_model, spec, realistic_g(256, spec.window, seed=100), seed=3)
    K.import_weights(keras_model, spec, T.export_weights(torch_model, spec))
    _assert_agree(K, T, (torch_model, keras_model), realistic_g(200, spec.window, seed=8))
