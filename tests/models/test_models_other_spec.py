"""Framework-free: the SpecCnn and AMBER specs, dispatch by model name, their neutral weight files."""

from __future__ import annotations

import numpy as np
import pytest

from deepepi.core.config import REPO_CONFIGS, from_dict
from deepepi.core.errors import ModelError, SpecError
from deepepi.models.registry import lookup, resolve
from deepepi.models.deepepi_cnn.spec import ArchSpec
from deepepi.models.amber.spec import AmberSpec
from deepepi.models.speccnn.spec import SpecCnnSpec
from deepepi.models.registry import model_name, spec_from_config, spec_from_dict, spec_from_json
from deepepi.models.weights import load_weights, save_weights


def cfg(**model):
    return from_dict({"modelConfig": model}, source="test.json", warn=False)


def test_speccnn_reference_example_counts_and_shapes():
    """The semantics file's example: 250/50/5, 3 layers -> input (25, 41), flatten 768,
    20,546 trainable + 192 BatchNorm statistics."""
    s = SpecCnnSpec(analysis_samples=250)
    assert (s.n_bins, s.n_spec, s.offset) == (25, 41, 500)
    assert s.image_shapes() == [(25, 41), (13, 21), (7, 11), (4, 6)]
    assert s.flat_features == 768
    counts = s.expected_counts()
    assert (counts.trainable, counts.non_trainable) == (20546, 192)


@pytest.mark.parametrize("analysis, samples, step, n_spec", [(250, 50, 5, 41), (750, 50, 25, 29), (250, 50, 50, 5),
                                                             (250, 50, 60, 4), (100, 100, 7, 1)])
def test_speccnn_column_count_is_the_reference_formula_and_every_column_fits(analysis, samples, step, n_spec):
    s = SpecCnnSpec(analysis_samples=analysis, spec_samples=samples, spec_step=step)
    assert s.n_spec == n_spec
    assert (s.n_spec - 1) * step + samples <= analysis


def test_speccnn_dft_kernel_is_the_mean_removed_dft():
    """Framing x kernel == |np.fft.fft(slice - mean)| for the bins kept; DC is exactly 0."""
    s = SpecCnnSpec(window=120, analysis_samples=100, spec_samples=20, spec_step=10)
    x = np.random.default_rng(0).normal(1.0, 0.3, (3, 120))
    frames = np.stack([x[:, 20 + j * 10:20 + j * 10 + 20] for j in range(s.n_spec)], axis=2)  # [n, 20, T]
    z = np.einsum("nst,sk->nkt", frames, s.dft_kernel().astype(np.float64))
    mag = np.hypot(z[:, :s.n_bins], z[:, s.n_bins:])
    np.testing.assert_allclose(np.where(mag < s.zero_tol, 0, mag), s.numpy_spectrogram(x), atol=1e-5)
    assert np.all(s.numpy_spectrogram(x)[:, 0] == 0)
    assert np.all(s.dft_kernel()[:, 0] == 0)


def test_amber_default_counts_and_steps():
    a = AmberSpec()
    assert a.steps == 15 and a.fusion_dim == 256
    counts = a.expected_counts()
    assert (counts.trainable, counts.non_trainable) == (1_012_354, 1_152)
    shapes = a.weight_shapes()
    assert shapes["bilstm/forward_kernel"] == (256, 512) and shapes["bilstm/backward_recurrent_kernel"] == (128, 512)
    assert shapes["lstm/kernel"] == (256, 512) and shapes["mha/query_kernel"] == (256, 4, 64)
    assert shapes["mha/output_kernel"] == (4, 64, 256)


def test_weight_groups_follow_layer_order_and_keras_param_order():
    groups = dict(AmberSpec().weight_groups())
    assert groups["bilstm"] == ["forward_kernel", "forward_recurrent_kernel", "forward_bias", "backward_kernel",
                                "backward_recurrent_kernel", "backward_bias"]
    assert groups["mha"] == ["query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
                             "output_kernel", "output_bias"]
    names = SpecCnnSpec().layer_names()
    order = [names.index(layer) for layer, _ in SpecCnnSpec().weight_groups()]
    assert order == sorted(order)


@pytest.mark.parametrize("cls, kwargs, words", [
    (SpecCnnSpec, {"analysis_samples": 800}, "exceeds the window"),
    (SpecCnnSpec, {"spec_samples": 1}, "spec_samples"),
    (SpecCnnSpec, {"analysis_samples": 40}, "exceeds analysis_samples"),
    (SpecCnnSpec, {"filters": ()}, "filters"),
    (SpecCnnSpec, {"kernel_size": 4}, "odd"),
    (SpecCnnSpec, {"dropout": 1.0}, "dropout"),
    (SpecCnnSpec, {"zero_tol": -1}, "zero_tol"),
    (AmberSpec, {"datapoint": 7}, "too short"),
    (AmberSpec, {"row_hidden": 0}, "row_hidden"),
    (AmberSpec, {"bn_momentum": 1.0}, "bn_momentum"),
    (AmberSpec, {"datapoint": 1000}, "exceeds the window"),
])
def test_invalid_specs_are_one_line_spec_errors(cls, kwargs, words):
    with pytest.raises(SpecError, match=words) as err:
        cls(**kwargs)
    assert "\n" not in str(err.value)


def test_dispatch_by_model_class_and_config_keys():
    s = spec_from_config(cfg(modelClass="specCnn", nLayers=2, filters=[4, 8], analysisSamp=250, specSamp=40,
                             specStep=8))
    assert isinstance(s, SpecCnnSpec)
    assert (s.analysis_samples, s.spec_samples, s.spec_step, s.filters, s.bn_epsilon) == (250, 40, 8, (4, 8), 1e-3)
    assert spec_from_config(cfg(modelClass="specCnn", nLayers=3)).analysis_samples == 750  # null: the window
    a = spec_from_config(cfg(modelClass="user_tools.nnTraining2.amberModel.AmberModel", amberRowHidden=16,
                             amberColHidden=8, bnEpsilon=1e-5))
    assert isinstance(a, AmberSpec) and (a.row_hidden, a.col_hidden, a.bn_epsilon, a.datapoint) == (16, 8, 1e-5, 125)
    assert isinstance(spec_from_config(cfg()), ArchSpec)
    assert model_name(cfg(modelClass="some.user.Model")) == "deepEpiCnn"


def test_dims_2_is_the_speccnn_setting_only():
    assert spec_from_config(cfg(modelClass="specCnn", dims=2)) == spec_from_config(cfg(modelClass="specCnn"))
    for model in ("deepEpiCnn", "amber"):
        with pytest.raises(SpecError, match="modelConfig.dims: got 2"):
            spec_from_config(cfg(modelClass=model, dims=2))


def test_config_errors_name_the_key():
    with pytest.raises(SpecError, match="modelConfig.filters has 2 items") as err:
        spec_from_config(cfg(modelClass="specCnn", nLayers=3, filters=[4, 8]))
    assert err.value.source == "test.json"
    with pytest.raises(SpecError, match="analysis_samples 900 exceeds the window 750"):
        spec_from_config(cfg(modelClass="specCnn", analysisSamp=900))


@pytest.mark.parametrize("spec", [SpecCnnSpec(filters=(4, 8), analysis_samples=250), AmberSpec(filters=(4, 8, 8)),
                                  ArchSpec()])
def test_specs_round_trip_by_their_model_tag(spec):
    assert spec_from_dict(spec.to_dict()) == spec
    assert spec_from_json(spec.to_json()) == spec
    if not isinstance(spec, ArchSpec):
        assert spec.to_dict()["model"] == spec.model


def test_spec_dicts_are_checked():
    d = SpecCnnSpec().to_dict()
    with pytest.raises(SpecError, match="unknown model 'nope'"):
        spec_from_dict({**d, "model": "nope"})
    with pytest.raises(SpecError, match="unknown keys"):
        spec_from_dict({**d, "extra": 1})
    d.pop("spec_step")
    with pytest.raises(SpecError, match="missing keys"):
        spec_from_dict(d)
    with pytest.raises(SpecError, match="is not 'amber'"):
        AmberSpec.from_dict(SpecCnnSpec().to_dict())


@pytest.mark.parametrize("spec", [SpecCnnSpec(filters=(4, 8), analysis_samples=250), AmberSpec(filters=(4, 8, 8))])
def test_weights_file_names_its_architecture(tmp_path, spec):
    rng = np.random.default_rng(0)
    weights = {k: rng.normal(size=s).astype(np.float32) for k, s in spec.weight_shapes().items()}
    weights = {k: np.abs(v) if k.endswith("moving_variance") else v for k, v in weights.items()}  # variance >= 0
    save_weights(tmp_path / "w.npz", weights, spec)
    loaded, got = load_weights(tmp_path / "w.npz")
    assert got == spec and all(np.array_equal(loaded[k], weights[k]) for k in weights)
    weights.pop(next(iter(weights)))
    with pytest.raises(ModelError, match="weights lack"):
        save_weights(tmp_path / "x.npz", weights, spec)


def test_registry_knows_the_reference_classes():
    assert lookup("user_tools.nnTraining2.specCnnModel.SpecCnnModel")[0].name == "specCnn"
    assert lookup("amber")[0].name == "amber"
    with pytest.warns(UserWarning, match="tensorflow reference class"):
        assert resolve("x.amberModel.AmberModel", "pytorch").name == "amber"


def test_import_of_a_non_deepepi_config_is_one_line_exit_2(tmp_path, capsys):
    from deepepi.cli import main

    (tmp_path / "model.pt").write_bytes(b"")
    with pytest.raises(SystemExit) as done:
        main(["import", str(tmp_path / "model.pt"), "-c", str(REPO_CONFIGS / "smoke_amber.json"),
              "-o", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert done.value.code == 2
    assert err.startswith("deepepi: error: ") and "import reads reference DeepEpi files only" in err
    assert not (tmp_path / "run").exists()
