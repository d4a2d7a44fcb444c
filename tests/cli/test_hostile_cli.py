"""Hostile command lines: numeric options, click usage errors, outputs naming inputs, mutated ONNX.

click's own usage errors must come out in deepepi's one-line form with exit 2; numeric options
refuse nan and inf (click's FloatRange lets nan through); `verify` cannot be talked into PASS or
FAIL by a non-finite tolerance; every writer refuses an output that resolves to one of its inputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepepi.core.config import REPO_CONFIGS
from deepepi.core.errors import UnusableInputError
from deepepi.verify.limits import MAX_RANDOM
from hostile import assert_no_leftovers, assert_refused, assert_untouched, fingerprint, run
from onnx_helpers import tiny_weights, write_tiny

WINDOW = 750
SMOKE = REPO_CONFIGS / "smoke.json"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("onnx")
    w, b = tiny_weights(WINDOW)
    write_tiny(root / "a.onnx", w, b)
    write_tiny(root / "same.onnx", w, b)
    write_tiny(root / "other.onnx", *tiny_weights(WINDOW, seed=5))
    return root


# (option values that must be refused, per command) -> the option named in the error line
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "infinity", "abc", ""]
VERIFY_OPTIONS = {"--atol": BAD_NUMBERS + ["-1e-9"], "--rtol": BAD_NUMBERS + ["-1"],
                  "--min-agreement": BAD_NUMBERS + ["1.5", "-0.1"],
                  "--random": ["0", "-5", str(MAX_RANDOM + 1), "100000000", "1e3", "nan", "2.5"],
                  "--seed": ["-1", str(2**32), "nan", "1.5"]}
VERIFY_CASES = [(opt, v) for opt, values in VERIFY_OPTIONS.items() for v in values]


@pytest.mark.parametrize("option, value", VERIFY_CASES, ids=[f"{o}={v}" for o, v in VERIFY_CASES])
def test_verify_refuses_bad_numbers(models, capsys, option, value) -> None:  # noqa: ANN001
    assert_refused(run(capsys, "verify", models / "a.onnx", models / "other.onnx", option, value), option)


OTHER_CASES = [
    (("train", "--epochs"), v) for v in ("0", "-1", "nan", "inf", "2.5")] + [
    (("train", "--seed"), v) for v in ("-1", str(2**32), "nan")] + [
    (("data", "synth", "-o", "OUT", "--users"), v) for v in ("0", "1001", "nan")] + [
    (("data", "synth", "-o", "OUT", "--events"), v) for v in ("2", "100001", "inf")] + [
    (("data", "synth", "-o", "OUT", "--seed"), v) for v in ("-1", "nan")] + [
    (("export", "--onnx", "RUN", "--seed"), v) for v in ("-1", "inf")] + [
    (("pipeline", "--epochs"), v) for v in ("0", "nan")]


@pytest.mark.parametrize("prefix, value", OTHER_CASES, ids=[f"{' '.join(p)}={v}" for p, v in OTHER_CASES])
def test_other_commands_refuse_bad_numbers(tmp_path, capsys, prefix, value) -> None:  # noqa: ANN001
    args = [str(tmp_path / a) if a in ("OUT", "RUN") else a for a in prefix]
    assert_refused(run(capsys, *args, value), prefix[-1])
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_random_bound_is_stated_in_help(capsys) -> None:  # noqa: ANN001
    rc, out, _ = run(capsys, "verify", "--help")
    assert rc == 0 and f"1 to {MAX_RANDOM}" in " ".join(out.split())


USAGE = [
    (("bogus",), "No such command"),
    (("data", "bogus"), "No such command"),
    (("--bogus",), "No such option"),
    (("data", "windows"), "Missing argument"),
    (("data", "windows", "x.csv"), "Missing option"),
    (("data", "flatten", "x.json"), "Missing option"),
    (("data", "synth"), "Missing option"),
    (("verify", "a.onnx"), "Missing argument"),
    (("verify", "a.onnx", "b.onnx", "--mode", "loose"), "--mode"),
    (("verify", "a.onnx", "b.onnx", "c.onnx"), "unexpected extra argument"),
    (("train", "--framework", "jax"), "--framework"),
    (("train", "--epochs"), "--epochs"),
    (("export",), "Missing option"),
    (("export", "--onnx", "x", "--framework", "onnx"), "--framework"),
    (("config", "show", "a", "b"), "unexpected extra argument"),
    (("train", "--force-data"), "--force-data"),
]


@pytest.mark.parametrize("args, fragment", USAGE, ids=[" ".join(a) for a, _ in USAGE])
def test_usage_errors_are_one_line(tmp_path, capsys, monkeypatch, args, fragment) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    assert_refused(run(capsys, *args), fragment)


@pytest.mark.parametrize("atol, rtol", [(float("nan"), 1e-4), (1e-5, float("nan")), (float("inf"), 1e-4),
                                        (1e-5, float("inf")), (-1.0, 1e-4)])
def test_library_verify_refuses_non_finite_tolerances(models, atol, rtol) -> None:  # noqa: ANN001
    from deepepi.verify.runner import verify

    with pytest.raises(UnusableInputError, match="--[ar]tol"):
        verify(models / "a.onnx", models / "other.onnx", atol=atol, rtol=rtol, random_n=8)


@pytest.mark.parametrize("kwargs", [{"min_agreement": float("nan")}, {"random_n": MAX_RANDOM + 1}, {"random_n": 0}])
def test_library_verify_refuses_other_bad_numbers(models, kwargs) -> None:  # noqa: ANN001
    from deepepi.verify.runner import verify

    with pytest.raises(UnusableInputError):
        verify(models / "a.onnx", models / "same.onnx", **kwargs)


def test_different_models_still_fail_and_same_still_pass(models, capsys) -> None:  # noqa: ANN001
    """The tolerance checks themselves: what `--rtol nan` used to turn into PASS."""
    rc, _, _ = run(capsys, "verify", models / "a.onnx", models / "other.onnx", "--random", 50)
    assert rc == 1
    rc, _, _ = run(capsys, "verify", models / "a.onnx", models / "same.onnx", "--random", 50)
    assert rc == 0


@pytest.mark.parametrize("target", ["a", "b", "config", "data"])
def test_verify_report_naming_an_input_is_refused(models, tmp_path, capsys, target) -> None:  # noqa: ANN001
    a, b = (Path(shutil.copy(models / n, tmp_path / n)) for n in ("a.onnx", "same.onnx"))
    cfg = Path(shutil.copy(SMOKE, tmp_path / "cfg.json"))
    data = tmp_path / "d.csv"
    data.write_text("x\n", encoding="utf-8")
    before = fingerprint(a, b, cfg, data)
    report = {"a": a, "b": b, "config": cfg, "data": data}[target]
    extra = ("--config", cfg, "--data", data) if target in ("config", "data") else ()
    assert_refused(run(capsys, "verify", a, b, *extra, "--report", report), "--report", "is the input file")
    assert_untouched(before)
    assert_no_leftovers(tmp_path)


@pytest.mark.parametrize("target", ["model.pt", "weights.npz", "config.json", "threshold.json"])
def test_export_output_naming_an_input_is_refused(tmp_path, capsys, target) -> None:  # noqa: ANN001
    """Refused before any framework is imported: the run files here are only placeholders."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    raw = json.loads(SMOKE.read_text(encoding="utf-8"))
    raw["modelConfig"]["framework"] = "pytorch"
    (run_dir / "config.json").write_text(json.dumps(raw), encoding="utf-8")
    (run_dir / "model.pt").write_bytes(b"placeholder model")
    (run_dir / "weights.npz").write_bytes(b"placeholder weights")
    (run_dir / "threshold.json").write_text('{"decision_threshold": 0.5}', encoding="utf-8")
    before = fingerprint(*run_dir.iterdir())
    assert_refused(run(capsys, "export", "--onnx", run_dir, "-o", run_dir / target), "is the input file")
    assert_untouched(before)
    assert_no_leftovers(run_dir)


# Property: a mutated ONNX file (truncated, bytes flipped) never gives a traceback: verify exits
# 0, 1 or 2, a 2 is one line, and the file itself is not changed.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_onnx_never_tracebacks(models, tmp_path, capsys, data) -> None:  # noqa: ANN001
    blob = bytearray((models / "other.onnx").read_bytes())
    kind = data.draw(st.sampled_from(["truncate", "flip", "zero-run"]))
    if kind == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    else:
        at = data.draw(st.integers(0, len(blob) - 1))
        n = data.draw(st.integers(1, 16))
        for i in range(at, min(at + n, len(blob))):
            blob[i] = (blob[i] ^ 0xFF) if kind == "flip" else 0
    path = tmp_path / "mutant.onnx"
    path.write_bytes(bytes(blob))
    before = fingerprint(path)
    rc, out, err = run(capsys, "verify", models / "a.onnx", path, "--random", 16)
    assert "Traceback" not in out + err and rc in (0, 1, 2), (rc, err)
    if rc == 2:
        assert_refused((rc, out, err))
    assert_untouched(before)


@pytest.mark.parametrize("target, fragment", [
    ("math.sqrt", "failed when called"), ("builtins.str", "returned a str, not a"), ("builtins.id", "returned a int"),
    ("os.sep", "not callable"), ("no_such_module_xyz.Model", "cannot import"),
])
@pytest.mark.parametrize("framework", ["pytorch", "tensorflow"])
def test_allow_import_of_a_non_model_is_one_line(target, fragment, framework) -> None:  # noqa: ANN001
    from deepepi.core.errors import ModelError
    from deepepi.models.registry import resolve
    from deepepi.models.deepepi_cnn.spec import ArchSpec

    with pytest.raises(ModelError, match=fragment):
        resolve(target, framework, allow_import=True).build(ArchSpec())


@pytest.mark.parametrize("name", ["test_split.csv", "report.json"])
def test_pipeline_data_that_it_would_overwrite_is_refused(tmp_path, capsys, name) -> None:  # noqa: ANN001
    out = tmp_path / "pipe"
    out.mkdir()
    data = out / name
    data.write_text("eventId\n1\n", encoding="utf-8")
    before = fingerprint(data)
    assert_refused(run(capsys, "pipeline", "--out", out, "--data", data), name, "holds the input file")
    assert_untouched(before)
    assert sorted(p.name for p in out.iterdir()) == [name]


@pytest.mark.parametrize("path, fragment", [("/dev/zero", "not a regular file"), (".", "not a regular file"),
                                            ("missing.onnx", "not found")])
def test_verify_of_something_that_is_not_a_file(models, tmp_path, capsys, monkeypatch, path, fragment) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    assert_refused(run(capsys, "verify", models / "a.onnx", path), fragment)


BAD_EVALUATE = [("--threshold", "nan"), ("--threshold", "inf"), ("--target-sensitivity", "nan"),
                ("--max-far-per-day", "inf"), ("--max-far-per-day", "-1"), ("--acc-sd-threshold", "nan"),
                ("--bootstrap", "1000000000"), ("--bootstrap", "0"), ("--threads", "0"), ("--seed", "-1")]


@pytest.mark.parametrize("option, value", BAD_EVALUATE, ids=[f"{o}={v}" for o, v in BAD_EVALUATE])
def test_evaluate_refuses_bad_numbers(models, tmp_path, capsys, option, value) -> None:  # noqa: ANN001
    out = tmp_path / "eval"
    assert_refused(run(capsys, "evaluate", models / "a.onnx", "--data", tmp_path / "d.csv", option, value,
                       "-o", out), option)
    assert not out.exists()


@pytest.mark.parametrize("name", ["events.csv", "results.json", "report.html"])
def test_evaluate_output_naming_its_data_is_refused(models, tmp_path, capsys, name) -> None:  # noqa: ANN001
    out = tmp_path / "eval"
    out.mkdir()
    data = out / name
    data.write_text("eventId\n1\n", encoding="utf-8")
    before = fingerprint(data)
    assert_refused(run(capsys, "evaluate", models / "a.onnx", "--data", data, "-o", out), "holds the input file")
    assert_untouched(before)
    assert sorted(p.name for p in out.iterdir()) == [name]
