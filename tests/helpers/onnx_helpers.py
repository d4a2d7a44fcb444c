"""Test material for export/verify: tiny hand-built ONNX graphs and run directories of real models.

Tiny graph (no framework): x [batch, window] milli-g -> x * 1e-3 -> MatMul W -> Add b -> Softmax,
finished through converters.check.finish_onnx, so names, metadata and the self-check are the real ones.
Run directories: a freshly built Keras or PyTorch model with seeded random weights (BatchNorm
statistics included), saved the way the trainer saves it (framework imported only when asked for).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from converters.check import finish_onnx as finish
from converters.contract import ExportInfo, Exporter, ExportResult, Source, softmax
from deepepi.cli import main
from deepepi.core.config import REPO_CONFIGS, Config, from_dict, load_config
from deepepi.data.synth import Mix
from deepepi.core.io import write_json
from deepepi.core.preprocessing import Preprocessing

PRE = Preprocessing()
SMOKE = REPO_CONFIGS / "smoke.json"
EXPORTER = Exporter("numpy", np.__version__, "onnx.helper", onnx.__version__)
# Data that a configs/smoke.json model learns in seconds: the built-in generator with more seizures,
# fewer confounders and the two clonic families only (hypermotor and short seizures need more model).
# Tests whose gates need a model that separates the classes train on it (trained on the default mix,
# the smoke model reaches window TPR 0.63 at FPR 0.46, and int8 rounding flips 6 % of its decisions).
SEPARABLE_MIX = Mix(seizure_share=0.3, false_alarm_share=0.15, families=("tonic-clonic", "clonic"))


def learning_smoke(epochs: int = 15) -> Config:
    """configs/smoke.json set up so that its tiny model learns SEPARABLE_MIX data in seconds: training
    events oversampled, faster BatchNorm statistics (at 0.99 a few epochs barely move them and eval
    mode predicts one class), every epoch run and the best chosen among sensitivity >= 0.5."""
    raw = load_config(SMOKE).to_dict()
    raw["dataProcessing"].update(oversample="random", validationProp=0)
    raw["modelConfig"].update(epochs=epochs, earlyStoppingPatience=epochs, bnMomentum=0.8,
                              saveBestMinSensitivity=0.5)
    return from_dict(raw, source=f"{SMOKE} (learning_smoke)", warn=False)


def realistic_g(n: int, window: int, seed: int) -> np.ndarray:
    """About 1 g of gravity, slow orientation drift, and movement of varying strength per window."""
    rng = np.random.default_rng(seed)
    t = np.arange(window) / 25.0
    freq = rng.uniform(0.5, 8.0, (n, 1))
    amp = rng.uniform(0.0, 0.6, (n, 1))
    x = 1.0 + rng.normal(0, 0.05, (n, 1)) + amp * np.sin(2 * np.pi * freq * t) + 0.1 * rng.standard_normal((n, window))
    return x.astype(np.float32)


def tiny_weights(window: int = 64, classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.3, (window, classes)).astype(np.float32),
            rng.normal(0, 0.1, classes).astype(np.float32))


def tiny_model(w: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    """Exporter-style raw graph: arbitrary I/O names and batch symbol, which ``finish`` conforms."""
    window, classes = w.shape
    nodes = [helper.make_node("Mul", ["x", "scale"], ["g"]),
             helper.make_node("MatMul", ["g", "W"], ["z"]),
             helper.make_node("Add", ["z", "b"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["y"], axis=-1)]
    inits = [numpy_helper.from_array(np.array(PRE.scale, np.float32), "scale"),
             numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", window])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def reference(w: np.ndarray, b: np.ndarray):  # noqa: ANN201 - returns a Reference callable
    return lambda raw: softmax(PRE.apply(raw).astype(np.float64) @ w + b)


def info(window: int, classes: int = 2, params: int | None = None) -> ExportInfo:
    source = Source(file="tiny.npz", sha256="0" * 64, sample_freq=25, step=125, preprocessing=PRE)
    return ExportInfo(source, window=window, num_classes=classes,
                      trainable_parameters=params if params is not None else window * classes + classes,
                      spec_json='{"tiny": true}')


def write_tiny(path: Path, w: np.ndarray, b: np.ndarray) -> ExportResult:
    return finish(tiny_model(w, b), path, info(w.shape[0], w.shape[1]), EXPORTER, reference(w, b))


def small_config(*, normalise: bool = False, framework: str = "pytorch", seconds: int = 4) -> Config:
    """configs/smoke.json (6 small conv layers) with a short window: fast to build and export."""
    raw = load_config(SMOKE).to_dict()
    raw["modelConfig"].update(bufferSeconds=seconds, framework=framework, modelType=framework)
    raw["dataProcessing"]["normalise"] = normalise
    return from_dict(raw, source="smoke-small", warn=False)


def random_weights(spec, seed: int) -> dict[str, np.ndarray]:  # noqa: ANN001 - any spec
    """Seeded neutral weights with non-trivial BatchNorm statistics, so exports are really exercised."""
    rng = np.random.default_rng(seed)
    weights = {}
    for key, shape in spec.weight_shapes().items():
        param = key.split("/")[1]
        if param.endswith("kernel"):
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif param in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        weights[key] = value.astype(np.float32)
    return weights


def make_run(run_dir: Path, cfg: Config, *, seed: int = 0) -> Path:
    """A run directory as the trainer leaves it: config.json, weights.npz and the native model (any
    registered architecture, by the config's modelClass)."""
    from deepepi.models import registry
    from deepepi.models.registry import spec_from_config
    from deepepi.models.weights import save_weights

    spec = spec_from_config(cfg)
    weights = random_weights(spec, seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", cfg.to_dict())
    save_weights(run_dir / "weights.npz", weights, spec)
    if cfg.framework == "pytorch":
        from deepepi.models import torch_checkpoint, torch_weights

        model = registry.build(spec, "pytorch").eval()
        torch_weights.import_weights(model, spec, weights)
        torch_checkpoint.save_checkpoint(run_dir / "model.pt", model, spec, cfg.to_dict())
    else:
        from deepepi.models import keras_files, keras_weights

        model = registry.build(spec, "tensorflow")
        keras_weights.import_weights(model, spec, weights)
        keras_files.save_keras_model(run_dir / "model.keras", model)
    return run_dir


def cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """Run the `deepepi` entry point in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def refused(capsys: pytest.CaptureFixture, *args: object) -> str:
    """Run `deepepi ARGS` in-process and assert the promise for bad input: exit 2 and exactly one
    `deepepi: error: ...` line on stderr, which is returned."""
    code, _, err = cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepepi: error: "), lines
    return lines[0]
