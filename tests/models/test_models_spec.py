"""Framework-free: the architecture spec, analytic counts, neutral weight files, Harrell-Davis, registry."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats.mstats import hdquantiles

from deepepi.core.config import REPO_CONFIGS, from_dict, load_config
from deepepi.core.errors import DataError, DeepEpiError, ModelError, SpecError
from deepepi.models.quantile import harrell_davis
from deepepi.models.registry import ModelEntry, register, resolve, known_models
from deepepi.models.deepepi_cnn.spec import DEFAULT_FILTERS, DEFAULT_STRIDES, PRESETS, SEED_STRIDES, SPEC_KEY, ArchSpec, ParamCounts, reference_strides
from deepepi.models.weights import load_weights, save_weights

PT_CLASS = "user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch"
TF_CLASS = "user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel"


def cfg(**model):
    return from_dict({"modelConfig": model}, source="test.json", warn=False)


# ----- spec ---------------------------------------------------------------------------------------
def test_defaults_are_the_reference_keras_model():
    s = ArchSpec()
    assert (s.window, s.in_channels, s.kernel_size, s.padding, s.num_classes) == (750, 1, 5, "valid", 2)
    assert s.filters == (16,) + (32,) * 11 + (64, 64)
    assert s.strides == (1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1)
    assert s.dense_widths == (64, 64, 32, 16) and s.dense_dropout == 0.025 and s.conv_dropout == 0.0
    assert (s.bn_epsilon, s.bn_momentum) == (1e-3, 0.99)
    assert s.torch_bn_momentum == pytest.approx(0.01, abs=1e-15)
    assert s.preset().name == "reference-tensorflow"


# Every conv layer's output length ('valid', kernel 5) per preset: equal parameter counts, different networks.
REFERENCE_LENGTHS = [746, 742, 738, 734, 365, 361, 357, 353, 349, 173, 169, 165, 161, 157]
SEED_LENGTHS = REFERENCE_LENGTHS[:-1] + [79]


@pytest.mark.parametrize("name, lengths", [("reference-tensorflow", REFERENCE_LENGTHS),
                                           ("reference-pytorch", REFERENCE_LENGTHS), ("seed", SEED_LENGTHS)])
def test_presets_conv_lengths_and_counts(name, lengths):
    p = PRESETS[name]
    s = ArchSpec(strides=p.strides, bn_epsilon=p.bn_epsilon, bn_momentum=p.bn_momentum)
    assert s.conv_lengths() == lengths and s.preset() is p
    assert s.expected_counts() == ParamCounts(97_362, 1_344, 98_706)


def test_reference_stride_rule():
    assert reference_strides(14) == DEFAULT_STRIDES and SEED_STRIDES != DEFAULT_STRIDES
    assert [i + 1 for i, v in enumerate(reference_strides(16)) if v == 2] == [5, 10, 15]


@pytest.mark.parametrize("framework, eps, momentum", [("tensorflow", 1e-3, 0.99), ("pytorch", 1e-5, 0.9)])
def test_config_without_architecture_keys_builds_the_reference_model_of_its_framework(framework, eps, momentum):
    s = ArchSpec.from_config(cfg(framework=framework))
    assert (s.strides, s.bn_epsilon, s.bn_momentum) == (DEFAULT_STRIDES, eps, momentum)
    assert s.preset().name == f"reference-{framework}"
    # Switching the framework (deepepi train --framework) switches the reference defaults with it.
    other = "pytorch" if framework == "tensorflow" else "tensorflow"
    assert ArchSpec.from_config(cfg(framework=framework).with_overrides(framework=other)).preset().name == \
        f"reference-{other}"


def test_explicit_architecture_keys_win_and_the_seed_pattern_is_one_line_away():
    s = ArchSpec.from_config(cfg(framework="pytorch", strides=list(SEED_STRIDES)))
    assert s.strides == SEED_STRIDES and s.conv_lengths()[-1] == 79 and s.bn_epsilon == 1e-5
    s = ArchSpec.from_config(cfg(framework="pytorch", bnEpsilon=1e-3, bnMomentum=0.99))
    assert (s.bn_epsilon, s.bn_momentum) == (1e-3, 0.99)


def test_shipped_configs_state_the_reference_architecture():
    for name, eps in (("nnConfig_deep.json", 1e-3), ("nnConfig_deep_pytorch.json", 1e-5)):
        c = load_config(REPO_CONFIGS / name)
        assert all(c.model[k] is not None for k in ("filters", "strides", "bnEpsilon", "bnMomentum"))
        s = ArchSpec.from_config(c)
        # momentum 0.9 in both: stable BatchNorm statistics after a few epochs on small data.
        assert (s.strides, s.bn_epsilon, s.bn_momentum) == (DEFAULT_STRIDES, eps, 0.9)
        assert s.conv_lengths() == REFERENCE_LENGTHS
        line = [ln for ln in (REPO_CONFIGS / name).read_text().splitlines() if '"strides"' in ln]
        assert len(line) == 1 and "]" in line[0]  # one line to swap for the seed's pattern
    assert ArchSpec.from_config(cfg()) == ArchSpec()


def test_summary_names_the_preset_and_conv_lengths():
    from deepepi.models.summary import architecture_lines

    lines = architecture_lines(ArchSpec.from_config(cfg(framework="pytorch")))
    assert lines[0].startswith("architecture preset: reference-pytorch")
    assert lines[2] == "conv output lengths: [" + ", ".join(map(str, REFERENCE_LENGTHS)) + "]"
    seedish = architecture_lines(ArchSpec(strides=SEED_STRIDES, bn_momentum=0.9))
    assert seedish[0] == "architecture preset: none; nearest seed, differing in bn_momentum 0.9 (preset: 0.99)"
    assert seedish[2].endswith("161, 79]")


def test_analytic_counts_of_default_spec():
    assert ArchSpec().expected_counts() == ParamCounts(97_362, 1_344, 98_706)


def test_dropout_layers_follow_rates():
    names = ArchSpec(conv_dropout=0.1).layer_names()
    assert names.count("conv1_dropout") == 1 and "conv14_dropout" in names
    assert [n for n in ArchSpec().layer_names() if "dropout" in n] == ["dense1_dropout"]
    assert not [n for n in ArchSpec(dense_dropout=0.0).layer_names() if "dropout" in n]


def test_param_counts_total_is_checked():
    assert ParamCounts(3, 4).total == 7
    with pytest.raises(ValueError):
        ParamCounts(3, 4, 8)


def test_from_config_reads_model_keys():
    s = ArchSpec.from_config(cfg(sampleFreq=25, bufferSeconds=4, filters=[8, 8, 4], strides=[1, 2, 1], nLayers=3,
                                 kernelSize=3, denseWidths=[6], numClasses=2, convDropout=0.2,
                                 denseDropout=0.1, bnEpsilon=1e-5, bnMomentum=0.9))
    assert (s.window, s.filters, s.strides, s.kernel_size, s.dense_widths) == (100, (8, 8, 4), (1, 2, 1), 3, (6,))
    assert (s.num_classes, s.conv_dropout, s.dense_dropout, s.bn_epsilon, s.bn_momentum) == (2, 0.2, 0.1, 1e-5, 0.9)


def test_n_layers_takes_first_defaults_when_lists_are_null():
    s = ArchSpec.from_config(cfg(nLayers=5))
    assert s.filters == DEFAULT_FILTERS[:5] and s.strides == DEFAULT_STRIDES[:5]
    s = ArchSpec.from_config(cfg(nLayers=16, filters=[8] * 16, bufferSeconds=60))
    assert s.strides == reference_strides(16)  # the reference rule goes on past the 14 default layers


@pytest.mark.parametrize("model, words", [
    ({"nLayers": 3, "filters": [8, 8]}, ["modelConfig.filters", "2 items", "nLayers", "3"]),
    ({"nLayers": 2, "strides": [1, 1, 2]}, ["modelConfig.strides", "3 items", "nLayers"]),
    ({"nLayers": 15}, ["modelConfig.nLayers=15", "filters"]),
    ({"bufferSeconds": 4}, ["window 100 is too short", "conv layer 13", "at least 125"]),
])
def test_invalid_configs_name_the_keys(model, words):
    with pytest.raises(SpecError) as err:
        ArchSpec.from_config(cfg(**model))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("test.json: ")
    for w in words:
        assert w in msg


@pytest.mark.parametrize("kwargs, word", [
    ({"filters": (8, 8), "strides": (1,)}, "strides has 1"),
    ({"filters": (8, 0), "strides": (1, 1)}, "filters[1]"),
    ({"filters": (), "strides": ()}, "filters: empty"),
    ({"strides": DEFAULT_STRIDES[:-1] + (0,)}, "strides[13]"),
    ({"kernel_size": 0}, "kernel_size"),
    ({"window": 124}, "at least 125"),
    ({"window": 0}, "window"),
    ({"num_classes": 1}, "num_classes"),
    ({"dense_widths": (4, -1)}, "dense_widths[1]"),
    ({"conv_dropout": 1.0}, "conv_dropout"),
    ({"bn_momentum": 1.0}, "bn_momentum"),
    ({"bn_epsilon": 0.0}, "bn_epsilon"),
    ({"padding": "same"}, "padding"),
    ({"in_channels": 3}, "in_channels"),
    ({"filters": "16"}, "filters"),
])
def test_invalid_specs_rejected(kwargs, word):
    with pytest.raises(SpecError) as err:
        ArchSpec(**kwargs)
    assert word in str(err.value) and "\n" not in str(err.value)


def test_min_window_is_exactly_the_receptive_field():
    s = ArchSpec()
    assert ArchSpec(window=s.min_window()).conv_lengths()[-1] == 1
    with pytest.raises(SpecError):
        ArchSpec(window=s.min_window() - 1)


def test_spec_round_trips_through_dict_and_json():
    s = ArchSpec(window=200, filters=(4, 6), strides=(2, 1), dense_widths=(), conv_dropout=0.1)
    assert ArchSpec.from_dict(s.to_dict()) == s
    assert ArchSpec.from_json(s.to_json()) == s
    assert json.loads(s.to_json())["filters"] == [4, 6]
    from_numpy = ArchSpec(window=np.int64(200), filters=np.array([4, 6]), strides=(2, 1), dense_widths=(),
                          conv_dropout=0.1)
    assert from_numpy == s and from_numpy.to_json() == s.to_json()


def test_from_dict_rejects_unknown_and_missing_keys():
    d = ArchSpec().to_dict()
    with pytest.raises(SpecError, match="unknown keys \\['surprise'\\]"):
        ArchSpec.from_dict({**d, "surprise": 1})
    d.pop("window")
    with pytest.raises(SpecError, match="missing keys \\['window'\\]"):
        ArchSpec.from_dict(d)


def test_layer_names_and_weight_shapes_are_consistent():
    s = ArchSpec()
    names = s.layer_names()
    assert names[:3] == ["input", "reshape", "conv1"] and names[-1] == "logits" and len(set(names)) == len(names)
    shapes = s.weight_shapes()
    assert shapes["conv1/kernel"] == (5, 1, 16) and shapes["conv14/kernel"] == (5, 64, 64)
    assert shapes["dense1/kernel"] == (64, 64) and shapes["logits/kernel"] == (16, 2)
    assert shapes["dense4_bn/moving_variance"] == (16,)
    assert sum(s.layer_param_counts().values()) == 98_706


# ----- neutral weights file -----------------------------------------------------------------------
def _random_weights(spec: ArchSpec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (np.abs(rng.normal(size=shape)) if k.endswith("moving_variance") else rng.normal(size=shape))
            .astype(np.float32) for k, shape in spec.weight_shapes().items()}  # a variance is >= 0


def test_weights_file_round_trip_exact_and_pickle_free(tmp_path):
    spec = ArchSpec(window=60, filters=(3, 5), strides=(1, 2), dense_widths=(4,))
    w = _random_weights(spec)
    path = tmp_path / "w.npz"
    save_weights(path, w, spec)
    got, got_spec = load_weights(path)
    assert got_spec == spec and set(got) == set(w)
    assert all(np.array_equal(got[k], w[k]) and got[k].dtype == np.float32 for k in w)
    with np.load(path, allow_pickle=False) as data:
        assert data[SPEC_KEY].shape == () and data[SPEC_KEY].dtype.kind == "U"
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary left behind


def test_weights_mismatch_names_the_key(tmp_path):
    spec = ArchSpec(window=60, filters=(3, 5), strides=(1, 2), dense_widths=(4,))
    w = _random_weights(spec)
    bad = dict(w, **{"conv2/kernel": np.zeros((5, 3, 6), np.float32)})
    with pytest.raises(ModelError, match="'conv2/kernel': got shape \\(5, 3, 6\\), expected \\(5, 3, 5\\)"):
        save_weights(tmp_path / "w.npz", bad, spec)
    missing = {k: v for k, v in w.items() if k != "dense1_bn/moving_mean"}
    with pytest.raises(ModelError, match="lack 'dense1_bn/moving_mean'"):
        save_weights(tmp_path / "w.npz", missing, spec)
    assert not (tmp_path / "w.npz").exists()


def test_load_weights_rejects_foreign_files(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ModelError, match="not a deepepi weights file"):
        load_weights(tmp_path / "plain.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="junk.npz"):
        load_weights(tmp_path / "junk.npz")
    with pytest.raises(ModelError, match="not found"):
        load_weights(tmp_path / "absent.npz")


# ----- Harrell-Davis ------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 7, 50, 301])
def test_harrell_davis_matches_scipy(n):
    rng = np.random.default_rng(n)
    x = rng.random((4, n))
    qs = [0.05, 0.3, 0.5, 0.6, 0.95]
    ours = harrell_davis(x, qs, axis=-1)  # [q, 4]
    ref = np.array([hdquantiles(row, prob=qs) for row in x]).T
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_harrell_davis_axis_and_scalar_q():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 3, 5))
    ours = harrell_davis(x, 0.6, axis=0)
    assert ours.shape == (3, 5)
    assert abs(ours[2, 4] - hdquantiles(x[:, 2, 4], prob=[0.6])[0]) < 1e-12
    assert isinstance(harrell_davis(x[:, 0, 0], 0.5), float)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5, float("nan"), [0.5, 1.0]])
def test_harrell_davis_rejects_q_outside_open_interval(q):
    with pytest.raises(SpecError, match="0 < q < 1"):
        harrell_davis(np.arange(5.0), q)


def test_harrell_davis_rejects_empty_and_non_finite():
    with pytest.raises(DataError, match="no scores"):
        harrell_davis(np.array([]), 0.5)
    with pytest.raises(DataError, match="no scores"):
        harrell_davis(np.zeros((3, 0)), 0.5, axis=-1)
    with pytest.raises(DataError, match="NaN"):
        harrell_davis(np.array([0.1, np.nan]), 0.5)


# ----- registry -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, framework", [
    ("deepEpiCnn", "tensorflow"), ("deepEpiCnn", "pytorch"),
    (TF_CLASS, "tensorflow"), (PT_CLASS, "pytorch"),
    ("my.fork.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel", "tensorflow"),
    ("deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch", "pytorch"),
])
def test_registry_resolves_reference_names(name, framework):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = resolve(name, framework)
    assert (r.name, r.framework, r.reference_framework) == ("deepEpiCnn", framework, None)
    expected = "build_keras_model" if framework == "tensorflow" else "DeepEpiCnn"
    assert r.build.__name__ == expected


def test_other_frameworks_class_maps_to_same_architecture_with_warning():
    with pytest.warns(UserWarning, match="pytorch reference class.*in tensorflow"):
        r = resolve(PT_CLASS, "tensorflow")
    assert (r.name, r.framework, r.reference_framework) == ("deepEpiCnn", "tensorflow", "pytorch")
    assert r.build.__name__ == "build_keras_model"


def test_unknown_model_lists_known_models():
    with pytest.raises(ModelError) as err:
        resolve("resNet", "pytorch")
    msg = str(err.value)
    assert "unknown model 'resNet'" in msg and "deepEpiCnn" in msg and PT_CLASS in msg and "\n" not in msg


def test_dotted_import_needs_opt_in():
    with pytest.raises(ModelError, match="allow_import=True"):
        resolve("collections.OrderedDict", "pytorch")
    r = resolve("collections.OrderedDict", "pytorch", allow_import=True)
    assert r.build.__name__ == "OrderedDict"
    with pytest.raises(ModelError, match="cannot import model"):
        resolve("no_such_module_xyz.Model", "pytorch", allow_import=True)


def test_bad_framework_is_an_error():
    with pytest.raises(ModelError, match="framework: got 'jax'"):
        resolve("deepEpiCnn", "jax")


def test_register_rejects_duplicates_and_unknown_frameworks():
    with pytest.raises(ModelError, match="already registered"):
        register(ModelEntry("deepEpiCnn", {"pytorch": "x:y"}))
    with pytest.raises(ModelError, match="already registered.*DeepEpiCnnModel"):
        register(ModelEntry("other", {"pytorch": "x:y"}, {"tensorflow": "a.deepEpiCnnModel.DeepEpiCnnModel"}))
    with pytest.raises(ModelError, match="unknown framework"):
        register(ModelEntry("other", {"jax": "x:y"}))
    assert [e.name for e in known_models()] == ["amber", "deepEpiCnn", "specCnn"]


# Proves nothing unless the frameworks are installed (an absent one is never imported): runs in tox's cross env.
@pytest.mark.torch
@pytest.mark.tf
def test_framework_free_import_and_errors_are_deepepi_errors():
    code = ("import sys, deepepi.models, deepepi.models.registry, deepepi.models.weights, "
            "deepepi.models.summary, deepepi.models.quantile, deepepi.cli.model_cmd, deepepi.models.reference, "
            "deepepi.runs.reference_import, deepepi.cli.import_cmd, deepepi.models.registry, deepepi.models.speccnn.spec, "
            "deepepi.models.amber.spec, deepepi.models.base\n"
            "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert issubclass(SpecError, DeepEpiError) and issubclass(ModelError, DeepEpiError)


# ----- CLI (framework-free paths) -----------------------------------------------------------------
def _cli(argv, capsys):
    from deepepi.cli import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    out = capsys.readouterr()
    return done.value.code, out.out, out.err


def test_cli_model_list(capsys):
    code, out, _ = _cli(["model", "list"], capsys)
    assert code == 0
    assert PT_CLASS in out and TF_CLASS in out
    assert [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")] == \
        ["amber", "deepEpiCnn", "specCnn"]
    assert "user_tools.nnTraining2.specCnnModel.SpecCnnModel" in out and "amber.keras:build_keras_model" in out


def test_cli_model_summary_bad_spec_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"modelConfig": {"nLayers": 3, "filters": [8, 8]}}))
    code, out, err = _cli(["model", "summary", "--config", str(bad)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("deepepi: error: ") and "modelConfig.filters" in err


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY not an npz"])
def test_weights_file_that_is_empty_or_not_npz(tmp_path, content):
    from deepepi.models.weights import load_weights

    bad = tmp_path / "weights.npz"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match="weights.npz"):
        load_weights(bad)


REFERENCE_CONFIGS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "osd-configs"


@pytest.mark.skipif(not REFERENCE_CONFIGS.exists(), reason="reference config files not present beside the checkout")
@pytest.mark.parametrize("name, preset", [("nnConfig_deep.json", "reference-tensorflow"),
                                          ("nnConfig_deep_pytorch.json", "reference-pytorch")])
def test_real_reference_configs_build_the_reference_models(name, preset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = ArchSpec.from_config(load_config(REFERENCE_CONFIGS / name))
    assert spec.preset().name == preset and spec.conv_lengths()[-1] == 157
