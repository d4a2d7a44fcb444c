"""`deepepi export --tflite ENSEMBLE.onnx`: the members' Keras twins + Harrell-Davis at the ensemble's
default q in one .tflite, equal to the ensemble ONNX graph and to numpy HD over the members."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from converters.contract import INPUT_NAME, OUTPUT_NAME, realistic_windows
from deepepi.models.quantile import harrell_davis
from onnx_helpers import cli, make_run, small_config

pytestmark = [pytest.mark.torch, pytest.mark.tf, pytest.mark.litert, pytest.mark.slow]
Q = 0.7


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Three members from both frameworks (DeepEpi smoke models, 4 s windows), ensembled at q 0.7."""
    root = tmp_path_factory.mktemp("ens")
    runs = [make_run(root / "torch0", small_config(framework="pytorch"), seed=11),
            make_run(root / "tf0", small_config(framework="tensorflow"), seed=12),
            make_run(root / "torch1", small_config(framework="pytorch"), seed=13)]
    from deepepi.export.ensemble_onnx import build_ensemble

    build_ensemble(runs, root / "ens.onnx", q=Q)
    return root / "ens.onnx", runs


def _ort(path: Path, raw: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: raw})[0]


def test_tflite_equals_the_ensemble_graph_and_numpy_hd(ensemble, tmp_path, capsys):
    from deepepi.runtimes import open_model

    ens, runs = ensemble
    out = tmp_path / "ens.tflite"
    code, text, err = cli(capsys, "export", "--tflite", ens, "-o", out)
    assert code == 0, text + err
    side = json.loads((tmp_path / "ens.tflite.json").read_text())
    assert side["input_size"] == 100 and side["deepepi"]["hd_q"] == str(Q)
    assert side["deepepi"]["ensemble_members"] == "3" and side["deepepi"]["framework"] == "ensemble"
    raw = realistic_windows(64, 100, seed=5)
    got = open_model(out).predict_proba(raw)
    members = np.stack([_ort(r / "model.onnx", raw)[:, 1] for r in runs], axis=1).astype(np.float64)
    want = np.asarray(harrell_davis(members, Q, axis=1))
    np.testing.assert_allclose(got[:, 1], want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got, _ort(ens, raw), rtol=0, atol=1e-5)
    # The windows are told apart, and the aggregate is none of the members (so the check can fail).
    assert np.std(want) > 1e-3
    assert all(np.abs(want - members[:, j]).max() > 1e-4 for j in range(3))
    code, text, _ = cli(capsys, "verify", ens, out, "--random", 64)
    assert code == 0 and "verdict: PASS" in text


def test_member_weights_changed_since_the_ensemble_fail_the_self_check(ensemble, tmp_path, capsys):
    """A member run whose weights.npz is not what its ONNX file (and so the ensemble) holds: the
    .tflite would differ from the ensemble graph, so nothing is written."""
    ens, _ = ensemble
    copy = tmp_path / "copy"
    shutil.copytree(ens.parent, copy)
    shutil.copy(copy / "torch0" / "weights.npz", copy / "tf0" / "weights.npz")  # another member's weights
    moved = _with_members_in(copy, ens)
    code, _, err = cli(capsys, "export", "--tflite", moved)
    assert code == 1 and "self-check failed" in err and "nothing was written" in err
    assert not moved.with_suffix(".tflite").exists()


def _with_members_in(folder: Path, ens: Path) -> Path:
    """The ensemble rebuilt from the copied members' ONNX files (their paths point into ``folder``)."""
    from deepepi.export.ensemble_onnx import build_ensemble

    out = folder / "ens2.onnx"
    build_ensemble([folder / "torch0" / "model.onnx", folder / "tf0" / "model.onnx",
                    folder / "torch1" / "model.onnx"], out, q=Q)
    return out


def test_ensemble_to_pte_or_quantised_is_one_line_exit_2(ensemble, capsys):
    ens, _ = ensemble
    for args in (["--pte", ens], ["--tflite", ens, "--quantize", "int8"]):
        code, _, err = cli(capsys, "export", *args)
        assert code == 2 and "an ensemble exports to float32 --tflite only" in err
        assert len(err.strip().splitlines()) == 1
