"""PyTorch DeepEpi: shapes, probabilities, counts, weights-only checkpoints, neutral weight round trip."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from deepepi.core.errors import DataError, ModelError
from deepepi.models.quantile import harrell_davis
from deepepi.models.deepepi_cnn.spec import ArchSpec, ParamCounts
from deepepi.models.weights import load_weights, save_weights

pytestmark = pytest.mark.torch

TINY = ArchSpec(window=48, filters=(4, 6, 6), strides=(1, 2, 1), kernel_size=3, dense_widths=(8, 4))


@pytest.fixture(scope="module")
def T():
    from deepepi.models import torch_checkpoint, torch_predict, torch_weights
    from deepepi.models.deepepi_cnn import torch as deepepi_torch

    # the PyTorch side in one namespace: DeepEpi's module and the shared weights, checkpoint and inference modules
    return SimpleNamespace(**{n: getattr(m, n) for m in (deepepi_torch, torch_weights, torch_predict, torch_checkpoint)
                              for n in dir(m) if not n.startswith("_")})


def _windows(n: int, window: int, seed: int = 0) -> np.ndarray:
    """Realistic-scale input: about 1 g of gravity plus movement noise."""
    rng = np.random.default_rng(seed)
    return (1.0 + 0.2 * rng.standard_normal((n, window))).astype(np.float32)


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


def test_forward_gives_logits_and_proba_sums_to_one(T):
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


def test_default_counts(T):
    counts = T.count_parameters(T.DeepEpiCnn(ArchSpec()))
    assert counts == ParamCounts(97_362, 1_344, 98_706)


@pytest.mark.parametrize("spec", [TINY, ArchSpec(window=200, filters=(3,) * 4, strides=(2,) * 4, dense_widths=(),
                                                  num_classes=3, conv_dropout=0.1, dense_dropout=0.0)])
def test_counts_equal_analytic(T, spec):
    assert T.count_parameters(T.DeepEpiCnn(spec)) == spec.expected_counts()


def test_bn_settings_follow_spec(T):
    spec = ArchSpec(bn_epsilon=1e-4, bn_momentum=0.9)
    bn = T.DeepEpiCnn(spec).conv3_bn
    assert bn.eps == 1e-4 and bn.momentum == pytest.approx(0.1, abs=1e-12)


def test_module_names_follow_spec(T):
    model = T.DeepEpiCnn(ArchSpec(conv_dropout=0.2))
    assert [n for n, _ in model.named_children()] == ArchSpec(conv_dropout=0.2).layer_names()[1:]


def test_predict_proba_is_eval_mode_and_restores_training(T):
    model = T.DeepEpiCnn(ArchSpec(window=48, filters=(4,), strides=(1,), dense_widths=(8,), dense_dropout=0.5,
                                  conv_dropout=0.5))
    _randomise(model)
    model.train()
    x = _windows(16, 48)
    first, second = T.predict_proba(model, x), T.predict_proba(model, x, batch_size=3)
    np.testing.assert_allclose(first, second, atol=1e-6)  # no dropout, no batch statistics
    assert model.training


def test_predict_proba_rejects_wrong_shape(T):
    with pytest.raises(DataError, match=r"got shape \(3, 40\), expected \[n, 48\]"):
        T.predict_proba(T.DeepEpiCnn(TINY), np.zeros((3, 40), np.float32))


def test_same_seed_same_model(T):
    import torch

    torch.manual_seed(7)
    a = T.export_weights(T.DeepEpiCnn(TINY), TINY)
    torch.manual_seed(7)
    b = T.export_weights(T.DeepEpiCnn(TINY), TINY)
    assert all(np.array_equal(a[k], b[k]) for k in a)


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


def test_import_weights_names_the_bad_key(T):
    w = T.export_weights(T.DeepEpiCnn(TINY), TINY)
    w["conv2_bn/moving_variance"] = np.ones(5, np.float32)
    with pytest.raises(ModelError, match="'conv2_bn/moving_variance'"):
        T.import_weights(T.DeepEpiCnn(TINY), TINY, w)


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


def test_reference_class_wraps_model_and_harrell_davis(T):
    wrapper = T.DeepEpiCnnModelPyTorch(TINY)
    assert wrapper.predict_proba(_windows(3, 48)).shape == (3, 2)
    scores = np.random.default_rng(0).random(40)
    assert T.DeepEpiCnnModelPyTorch.harrell_davis(scores, 0.6) == harrell_davis(scores, 0.6)


def test_registry_builds_torch_model(T):
    from deepepi.models.registry import resolve

    model = resolve("user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch", "pytorch").build(TINY)
    assert isinstance(model, T.DeepEpiCnn)


def test_cli_summary_shows_counts(tmp_path, capsys):
    from deepepi.cli import main

    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps({"modelConfig": {"sampleFreq": 8, "bufferSeconds": 6, "nLayers": 3,
                                               "filters": [4, 6, 6], "strides": [1, 2, 1], "kernelSize": 3,
                                               "denseWidths": [8, 4]}}))
    with pytest.raises(SystemExit) as done:
        main(["model", "summary", "--config", str(cfg)])
    out = capsys.readouterr().out
    exp = TINY.expected_counts()
    assert done.value.code == 0
    assert "PyTorch output shape" in out and "conv2_bn" in out and f"{exp.trainable:,}" in out
    assert out.strip().splitlines()[-1].startswith("MATCH: ")


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
