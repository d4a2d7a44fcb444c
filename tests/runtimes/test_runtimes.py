"""deepepi.runtimes: one protocol over ONNX, run directories and native files; contract errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from converters.contract import THRESHOLD_KEY, realistic_windows
from deepepi.core.errors import DataError, DeepEpiError, ModelError
from deepepi.core.io import write_json
from deepepi.runtimes import LOADERS, Runtime, kind_of, open_model
from deepepi.runs.layout import THRESHOLD, read_threshold
from onnx_helpers import make_run, reference, small_config, tiny_weights, write_tiny


def test_onnx_adapter_matches_reference(tmp_path: Path) -> None:
    w, b = tiny_weights(64)
    write_tiny(tmp_path / "m.onnx", w, b)
    rt = open_model(tmp_path / "m.onnx", threads=2)
    assert isinstance(rt, Runtime)
    assert (rt.format, rt.window) == ("onnx", 64)
    assert rt.metadata["window"] == "64" and THRESHOLD_KEY not in rt.metadata
    raw = realistic_windows(50, 64, seed=3)
    p = rt.predict_proba(raw)
    assert p.dtype == np.float32 and p.shape == (50, 2)
    np.testing.assert_allclose(p, reference(w, b)(raw), atol=1e-6)
    assert rt.describe()["providers"] == ["CPUExecutionProvider"]
    assert rt.describe()["intra_op_threads"] == 2


def test_dispatch_table() -> None:
    assert set(LOADERS) >= {".onnx", ".pt", ".keras", "run_dir"}
    assert kind_of(Path("a/B.ONNX")) == ".onnx"


def test_unknown_and_missing(tmp_path: Path) -> None:
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown model format '.h5'"):
        open_model(tmp_path / "m.h5")
    with pytest.raises(ModelError, match="no such model"):
        open_model(tmp_path / "none.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(DeepEpiError, match="not a readable ONNX model"):
        open_model(tmp_path / "bad.onnx")


def test_contract_breaking_onnx(tmp_path: Path) -> None:
    w, b = tiny_weights(64)
    write_tiny(tmp_path / "m.onnx", w, b)
    model = onnx.load(tmp_path / "m.onnx")
    model.graph.input[0].name = "input"
    for node in model.graph.node:
        node.input[:] = ["input" if n == "acc" else n for n in node.input]
    onnx.save(model, tmp_path / "renamed.onnx")
    with pytest.raises(ModelError, match="breaks the ONNX contract: input must be acc"):
        open_model(tmp_path / "renamed.onnx")
    model = onnx.load(tmp_path / "m.onnx")
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "nometa.onnx")
    with pytest.raises(ModelError, match="metadata_props lack deepepi_version"):
        open_model(tmp_path / "nometa.onnx")


def test_wrong_input_shape(tmp_path: Path) -> None:
    w, b = tiny_weights(64)
    write_tiny(tmp_path / "m.onnx", w, b)
    with pytest.raises(DataError, match=r"expected \[n, 64\]"):
        open_model(tmp_path / "m.onnx").predict_proba(np.zeros((3, 65), np.float32))


def test_threshold_file(tmp_path: Path) -> None:
    assert read_threshold(tmp_path) is None
    write_json(tmp_path / THRESHOLD, {"decision_threshold": 0.875})
    assert read_threshold(tmp_path) == 0.875
    write_json(tmp_path / THRESHOLD, {"decision_threshold": 1.5})
    with pytest.raises(DataError, match=r"in \[0, 1\], got 1.5"):
        read_threshold(tmp_path)


@pytest.mark.torch
@pytest.mark.slow
def test_torch_run_dir_pt_and_onnx_agree(tmp_path: Path) -> None:
    from deepepi.export.onnx_file import export_run

    run = make_run(tmp_path / "run", small_config(normalise=True, framework="pytorch"), seed=1)
    write_json(run / THRESHOLD, {"decision_threshold": 0.7})
    export_run(run)
    raw = realistic_windows(40, 100, seed=5)
    native, pt, ox = open_model(run, threads=1), open_model(run / "model.pt"), open_model(run / "model.onnx")
    assert (native.format, ox.format, native.window) == ("pytorch", "onnx", 100)
    np.testing.assert_allclose(native.predict_proba(raw), ox.predict_proba(raw), atol=1e-5)
    np.testing.assert_array_equal(native.predict_proba(raw), pt.predict_proba(raw))
    assert ox.metadata[THRESHOLD_KEY] == "0.7" and native.metadata[THRESHOLD_KEY] == "0.7"
    same = ("window", "step", "sample_freq", "preprocessing", "spec", "trainable_parameters", "class_names")
    assert {k: native.metadata[k] for k in same} == {k: ox.metadata[k] for k in same}


@pytest.mark.tf
@pytest.mark.slow
def test_keras_run_dir_and_onnx_agree(tmp_path: Path) -> None:
    from deepepi.export.onnx_file import export_run

    run = make_run(tmp_path / "run", small_config(framework="tensorflow"), seed=2)
    export_run(run)
    raw = realistic_windows(20, 100, seed=6)
    native, ox = open_model(run), open_model(run / "model.onnx")
    assert native.format == "tensorflow"
    np.testing.assert_allclose(native.predict_proba(raw), ox.predict_proba(raw), atol=1e-5)
    assert THRESHOLD_KEY not in ox.metadata
