"""Keras mixed precision: float32 logits out, float32 saved model and ONNX export whatever the policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepepi.core.config import REPO_CONFIGS, from_dict, load_config

pytestmark = pytest.mark.tf


def test_mixed_policy_computes_low_precision_and_outputs_float32() -> None:
    import keras

    from deepepi.models.deepepi_cnn.keras import build_keras_model
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.train.keras_scale import build

    spec = ArchSpec(window=64, filters=(4, 4), strides=(1, 2), kernel_size=3, dense_widths=(4,))
    before = keras.mixed_precision.global_policy().name
    model = build(lambda: build_keras_model(spec), "fp16")
    assert keras.mixed_precision.global_policy().name == before  # the global policy is restored
    conv = model.get_layer("conv1")
    assert conv.compute_dtype == "float16" and conv.variable_dtype == "float32"
    out = model(np.ones((2, 64), dtype=np.float32))
    assert np.asarray(out).dtype == np.float32
    plain = build_keras_model(spec)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in plain.get_weights()]
    assert all(w.dtype == np.float32 for w in model.get_weights())


@pytest.mark.slow
def test_bf16_smoke_run_exports_a_float32_onnx_that_passes_the_self_check(tmp_path: Path) -> None:
    import onnx

    from deepepi.cli import main
    from deepepi.data.synth import synthesize
    from deepepi.train.run import train

    csv = synthesize(tmp_path / "data", users=3, events=40, seed=0).csv_path
    raw = load_config(REPO_CONFIGS / "smoke.json").to_dict()
    raw["modelConfig"].update(precision="bf16", framework="tensorflow", modelType="tensorflow")
    cfg = from_dict(raw, source="smoke-bf16", warn=False)
    result = train(cfg, data=csv, out=tmp_path / "run", epochs=1, quiet=True)
    assert np.isfinite(result.history[0]["loss"])
    assert "Keras policy mixed_bfloat16" in (tmp_path / "run" / "train.log").read_text()
    with pytest.raises(SystemExit) as exit_info:  # export runs the onnxruntime self-check, exit 1 on failure
        main(["export", "--onnx", str(tmp_path / "run")])
    assert exit_info.value.code == 0
    model = onnx.load(str(tmp_path / "run" / "model.onnx"))
    elem_types = {i.type.tensor_type.elem_type for i in [*model.graph.input, *model.graph.output]}
    assert elem_types == {onnx.TensorProto.FLOAT}
    assert {t.data_type for t in model.graph.initializer} <= {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}
    assert not [n.op_type for n in model.graph.node if n.op_type == "Cast"]  # no low-precision islands
