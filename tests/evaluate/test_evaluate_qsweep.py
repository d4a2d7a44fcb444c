"""`deepepi evaluate --sweep-q`: an ensemble's event figures over q equal evaluating it at each q."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from converters.ensemble import Member
from converters.ensemble import export as export_ensemble
from deepepi.evaluate.runner import Options, evaluate
from onnx_helpers import cli, tiny_weights, write_tiny

WINDOW = 750  # the built-in data's window: 30 s at 25 Hz


def _ensemble(root: Path, q: float) -> Path:
    members = [write_tiny(root / f"m{i}.onnx", *tiny_weights(WINDOW, seed=20 + i)).path for i in range(3)]
    return export_ensemble([Member(p, onnx.load(p)) for p in members], root / f"ens-{q}.onnx", q=q).path


def test_sweep_rows_equal_evaluating_the_ensemble_at_each_q(csv_path: Path, tmp_path: Path) -> None:
    qs = (0.2, 0.5, 0.8)
    ens = _ensemble(tmp_path, 0.5)
    opts = dict(threshold=0.5, resamples=20)
    swept = evaluate([ens], [csv_path], options=Options(**opts, sweep_q=qs)).results["models"][0]["q_sweep"]
    assert [row["q"] for row in swept] == list(qs)
    for row in swept:
        at_q = evaluate([_ensemble(tmp_path, row["q"])], [csv_path], options=Options(**opts)).results["models"][0]
        event = at_q["logic"][row["alarm_logic"]]["event"]
        assert (row["sensitivity"], row["fp_per_24h"], row["false_alarm_ratio"], row["detected"]) == \
            (event["sensitivity"], event["fp_per_24h"], event["false_alarm_ratio"], event["detected"])
    # a higher quantile of the members' probabilities never lowers any window's p: more alarms, not fewer
    for lo, hi in zip(swept, swept[1:]):
        assert hi["detected"] >= lo["detected"] and hi["fp_per_24h"] >= lo["fp_per_24h"]
    assert swept[-1]["fp_per_24h"] > swept[0]["fp_per_24h"]  # the sweep really moves


def test_sweep_q_errors_are_one_line(csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    single = write_tiny(tmp_path / "single.onnx", *tiny_weights(WINDOW, seed=1)).path
    ens = _ensemble(tmp_path, 0.6)
    for model, value, needle in ((single, "0.5", "no q input"), (ens, "0.5,1.0", "--sweep-q: got 1.0"),
                                 (ens, "a,b", "comma-separated numbers")):
        code, _, err = cli(capsys, "evaluate", model, "--data", csv_path, "--sweep-q", value, "--bootstrap", "5",
                           "-o", tmp_path / "out")
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_sweep_q_cli_prints_one_line_per_q(csv_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = cli(capsys, "evaluate", _ensemble(tmp_path, 0.6), "--data", csv_path, "--sweep-q",
                         "--bootstrap", "5", "-o", tmp_path / "out")
    assert code == 0, err
    assert [line.split(":")[0].strip() for line in out.splitlines() if line.strip().startswith("q ")] == \
        [f"q {0.1 * i:.2f}" for i in range(1, 10)]
