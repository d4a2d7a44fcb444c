"""`deepepi ensemble`: the Harrell-Davis ensemble graph against scipy's hdquantiles over its members.

Framework-free members are tiny hand-built contract graphs (tests/helpers/onnx_helpers.py); the cross test
mixes a real PyTorch and a real Keras member.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from scipy.stats import beta
from scipy.stats.mstats import hdquantiles

from converters.contract import INPUT_NAME, OUTPUT_NAME, contract_problems, read_metadata, realistic_windows
from converters.ensemble import Q_NAME, Member, build, harrell_davis_weights, hd_terms
from converters.ensemble import export as export_ensemble
from deepepi.core.errors import ModelError, SpecError
from onnx_helpers import cli, tiny_weights, write_tiny

WINDOW = 64
QS = (0.3, 0.6, 0.9)


def _members(tmp_path: Path, n: int, window: int = WINDOW) -> list[Path]:
    return [write_tiny(tmp_path / f"m{window}_{i}.onnx", *tiny_weights(window, seed=10 + i)).path for i in range(n)]


def _run(path: Path, raw: np.ndarray, q: float | None = None) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {INPUT_NAME: raw} if q is None else {INPUT_NAME: raw, Q_NAME: np.asarray(q, dtype=np.float32)}
    return session.run([OUTPUT_NAME], feed)[0]


def _scipy_hd(member_files: list[Path], raw: np.ndarray, q: float) -> np.ndarray:
    """scipy's estimate per window over the members' own onnxruntime outputs. scipy returns NaN for a
    single value; the Harrell-Davis weights for n = 1 are [1], i.e. the value itself."""
    p = np.stack([_run(f, raw)[:, 1] for f in member_files], axis=1).astype(np.float64)
    if p.shape[1] == 1:
        return p[:, 0]
    return np.array([hdquantiles(row, prob=[q])[0] for row in p])


@pytest.mark.parametrize("n", [1, 3, 5])
def test_ensemble_equals_scipy_hdquantiles_over_member_outputs(tmp_path: Path, n: int) -> None:
    files = _members(tmp_path, n)
    out = export_ensemble([Member(f, onnx.load(f)) for f in files], tmp_path / "ens.onnx", q=0.6).path
    raw = realistic_windows(257, WINDOW, seed=3)
    for q in QS:
        got = _run(out, raw, q)
        want = _scipy_hd(files, raw, q)
        assert got.shape == (257, 2) and got.dtype == np.float32
        np.testing.assert_allclose(got[:, 1], want, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got[:, 0], 1.0 - want, rtol=0, atol=1e-6)
    # q left out: the default recorded in metadata applies
    assert read_metadata(onnx.load(out))["hd_q_default"] == "0.6"
    np.testing.assert_array_equal(_run(out, raw), _run(out, raw, 0.6))
    if n > 1:  # the quantile really moves with q
        assert np.mean(_run(out, raw, 0.9)[:, 1] - _run(out, raw, 0.3)[:, 1]) > 1e-3


def test_in_graph_weights_equal_beta_cdf_increments() -> None:
    worst = 0.0
    for n in (1, 2, 3, 4, 5, 8, 13, 30, 64):
        grid = np.arange(n + 1) / n
        for q in (1e-4, 0.05, 0.3, 0.5, 0.6, 0.7, 0.9, 0.9999):
            q32 = float(np.float32(q))  # the graph's q is float32
            want = np.diff(beta.cdf(grid, (n + 1) * q32, (n + 1) * (1 - q32)))
            got = harrell_davis_weights(n, q)
            assert got.shape == (n,)
            worst = max(worst, float(np.max(np.abs(got - want))))
    assert worst < 1e-12
    assert hd_terms(5) < hd_terms(30) < hd_terms(64)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 2.0, float("nan")])
def test_q_outside_open_unit_interval_gives_nan(q: float) -> None:
    assert np.isnan(harrell_davis_weights(4, q)).all()
    assert np.isnan(harrell_davis_weights(1, q)).all()


def test_graph_follows_the_contract_with_q_optional(tmp_path: Path) -> None:
    files = _members(tmp_path, 3)
    model = build([Member(f, onnx.load(f)) for f in files], q=0.7)
    onnx.checker.check_model(model, full_check=True)
    assert contract_problems(model, window=WINDOW, num_classes=2) == []
    assert [i.name for i in model.graph.input] == [INPUT_NAME, Q_NAME]
    meta = read_metadata(model)
    assert meta["framework"] == "ensemble" and meta["trainable_parameters"] == str(3 * (WINDOW * 2 + 2))
    assert meta["hd_q_input"] == Q_NAME and meta["hd_q_default"] == "0.7"


def test_member_order_does_not_matter_and_verify_accepts_ensembles(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    files = _members(tmp_path, 3)
    code, out, err = cli(capsys, "ensemble", *files, "-o", tmp_path / "abc.onnx", "--q", "0.4")
    assert code == 0 and "3 members" in out, err
    code, _, err = cli(capsys, "ensemble", files[2], files[0], files[1], "-o", tmp_path / "cab.onnx", "--q", "0.4")
    assert code == 0, err
    code, out, _ = cli(capsys, "verify", tmp_path / "abc.onnx", tmp_path / "cab.onnx", "--random", "200")
    assert code == 0 and "verdict: PASS" in out
    code, out, _ = cli(capsys, "verify", tmp_path / "abc.onnx", files[0], "--random", "200")
    assert code == 1 and "trainable parameters      FAIL" in out


def test_bad_members_and_q_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    short, long_ = _members(tmp_path, 1)[0], _members(tmp_path, 1, window=80)[0]
    with pytest.raises(ModelError, match="window"):
        build([Member(short, onnx.load(short)), Member(long_, onnx.load(long_))])
    with pytest.raises(SpecError, match="q"):
        build([Member(short, onnx.load(short))], q=1.0)
    for args, needle in ((["-o", tmp_path / "x.onnx", "--q", "0"], "'--q': got 0"),
                         ([long_, "-o", tmp_path / "x.onnx"], "window"),
                         (["-o", tmp_path / "x.onnx", "--q", "0.5", tmp_path / "missing.onnx"], "not found")):
        code, _, err = cli(capsys, "ensemble", short, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.slow
def test_members_from_both_frameworks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from onnx_helpers import make_run, small_config

    runs = [make_run(tmp_path / "torch0", small_config(framework="pytorch"), seed=1),
            make_run(tmp_path / "tf0", small_config(framework="tensorflow"), seed=2),
            make_run(tmp_path / "torch1", small_config(framework="pytorch"), seed=3)]
    code, out, err = cli(capsys, "ensemble", *runs, "-o", tmp_path / "mixed.onnx")
    assert code == 0 and "pytorch,tensorflow" in out, err
    files = [r / "model.onnx" for r in runs]  # exported on the way, each self-checked
    window = int(read_metadata(onnx.load(files[0]))["window"])
    raw = realistic_windows(64, window, seed=5)
    for q in QS:
        np.testing.assert_allclose(_run(tmp_path / "mixed.onnx", raw, q)[:, 1], _scipy_hd(files, raw, q),
                                   rtol=0, atol=1e-6)


def test_runtime_adapter_runs_an_ensemble_with_its_default_q(tmp_path: Path) -> None:
    from deepepi.runtimes import open_model

    files = _members(tmp_path, 3)
    out = export_ensemble([Member(f, onnx.load(f)) for f in files], tmp_path / "ens.onnx", q=0.7).path
    runtime = open_model(out, threads=1)
    raw = realistic_windows(40, WINDOW, seed=9)
    assert runtime.window == WINDOW and runtime.metadata["hd_q_default"] == "0.7"
    np.testing.assert_allclose(runtime.predict_proba(raw)[:, 1], _scipy_hd(files, raw, 0.7), rtol=0, atol=1e-6)


def test_deployment_settings_the_members_agree_on_travel_with_the_ensemble(tmp_path: Path) -> None:
    from onnx import helper

    from converters.contract import ALARM_KEY, GATE_KEY, THRESHOLD_KEY, VALIDATE_KEY, WARN_KEY

    files = _members(tmp_path, 3)
    extra = [{GATE_KEY: "5.0", WARN_KEY: "5.0", ALARM_KEY: str(10.0 + i), VALIDATE_KEY: "true",
              THRESHOLD_KEY: str(0.5 + i / 10)} for i in range(3)]
    models = []
    for f, e in zip(files, extra):
        m = onnx.load(f)
        helper.set_model_props(m, {**read_metadata(m), **e})
        models.append(Member(f, m))
    meta = read_metadata(build(models, q=0.6))
    # agreed: the gate, WarnTime and validateDatapoints; AlarmTime differs, and no member threshold is the ensemble's
    assert (meta[GATE_KEY], meta[WARN_KEY], meta[VALIDATE_KEY]) == ("5.0", "5.0", "true")
    assert ALARM_KEY not in meta and THRESHOLD_KEY not in meta
    helper.set_model_props(models[1].model, {**read_metadata(models[1].model), VALIDATE_KEY: "false"})
    with pytest.raises(ModelError, match="validate_datapoints false differs .* must cut the same windows"):
        build(models, q=0.6)
