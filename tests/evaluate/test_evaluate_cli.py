"""`deepepi evaluate` from the command line: outputs, and bad inputs as one line with exit code 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from deepepi.evaluate.report import EVENT_COLUMNS
from evaluate_fixture import write_data, write_stub_model
from onnx_helpers import cli


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("cli")
    js, csv_path = write_data(d)
    return js, csv_path, write_stub_model(d / "stub.onnx")


def test_outputs(files, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    js, csv_path, model = files
    code, out, err = cli(capsys, "evaluate", model, model, "--data", csv_path, "--bootstrap", 50,
                         "--threshold", 0.5, "-o", tmp_path / "ev")
    assert code == 0, err
    assert "stub: threshold 0.50 (--threshold)" in out and "note:" not in out
    assert "raw windows: events 3/4 (sensitivity 0.750), FP/24 h 1920.00" in out  # one alarm episode
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert [m["name"] for m in results["models"]] == ["stub", "stub-2"]
    assert results["szcore"]["parameters"]["toleranceStart"] == 30.0
    rows = list(csv.DictReader((tmp_path / "ev" / "events.csv").open()))
    assert tuple(rows[0]) == EVENT_COLUMNS and len(rows) == 12  # 6 events x 2 models
    assert [r["raw_alarm_raised"] for r in rows[:6]] == ["1", "1", "1", "1", "0", "0"]  # 4: false alarm
    html = (tmp_path / "ev" / "report.html").read_text()
    pngs = sorted(p.name for p in (tmp_path / "ev").glob("*.png"))
    assert {"roc.png", "pr.png", "latency.png", "sweep_stub.png"} <= set(pngs)
    # strips for both logics (the name carries the logic): event 4's false alarms under each
    assert {"strip_stub_app_fa_4.png", "strip_stub_raw_fa_4.png"} <= set(pngs)
    assert html.count("data:image/png;base64,") == len(pngs) and "src='strip" not in html
    assert "SzCORE" in html and "OSD baseline" in html


def test_operating_point_is_printed(files, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = cli(capsys, "evaluate", files[2], "--data", files[1], "--bootstrap", 20,
                         "--target-sensitivity", 0.75, "--alarm-logic", "raw", "-o", tmp_path / "ev")
    assert code == 0, err
    assert "stub: threshold 0.90 (highest threshold with event sensitivity >= 0.75)" in out
    # the Decision and the source of each part are printed: the flag, then the reference defaults
    assert ("decision: threshold 0.9 (chosen on --data: highest threshold with event sensitivity >= 0.75), "
            "movement gate 5 % (reference default)") in out and "raw logic leads (CLI flag)" in out
    assert "note: chosen on the data evaluated here" in out and "--threshold" in out


def _break(model: Path, out: Path) -> Path:
    m = onnx.load(model)
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 3
    onnx.save(m, out)
    return out


@pytest.mark.parametrize("case", ["no-labels", "contract", "empty-csv", "threshold", "target", "two-rules",
                                  "no-model-file", "not-a-model", "data-as-model"])
def test_bad_inputs_one_line_exit_2(case: str, files, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    js, csv_path, model = files
    args: list = ["evaluate", model, "--data", csv_path, "-o", tmp_path / "ev"]
    want = ""
    if case == "no-labels":
        lines = csv_path.read_text().splitlines()
        header = lines[0].split(",")
        drop = header.index("type")
        (tmp_path / "nolabels.csv").write_text("\n".join(",".join(c for i, c in enumerate(l.split(",")) if i != drop)
                                                         for l in lines) + "\n")
        args[3], want = tmp_path / "nolabels.csv", "missing column type"
    elif case == "contract":
        args[1], want = _break(model, tmp_path / "broken.onnx"), "breaks the ONNX contract: output must be"
    elif case == "empty-csv":
        (tmp_path / "empty.csv").write_text("")
        args[3], want = tmp_path / "empty.csv", "empty.csv"
    elif case == "threshold":
        args += ["--threshold", "1.5"]
        want = "'--threshold': got 1.5, expected a finite number >= 0 and <= 1"
    elif case == "target":
        args += ["--target-sensitivity", "-0.1"]
        want = "'--target-sensitivity': got -0.1"
    elif case == "two-rules":
        args += ["--threshold", "0.5", "--max-far-per-day", "2"]
        want = "give at most one way"
    elif case == "no-model-file":
        args[1], want = tmp_path / "none.onnx", "no such model file"
    elif case == "data-as-model":
        args[1:1] = ["--data", csv_path, js]  # the second data file lands among the models
        want = "looks like data, not a model; give --data once per data file"
    else:
        (tmp_path / "m.bin").write_bytes(b"x")
        args[1], want = tmp_path / "m.bin", "unknown model format '.bin'"
    code, out, err = cli(capsys, *args)
    assert code == 2
    assert err.startswith("deepepi: error: ") and want in err and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "ev" / "results.json").exists()


@pytest.mark.torch
@pytest.mark.slow
def test_onnx_and_native_run_dir_give_identical_results(tmp_path: Path) -> None:
    """A small smoke model: its run directory (PyTorch) and its ONNX export, evaluated side by side."""
    from deepepi.core.config import from_dict
    from deepepi.data.synth import synthesize
    from deepepi.evaluate.runner import Options, evaluate
    from deepepi.export.onnx_file import export_run
    from onnx_helpers import make_run, small_config

    raw = small_config(framework="pytorch", seconds=30).to_dict()
    cfg = from_dict(raw, source="smoke-750", warn=False)
    run = make_run(tmp_path / "run", cfg, seed=4)
    export_run(run)
    data = synthesize(tmp_path / "data", users=3, events=20, seed=2).csv_path
    ev = evaluate([run, run / "model.onnx"], [data], options=Options(resamples=100, threshold=0.5))
    native, ox = ev.models
    np.testing.assert_allclose(native.p, ox.p, atol=1e-5)
    a, b = ev.results["models"]
    assert a["runtime"]["format"] == "pytorch" and b["runtime"]["format"] == "onnx"
    for key in ("window", "logic"):
        assert a[key] == b[key], key
    # p agrees within 1e-5, which may swap near-tied windows in the ranking: each swap moves the AUC
    # by 1 / (positives x negatives), so allow a few swaps rather than demand bit-equal rankings.
    assert a["roc_auc"] == pytest.approx(b["roc_auc"], abs=1e-4)


# Proves nothing unless the frameworks are installed (an absent one is never imported): runs in tox's cross env.
@pytest.mark.torch
@pytest.mark.tf
def test_onnx_evaluation_imports_no_framework(files, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from deepepi.evaluate.runner import Options, evaluate; "
            f"evaluate([{str(files[2])!r}], [{str(files[1])!r}], options=Options(resamples=10)); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
