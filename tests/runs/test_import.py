"""`deepepi import` of reference-trained files, checked against fixtures built from the documented reference layout.

The reference classes are not available here, so each fixture is built as the reference code builds
its model (osd-model-compat: Keras auto-named layers ending in a softmax Dense with input
[n, 750, 1]; PyTorch `conv_stack` Sequential with or without conv dropout, `fc1..fc4`, `bn1..bn4`,
`fc_out`, BatchNorm eps 1e-5), with calibrated and perturbed BatchNorm statistics. Imported, then
exported, the ONNX file must reproduce the fixture's own probabilities to 1e-5.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnxruntime as ort
import pytest

from converters.contract import realistic_windows
from onnx_helpers import cli as run_cli

REF_STRIDES = (1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 1)  # the reference rule: 2 where (i + 1) % 5 == 0
FILTERS = (16,) + (32,) * 11 + (64, 64)
DENSE = (64, 64, 32, 16)
TOL = 1e-5
TF_CLASS = "user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel"
PT_CLASS = "user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch"


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    return run_cli(capsys, *argv)


def ref_config(tmp_path, framework: str) -> str:
    """A config in the reference's shape: no deepepi architecture keys at all."""
    model = {"framework": framework, "modelClass": TF_CLASS if framework == "tensorflow" else PT_CLASS,
             "modelFname": "deepEpiCnnModel", "sampleFreq": 25, "bufferSeconds": 30, "nLayers": 14,
             "epochs": 100, "batchSize": 512, "lrStart": 1e-6}
    if framework == "pytorch":
        model.update(convDropout=0.025, denseDropout=0.25)
    path = tmp_path / f"ref_{framework}.json"
    path.write_text(json.dumps({"randomSeed": 42, "dataProcessing": {"window": 750, "step": 125},
                                "modelConfig": model}))
    return str(path)


def windows_g(n: int = 200, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    raw = realistic_windows(n, 750, seed=seed)
    return raw, raw / np.float32(1000.0)


def onnx_probs(path, raw: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"acc": raw})[0]


def assert_no_run(capsys_out: tuple[int, str, str], run_dir, *words: str) -> None:
    code, out, err = capsys_out
    assert code == 2 and out == ""
    assert err.startswith("deepepi: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, (w, err)
    assert not run_dir.exists() and not list(run_dir.parent.glob(f".{run_dir.name}*"))


# ----- PyTorch fixture ----------------------------------------------------------------------------
def torch_reference(conv_dropout: float, *, filters=FILTERS, seed: int = 0):
    """The reference DeepEpiCnn as documented, eval mode, with calibrated then perturbed BN statistics."""
    import torch
    from torch import nn

    class DeepEpiCnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers, prev = [], 1
            for f, s in zip(filters, REF_STRIDES):
                layers += [nn.Conv1d(prev, f, 5, stride=s), nn.BatchNorm1d(f), nn.ReLU()]
                if conv_dropout > 0:
                    layers.append(nn.Dropout(conv_dropout))
                prev = f
            self.conv_stack = nn.Sequential(*layers)
            self.global_avg_pool = nn.AdaptiveAvgPool1d(1)
            widths = (prev, *DENSE)
            for i in range(1, 5):
                setattr(self, f"fc{i}", nn.Linear(widths[i - 1], widths[i]))
                setattr(self, f"bn{i}", nn.BatchNorm1d(widths[i]))
                setattr(self, f"relu{i}", nn.ReLU())
            self.dropout1 = nn.Dropout(0.25)
            self.fc_out = nn.Linear(DENSE[-1], 2)

        def forward(self, x):
            x = x.view(x.shape[0], 1, -1)
            x = self.global_avg_pool(self.conv_stack(x)).squeeze(-1)
            for i in range(1, 5):
                x = getattr(self, f"relu{i}")(getattr(self, f"bn{i}")(getattr(self, f"fc{i}")(x)))
                if i == 1:
                    x = self.dropout1(x)
            return self.fc_out(x)

    torch.manual_seed(seed)
    model = DeepEpiCnn()
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(0.7 + 0.6 * torch.rand(bn.weight.shape, generator=gen))
            bn.bias.copy_(0.2 * torch.randn(bn.bias.shape, generator=gen))
            bn.momentum = None  # cumulative: after one batch the running stats are that batch's
        model.train()
        model(torch.from_numpy(windows_g(256, seed=100)[1][..., None]))
        for bn in bns:
            bn.momentum = 0.1
            bn.running_mean.add_(0.05 * bn.running_var.sqrt() * torch.randn(bn.running_mean.shape, generator=gen))
            bn.running_var.mul_(0.9 + 0.2 * torch.rand(bn.running_var.shape, generator=gen))
    return model.eval()


def torch_probs(model, x_g: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():  # (n, 750, 1), as the reference trainer and tester feed it
        return torch.softmax(model(torch.from_numpy(x_g[..., None])), dim=-1).numpy()


def save_reference_checkpoint(model, path, **extra) -> None:
    import torch

    torch.save({"epoch": 7, "model_state_dict": model.state_dict(),
                "optimizer_state_dict": torch.optim.Adam(model.parameters()).state_dict(),
                "val_loss": 0.31, **extra}, path)


class NotAWeight:
    """Any class in a checkpoint: a weights-only load must refuse it (it could run code)."""


@pytest.mark.torch
@pytest.mark.parametrize("conv_dropout", [0.025, 0.0])
def test_torch_checkpoint_imports_and_exports_to_its_own_outputs(tmp_path, capsys, conv_dropout):
    ref = torch_reference(conv_dropout)
    key = "conv_stack.4.weight" if conv_dropout else "conv_stack.3.weight"
    assert ref.state_dict()[key].shape == (32, 16, 5)  # conv 2 sits where the documented layout says
    pt = tmp_path / "deepEpiCnnModel_pytorch.pt"
    save_reference_checkpoint(ref, pt)
    run = tmp_path / "run"
    code, out, err = cli(["import", str(pt), "-c", ref_config(tmp_path, "pytorch"), "-o", str(run)], capsys)
    assert code == 0, err
    assert ("with conv dropout" if conv_dropout else "without conv dropout") in out
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "import.json", "model.pt", "weights.npz"]
    cfg = json.loads((run / "config.json").read_text())["modelConfig"]
    assert cfg["strides"] == list(REF_STRIDES) and cfg["bnEpsilon"] == 1e-5 and cfg["framework"] == "pytorch"
    info = json.loads((run / "import.json").read_text())
    assert info["preset"] == "reference-pytorch" and info["source_file"] == pt.name

    code, _, err = cli(["export", "--onnx", str(run)], capsys)
    assert code == 0, err
    raw, x = windows_g()
    expected = torch_probs(ref, x)
    assert expected[:, 1].std() > 0.01  # the outputs depend on the input
    assert np.abs(onnx_probs(run / "model.onnx", raw) - expected).max() <= TOL

    # The run directory is a normal one: the runtime adapters open it (raw milli-g in, probabilities out).
    from deepepi.runtimes import open_model

    assert np.abs(open_model(run).predict_proba(raw) - expected).max() <= TOL

    # The same weights under the seed's stride pattern compute something else: the check can fail.
    from deepepi.models import torch_predict, torch_weights
    from deepepi.models.deepepi_cnn import torch as deepepi_torch
    from deepepi.models.deepepi_cnn.spec import SEED_STRIDES, ArchSpec
    from deepepi.models.weights import load_weights

    weights, spec = load_weights(run / "weights.npz")
    seed_model = deepepi_torch.DeepEpiCnn(ArchSpec(strides=SEED_STRIDES, bn_epsilon=spec.bn_epsilon)).eval()
    torch_weights.import_weights(seed_model, seed_model.spec, weights)
    assert np.abs(torch_predict.predict_proba(seed_model, x) - expected).max() > 1e-3


@pytest.mark.torch
@pytest.mark.tf
def test_keras_twin_of_an_imported_torch_model_uses_its_epsilon(tmp_path, capsys):
    """`export --framework tensorflow` builds the Keras twin from weights.npz: eps 1e-5, same outputs."""
    ref = torch_reference(0.025, seed=4)
    pt = tmp_path / "m.pt"
    save_reference_checkpoint(ref, pt)
    run = tmp_path / "run"
    assert cli(["import", str(pt), "-c", ref_config(tmp_path, "pytorch"), "-o", str(run)], capsys)[0] == 0
    code, _, err = cli(["export", "--onnx", str(run), "--framework", "tensorflow"], capsys)
    assert code == 0, err
    raw, x = windows_g()
    assert np.abs(onnx_probs(run / "model.tf.onnx", raw) - torch_probs(ref, x)).max() <= TOL


@pytest.mark.torch
def test_torch_checkpoint_with_the_tensorflow_config_keeps_pytorch_epsilon(tmp_path):
    from deepepi.runs.reference_import import import_model
    from deepepi.models import torch_checkpoint, torch_predict

    ref = torch_reference(0.0, seed=5)
    pt = tmp_path / "m.pt"
    save_reference_checkpoint(ref, pt)
    with pytest.warns(UserWarning, match="importing it as pytorch"):
        result = import_model(pt, ref_config(tmp_path, "tensorflow"), tmp_path / "run")
    assert result.spec.bn_epsilon == 1e-5 and result.spec.strides == REF_STRIDES
    model, _, _ = torch_checkpoint.load_checkpoint(tmp_path / "run" / "model.pt")
    _, x = windows_g(64)
    assert np.abs(torch_predict.predict_proba(model, x) - torch_probs(ref, x)).max() <= TOL


@pytest.mark.torch
def test_wrong_torch_checkpoints_name_the_layer_exit_2_and_write_nothing(tmp_path, capsys):
    import torch

    cfg = ref_config(tmp_path, "pytorch")
    run = tmp_path / "run"
    state = torch_reference(0.0).state_dict()

    missing = dict(state)
    del missing["conv_stack.9.weight"]
    torch.save({"model_state_dict": missing}, tmp_path / "missing.pt")
    assert_no_run(cli(["import", str(tmp_path / "missing.pt"), "-c", cfg, "-o", str(run)], capsys), run,
                  "missing.pt", "'conv_stack.9.weight' is missing", "conv4")

    wider = torch_reference(0.0, filters=(16, 32, 48) + (32,) * 9 + (64, 64)).state_dict()
    torch.save({"model_state_dict": wider}, tmp_path / "wider.pt")
    assert_no_run(cli(["import", str(tmp_path / "wider.pt"), "-c", cfg, "-o", str(run)], capsys), run,
                  "'conv_stack.6.weight'", "conv3", "(48, 32, 5)", "(32, 32, 5)")

    torch.save({"model_state_dict": dict(state, **{"fc5.weight": torch.zeros(2, 2)})}, tmp_path / "extra.pt")
    assert_no_run(cli(["import", str(tmp_path / "extra.pt"), "-c", cfg, "-o", str(run)], capsys), run,
                  "'fc5.weight' is not part of the reference layout")

    torch.save({"epoch": 3, "weights": state}, tmp_path / "nostate.pt")
    assert_no_run(cli(["import", str(tmp_path / "nostate.pt"), "-c", cfg, "-o", str(run)], capsys), run,
                  "no 'model_state_dict'")

    torch.save({"model_state_dict": state, "trainer": NotAWeight()}, tmp_path / "unsafe.pt")
    assert_no_run(cli(["import", str(tmp_path / "unsafe.pt"), "-c", cfg, "-o", str(run)], capsys), run,
                  "weights-only")


@pytest.mark.torch
def test_import_refuses_an_existing_run_directory(tmp_path, capsys):
    pt = tmp_path / "m.pt"
    save_reference_checkpoint(torch_reference(0.0), pt)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    code, out, err = cli(["import", str(pt), "-c", ref_config(tmp_path, "pytorch"), "-o", str(run)], capsys)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert [p.name for p in run.iterdir()] == ["metrics.json"]


def test_unknown_suffix_and_missing_file_are_one_line_errors(tmp_path, capsys):
    cfg = ref_config(tmp_path, "pytorch")
    (tmp_path / "model.onnx").write_bytes(b"x")
    assert_no_run(cli(["import", str(tmp_path / "model.onnx"), "-c", cfg, "-o", str(tmp_path / "r")], capsys),
                  tmp_path / "r", "model.onnx", ".keras")
    assert_no_run(cli(["import", str(tmp_path / "absent.pt"), "-c", cfg, "-o", str(tmp_path / "r")], capsys),
                  tmp_path / "r", "absent.pt", "not found")


# ----- Keras fixture ------------------------------------------------------------------------------
def keras_reference(*, offset: int = 0, filters=FILTERS, strides=REF_STRIDES, skip_conv: int | None = None,
                    seed: int = 0):
    """The reference Keras model as documented: input [n, 750, 1], Keras auto-names (offset as when
    several models were built in one session), BN eps 1e-3 / momentum 0.99, Dense 2 with softmax."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(seed)
    count: dict[str, int] = {}

    def auto(base: str) -> str:
        k = count.get(base, offset)
        count[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    inputs = keras.Input((750, 1))
    x = inputs
    for i, (f, s) in enumerate(zip(filters, strides)):
        if i == skip_conv:
            auto("conv1d")  # the name the missing layer would have had
            continue
        x = L.Conv1D(f, 5, strides=s, padding="valid", name=auto("conv1d"))(x)
        x = L.BatchNormalization(name=auto("batch_normalization"))(x)
        x = L.ReLU(name=auto("re_lu"))(x)
    x = L.GlobalAveragePooling1D(name=auto("global_average_pooling1d"))(x)
    for j, w in enumerate(DENSE):
        x = L.ReLU(name=auto("re_lu"))(L.BatchNormalization(name=auto("batch_normalization"))(
            L.Dense(w, name=auto("dense"))(x)))
        if j == 0:
            x = L.Dropout(0.025, name=auto("dropout"))(x)
    model = keras.Model(inputs, L.Dense(2, activation="softmax", name=auto("dense"))(x))
    rng = np.random.default_rng(seed)
    bns = [layer for layer in model.layers if isinstance(layer, L.BatchNormalization)]
    for bn in bns:
        gamma, beta, mean, var = bn.get_weights()
        bn.set_weights([0.7 + 0.6 * rng.random(gamma.shape), 0.2 * rng.normal(size=beta.shape), mean, var])
        bn.momentum = 0.0  # one training-mode pass sets the moving statistics to that batch's
    model(windows_g(256, seed=100)[1][..., None], training=True)
    for bn in bns:
        bn.momentum = 0.99
        gamma, beta, mean, var = bn.get_weights()
        bn.set_weights([gamma, beta, mean + 0.05 * np.sqrt(var) * rng.normal(size=mean.shape),
                        var * (0.9 + 0.2 * rng.random(var.shape))])
    return model


def keras_probs(model, x_g: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x_g[..., None], verbose=0))  # the reference tester's call


@pytest.mark.tf
def test_keras_model_imports_and_exports_to_its_own_outputs(tmp_path, capsys):
    # The import itself is bit-exact (asserted below). ONNX Runtime vs TensorFlow float32 rounding through
    # 14 convolutions moves probabilities by 5e-6 to 2e-5 depending on the weight draw (docs/PERFORMANCE.md),
    # so the fixture's weights are one fixed draw.
    from deepepi.models import keras_files
    from deepepi.models.deepepi_cnn import keras as deepepi_keras

    ref = keras_reference(seed=1)
    names = [layer.name for layer in ref.layers]
    assert "conv1d" in names and "conv1d_13" in names and "batch_normalization_17" in names
    assert names[-1] == "dense_4" and ref.layers[-1].get_config()["activation"] == "softmax"
    path = tmp_path / "deepEpiCnnModel.keras"
    ref.save(path)
    run = tmp_path / "run"
    code, out, err = cli(["import", str(path), "-c", ref_config(tmp_path, "tensorflow"), "-o", str(run)], capsys)
    assert code == 0, err
    assert "keras, softmax head" in out and "reference-tensorflow" in out
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "import.json", "model.keras", "weights.npz"]
    assert json.loads((run / "import.json").read_text())["self_check_max_abs_diff"] <= TOL

    code, _, err = cli(["export", "--onnx", str(run)], capsys)
    assert code == 0, err
    raw, x = windows_g()
    expected = keras_probs(ref, x)
    assert expected[:, 1].std() > 0.01
    assert np.array_equal(keras_probs(deepepi_keras.softmax_model(keras_files.load_keras_model(run / "model.keras"),
                                                      deepepi_keras.ArchSpec()), x), expected)
    assert np.abs(onnx_probs(run / "model.onnx", raw) - expected).max() <= TOL


@pytest.mark.tf
def test_keras_h5_from_a_later_session_and_the_softmax_helper_round_trip(tmp_path):
    from deepepi.runs.reference_import import import_model
    from deepepi.models import keras_files, keras_predict
    from deepepi.models.deepepi_cnn import keras as deepepi_keras

    ref = keras_reference(offset=14, seed=2)  # names conv1d_14 ... as after an earlier fold's model
    assert ref.layers[1].name == "conv1d_14"
    ref.save(tmp_path / "fold2.h5")
    result = import_model(tmp_path / "fold2.h5", ref_config(tmp_path, "tensorflow"), tmp_path / "run")
    assert result.self_check is not None and result.self_check <= TOL
    _, x = windows_g(64)
    ours = keras_files.load_keras_model(tmp_path / "run" / "model.keras")
    assert np.abs(keras_predict.predict_proba(ours, x) - keras_probs(ref, x)).max() <= TOL

    # The helper gives the reference's form back: [n, 750, 1] in, probabilities out, importable again.
    soft = deepepi_keras.softmax_model(ours, result.spec)
    assert soft.input_shape == (None, 750, 1)
    assert np.abs(keras_probs(soft, x) - keras_predict.predict_proba(ours, x)).max() <= 1e-6
    keras_files.save_keras_model(tmp_path / "soft.keras", soft)
    again = import_model(tmp_path / "soft.keras", ref_config(tmp_path, "tensorflow"), tmp_path / "run2")
    assert again.layout == "keras, softmax head" and again.self_check <= TOL


@pytest.mark.tf
@pytest.mark.parametrize("kwargs, words", [
    ({"skip_conv": 5}, ["no layer 'conv1d_5'", "conv6", "13 Conv1D layers, the spec 14"]),
    ({"filters": (16, 32, 48) + (32,) * 9 + (64, 64)}, ["'conv1d_2'", "conv3", "(5, 32, 48)", "(5, 32, 32)"]),
    ({"strides": (1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1, 2)}, ["'conv1d_13'", "conv14", "stride 2", "has 1"]),
])
def test_wrong_keras_files_name_the_layer_exit_2_and_write_nothing(tmp_path, capsys, kwargs, words):
    path = tmp_path / "bad.keras"
    keras_reference(**kwargs).save(path)
    run = tmp_path / "run"
    assert_no_run(cli(["import", str(path), "-c", ref_config(tmp_path, "tensorflow"), "-o", str(run)], capsys),
                  run, "bad.keras", *words)


@pytest.mark.tf
def test_keras_epsilon_other_than_the_configs_is_refused(tmp_path, capsys):
    """A reference Keras file (eps 1e-3) with a config that asks for eps 1e-5 cannot match: named, exit 2."""
    path = tmp_path / "ref.keras"
    keras_reference().save(path)
    cfg = json.loads(open(ref_config(tmp_path, "tensorflow")).read())
    cfg["modelConfig"]["bnEpsilon"] = 1e-5
    (tmp_path / "eps.json").write_text(json.dumps(cfg))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = cli(["import", str(path), "-c", str(tmp_path / "eps.json"), "-o", str(tmp_path / "run")], capsys)
    assert_no_run(result, tmp_path / "run", "'batch_normalization'", "epsilon 0.001", "bnEpsilon")
