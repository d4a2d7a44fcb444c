"""The validation-chosen decision threshold: the rule on hand-made windows, threshold.json, the split
files, and train -> export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepepi.data.windows import Windows
from deepepi.train.threshold import choose_threshold


def windows(event_id: list[int], y: list[int]) -> Windows:
    n = len(y)
    t = np.zeros(n)
    for e in set(event_id):  # 5 s apart within each event
        idx = [i for i, v in enumerate(event_id) if v == e]
        t[idx] = 1000.0 * e + 5.0 * np.arange(len(idx))
    return Windows(X=np.zeros((n, 1), np.float32), y=np.array(y), event_id=np.array(event_id),
                   user_id=np.ones(n, np.int64), end_time=t)


def test_highest_sensitivity_within_the_budget() -> None:
    # seizure events 1 (max p .95) and 2 (max p .70); non-seizure event 3 (max p .60); 3 windows in a row
    # alarm in the app logic; 15 s of non-seizure recording: a budget of 1 per 24 h allows none
    w = windows([1, 1, 1, 2, 2, 2, 3, 3, 3], [1, 1, 1, 1, 1, 1, 0, 0, 0])
    p = np.array([.96, .95, .97, .7, .8, .75, .6, .9, .65])
    rec = choose_threshold(p, w, 5.0, budget_per_24h=1.0)
    assert rec["decision_threshold"] == 0.69  # 0.70 would lose event 2 (p > t is strict)
    assert rec["event_sensitivity"] == 1.0 and rec["false_alarm_ratio"] == 0.0 and rec["fp_per_24h"] == 0.0
    assert (rec["validation_events"], rec["validation_seizure_events"]) == (3, 2)
    assert rec["rule_kind"] == "alarm budget" and not rec["alarm_logic"]["movement_gate_applied"]


def test_no_seizure_in_validation() -> None:
    rec = choose_threshold(np.array([.3, .4]), windows([5, 5], [0, 0]), 5.0, budget_per_24h=1.0)
    assert rec["decision_threshold"] == 0.5 and rec["rule"].startswith("default 0.5")


def test_record_writes_the_fallback_and_training_prints_it(tmp_path: Path) -> None:
    from deepepi.core.config import from_dict
    from deepepi.runs.layout import read_json, read_threshold
    from deepepi.train.threshold import end_lines, record

    w = windows([1, 1, 1, 3, 3, 3], [1, 1, 1, 0, 0, 0])
    p = np.array([.8, .8, .8, .9, .9, .9])  # the non-seizure event alarms above the seizure
    cfg = from_dict({"modelConfig": {"alarmBudgetPer24h": 2.5}}, warn=False)
    rec = record(tmp_path, p, w, 5.0, "train events", cfg=cfg)
    saved = read_json(tmp_path / "threshold.json")
    assert saved == rec and read_threshold(tmp_path) == rec["decision_threshold"]
    assert saved["rule_kind"] == "fallback: event Youden J" and saved["budget_met"] is False
    assert saved["alarm_budget_per_24h"] == 2.5 and saved["alarm_logic"]["acc_sd_threshold"] == 5.0
    lines = end_lines(saved)
    assert lines[0].startswith("THRESHOLD FALLBACK") and "(2.5 per 24 h, app logic)" in lines[0]
    assert lines[1].startswith("threshold uncertain") and len(lines) == 2


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    from deepepi.cli import main

    with pytest.raises(SystemExit) as stop:
        main(list(args))
    out = capsys.readouterr()
    return stop.value.code, out.out + out.err


def test_split_files_rebuild_the_part_from_the_data(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """RUN/val_events.csv + RUN/data.json -> `deepepi data split RUN --part val` writes those events' rows."""
    from deepepi.data.synth import synthesize
    from deepepi.runs.layout import SPLIT_FILES, write_split_files

    csv = synthesize(tmp_path / "data", users=2, events=12, seed=0).csv_path
    text = csv.read_text(encoding="utf-8").splitlines()
    ids = sorted({int(line.split(",")[0]) for line in text[1:]})  # eventId is the first column
    val, test = windows([ids[0], ids[0], ids[3]], [1, 1, 0]), windows([ids[5]], [0])
    run = tmp_path / "run"
    run.mkdir()
    write_split_files(run, csv, {"val": val, "test": test})
    assert (run / SPLIT_FILES["val"]).read_text(encoding="utf-8").splitlines() == [
        "eventId,userId,label", f"{ids[0]},1,1", f"{ids[3]},1,0"]
    code, out = run_cli(capsys, "data", "split", str(run), "--part", "val", "-o", str(tmp_path / "val.csv"))
    assert code == 0, out
    got = (tmp_path / "val.csv").read_text(encoding="utf-8").splitlines()
    want = [text[0]] + [line for line in text[1:] if int(line.split(",")[0]) in (ids[0], ids[3])]
    assert got == want and len(want) > 2
    csv.write_text("\n".join(text[:-1]) + "\n", encoding="utf-8")  # the data changed since training
    code, out = run_cli(capsys, "data", "split", str(run), "--part", "test", "-o", str(tmp_path / "test.csv"))
    assert code == 2 and "sha256 differs" in out and "Traceback" not in out


@pytest.mark.torch
@pytest.mark.slow
def test_training_records_threshold_and_export_writes_it(tmp_path: Path) -> None:
    import onnx
    import torch

    from converters.contract import RULE_KEY, THRESHOLD_KEY, read_metadata
    from deepepi.core.config import REPO_CONFIGS, load_config
    from deepepi.data.synth import synthesize
    from deepepi.export.onnx_file import export_run
    from deepepi.runs.layout import read_json, read_threshold
    from deepepi.train.run import train

    csv = synthesize(tmp_path / "data", users=3, events=40, seed=0).csv_path
    torch.set_num_threads(1)
    run = train(load_config(REPO_CONFIGS / "smoke.json"), data=csv, framework="pytorch", out=tmp_path / "run",
                epochs=1, quiet=True).run_dir
    rec = read_json(run / "threshold.json")
    assert 0.0 <= rec["decision_threshold"] <= 1.0 and rec["validation_source"]
    assert rec["decision_threshold"] == read_threshold(run)
    meta = read_metadata(onnx.load(export_run(run).path))
    assert float(meta[THRESHOLD_KEY]) == rec["decision_threshold"]
    rule = json.loads(meta[RULE_KEY])  # how it was chosen travels with the model
    assert rule["rule_kind"] == rec["rule_kind"] and rule["alarm_budget_per_24h"] == 1.0
    assert rule["event_sensitivity"] == rec["event_sensitivity"] and rule["alarm_logic"] == "app"
    val = (run / "val_events.csv").read_text(encoding="utf-8").splitlines()
    assert val[0] == "eventId,userId,label" and len(val) - 1 == rec["validation_events"]
    assert read_json(run / "data.json")["path"] == str(csv.resolve())


@pytest.mark.parametrize("args,fragment", [(["--max-far-per-day", "-1"], "expected a finite number >= 0"),
                                           (["--max-far-per-day", "nan"], "expected a finite number >= 0"),
                                           (["--max-far-per-day", "2", "--resume"], "keeps the budget")])
def test_train_refuses_a_bad_budget(capsys: pytest.CaptureFixture, args: list[str], fragment: str) -> None:
    code, out = run_cli(capsys, "train", *args)
    assert code == 2 and fragment in out and "Traceback" not in out
