"""`deepepi pipeline` in pieces (the full job trains two models for minutes): framework gate,
export + transfer + both verifications on ready-made run directories, and the summary."""

from __future__ import annotations

import json

import pytest

from deepepi.workflows import pipeline
from deepepi.cli import main
from onnx_helpers import make_run, small_config


def test_missing_framework_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(pipeline.REQUIRED_MODULES, "pytorch", ("torch", "deepepi_absent_module"))
    with pytest.raises(SystemExit) as exit_info:
        main(["pipeline", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("deepepi: error: deepepi pipeline needs both frameworks; missing ")
    assert "deepepi_absent_module" in err and "pip install 'deepepi[all]'" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    from deepepi.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("data"), users=2, events=6, seed=5).csv_path


@pytest.mark.tf
@pytest.mark.torch
def test_export_transfer_and_verify_on_ready_runs(tmp_path, csv):
    runs = {fw: make_run(tmp_path / fw, small_config(framework=fw), seed=7)
            for fw in ("tensorflow", "pytorch")}
    lines: list[str] = []
    result = pipeline.export_and_verify(runs, csv, csv, lines.append)
    trained, same = result["verify_trained"], result["verify_same_weights"]
    # random weights predict one class on this data: the only failures, so the job fails, naming them
    failed = {c["name"] for c in trained["checks"] if c["status"] == "FAIL"}
    assert failed == {"predicts both classes A", "predicts both classes B"}, failed
    assert result["passed"] is False
    assert (runs["tensorflow"] / "model.onnx").is_file() and (runs["pytorch"] / "model.onnx").is_file()
    twin = result["exports"]["pytorch_twin_of_tensorflow"]
    assert twin["path"] == str(runs["tensorflow"] / "model.torch.onnx")
    assert twin["metadata"]["framework"] == "pytorch" and twin["self_check_max_abs"] <= 1e-5
    assert trained["mode"] == "trained" and trained["inputs"]["kind"] == "csv"
    assert same["mode"] == "same-weights" and same["passed"] is True
    diff = next(c for c in same["checks"] if c["name"] == "A vs B difference")
    assert diff["figures"]["max_abs"] <= 1e-5
    # the two runs hold identical weights, so the trained comparison must agree everywhere
    agree = next(c for c in trained["checks"] if c["name"] == "argmax agreement")
    assert agree["figures"]["agreement"] == 1.0
    assert any("same-weights mode" in line for line in lines)

    proof = {"verdict": "trainers: PASS (50 float64 steps, max |dW| 1.3e-09, dropout on; deepEpiCnn, epoch mode)"}
    summary = {"seconds": 1.0, **result, "passed": True, "trainers": proof,
               "runs": {fw: {"dir": str(d), "test": {"tpr": 0.5, "fpr": None}, "best_epoch": 2}
                        for fw, d in runs.items()}}
    lines = pipeline.summary_lines(summary)
    text = "\n".join(lines)
    assert text.startswith("pipeline: PASS")
    # the proof first, then the exported files, then the statistical check, labelled as what it is
    assert lines[1].startswith("  1 trainers: PASS (50 float64 steps") and "dropout on" in lines[1]
    assert lines[2].startswith("  2 exported files: same-weights PASS")
    assert lines[3].startswith("  3 trained float32 models, seed-spread check") and "FAIL" in lines[3]
    assert "window_tpr" in text  # the statistical verdict's figures
    assert "argmax agreement 1.0000" in text and "TPR 0.500 FPR n/a" in text
    json.dumps(summary)  # the report is plain JSON


def _runs_holding_out(tmp_path, events_by_framework):
    runs = {}
    for fw, events in events_by_framework.items():
        (tmp_path / fw).mkdir()
        (tmp_path / fw / "metrics.json").write_text(json.dumps({"test_events": events}))
        runs[fw] = tmp_path / fw
    return runs


def test_test_split_csv_holds_exactly_the_held_out_events(tmp_path, csv):
    header, *rows = csv.read_text().splitlines()
    event_ids = sorted({int(r.split(",", 1)[0]) for r in rows})
    held_out = event_ids[1::2]
    runs = _runs_holding_out(tmp_path, {"tensorflow": held_out, "pytorch": held_out})
    path = pipeline.write_test_split(runs, csv, tmp_path)
    got_header, *got_rows = path.read_text().splitlines()
    assert got_header == header
    assert got_rows == [r for r in rows if int(r.split(",", 1)[0]) in held_out]  # verbatim, in order
    assert 0 < len(got_rows) < len(rows)


def test_test_split_refuses_runs_with_different_held_out_events(tmp_path, csv):
    runs = _runs_holding_out(tmp_path, {"tensorflow": [1, 2], "pytorch": [1, 3]})
    with pytest.raises(pipeline.PipelineError, match="held out different test events"):
        pipeline.write_test_split(runs, csv, tmp_path)
    assert not (tmp_path / pipeline.TEST_CSV).exists()


def test_margins_follow_the_measured_training_length(capsys):
    from onnx_helpers import refused

    # the 4-epoch dropout-on spread (docs/PERFORMANCE.md): largest pair 0.171 / 0.157 / 0.222 / 0.265,
    # rounded up to the next 0.05
    assert pipeline.margins_for(4) == {"window_tpr": 0.20, "window_fpr": 0.20, "event_tpr": 0.25, "event_fpr": 0.30}
    assert pipeline.spread_length(1) == 4 and pipeline.spread_length(4) == 4
    assert pipeline.spread_length(50) == max(pipeline.SPREAD_MARGINS)  # longer runs: the longest measured
    line = refused(capsys, "pipeline", "--margin", "window_sens=0.1")
    assert "--margin" in line or "margin" in line
