"""`deepepi train --kfold K [--nested M] [--jobs N]`: the fold plan, the summary, parallel == sequential."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepepi.cli import main
from deepepi.core.config import REPO_CONFIGS, load_config
from deepepi.data.csvio import load_csv
from deepepi.data.split import events_table
from deepepi.data.dataset import EventSplit
from deepepi.train.kfold import SUMMARY_JSON, choose_inner, kfold, mean_sd, plan, pooled, render

SMOKE = REPO_CONFIGS / "smoke.json"


def _all_events(csv: Path) -> set[int]:
    return set(events_table(load_csv(csv, columns=("eventId", "userId", "type", "dataTime")))["eventId"].tolist())


def test_plain_plan_sets_fold_keys(csv_path: Path) -> None:
    tasks = plan(load_config(SMOKE), csv_path, k=4, nested=None)
    assert [t.name for t in tasks] == ["fold-0", "fold-1", "fold-2", "fold-3"]
    assert [(t.config["dataProcessing"]["nFolds"], t.config["dataProcessing"]["fold"]) for t in tasks] == \
        [(4, 0), (4, 1), (4, 2), (4, 3)]
    assert all(t.split is None for t in tasks)


def test_nested_plan_keeps_outer_test_out_of_inner_runs(csv_path: Path) -> None:
    events = _all_events(csv_path)
    tasks = plan(load_config(SMOKE), csv_path, k=3, nested=2)
    assert len(tasks) == 6
    outer_tests = []
    for i in range(3):
        splits = [EventSplit.from_dict(t.split) for t in tasks if t.name.startswith(f"fold-{i}/")]
        assert len(splits) == 2
        test = set(splits[0].test)
        assert all(set(s.test) == test for s in splits)
        outer_train = events - test
        for s in splits:  # inner train + inner test (validation) = the outer training events, disjoint
            assert set(s.train).isdisjoint(s.val)
            assert set(s.train) | set(s.val) == outer_train
        assert set().union(*(set(s.val) for s in splits)) == outer_train  # inner test folds cover it
        assert sum(len(s.val) for s in splits) == len(outer_train)
        outer_tests.append(test)
    assert sum(len(t) for t in outer_tests) == len(events)
    assert set().union(*outer_tests) == events


def test_plan_rejects_too_many_folds(csv_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 40 events, 6 of them seizures: 7 folds cannot each hold a seizure event.
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(SMOKE), "--data", str(csv_path), "--kfold", "7", "--out", "unused"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepepi: error: ") and "--kfold 7" in err[0]


@pytest.mark.parametrize("argv, needle", [(["--nested", "2"], "--nested needs --kfold"),
                                          (["--kfold", "1"], "'--kfold': got 1"),
                                          (["--kfold", "2", "--jobs", "0"], "'--jobs': got 0")])
def test_cli_flag_errors(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(SMOKE), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_mean_sd_is_sample_sd_over_defined_folds() -> None:
    assert mean_sd([0.5, None, 1.0]) == {"mean": 0.75, "sd": pytest.approx(np.sqrt(0.125)), "n": 2}
    assert mean_sd([0.4]) == {"mean": 0.4, "sd": None, "n": 1}
    assert mean_sd([None]) == {"mean": None, "sd": None, "n": 0}


def _test_section(w: tuple[int, int, int, int], e: tuple[int, int, int, int]) -> dict:
    keys = ("tp", "fp", "tn", "fn")
    return {"window": dict(zip(keys, w)), "event": dict(zip(keys, e))}


def test_pooled_sums_counts_then_takes_rates() -> None:
    out = pooled([_test_section((3, 1, 10, 1), (1, 0, 5, 0)), _test_section((0, 2, 20, 4), (0, 1, 6, 1))])
    assert out["event"] == {"tp": 1, "fp": 1, "tn": 11, "fn": 1, "tpr": 0.5, "fpr": 1 / 12}
    assert out["window"]["tpr"] == 3 / 8 and out["window"]["fpr"] == 3 / 33 and out["window"]["ppv"] == 0.5


def test_choose_inner_highest_validation_sensitivity_first_wins() -> None:
    runs = [{"best_epoch_record": {"val_sensitivity": v}} for v in (None, 0.5, 0.75, 0.75)]
    assert choose_inner(runs) == 2
    assert choose_inner([{"best_epoch_record": {"val_sensitivity": None}}] * 2) == 0


def _comparable(summary: dict) -> str:
    return json.dumps(summary, sort_keys=True)


@pytest.mark.torch
@pytest.mark.slow
def test_parallel_equals_sequential_and_test_folds_partition_events(csv_path: Path, tmp_path: Path) -> None:
    cfg = load_config(SMOKE)
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        runs[jobs] = kfold(cfg, k=3, jobs=jobs, data=csv_path, framework="pytorch", out=out, epochs=2,
                           echo=lambda line: None)
        assert json.loads((out / SUMMARY_JSON).read_text()) == runs[jobs]
    assert _comparable(runs[1]) == _comparable(runs[2])
    for i in range(3):
        assert (tmp_path / "jobs1" / f"fold-{i}" / "history.json").read_bytes() == \
            (tmp_path / "jobs2" / f"fold-{i}" / "history.json").read_bytes()
        assert (tmp_path / "jobs1" / f"fold-{i}" / "weights.npz").read_bytes() == \
            (tmp_path / "jobs2" / f"fold-{i}" / "weights.npz").read_bytes()
    folds = runs[1]["folds"]
    tests = [set(f["test_events"]) for f in folds]
    assert sum(len(t) for t in tests) == len(set().union(*tests))  # disjoint
    assert set().union(*tests) == _all_events(csv_path)  # every event tested once
    # the summary's figures are the folds' own metrics.json figures
    for f in folds:
        metrics = json.loads((tmp_path / "jobs1" / f["run_dir"] / "metrics.json").read_text())
        assert f["test"] == metrics["test"] and f["test_events"] == metrics["test_events"]
    tprs = [f["test"]["window"]["tpr"] for f in folds]
    assert runs[1]["across_folds"]["window_tpr"]["mean"] == pytest.approx(np.mean(tprs), abs=1e-12)
    assert runs[1]["pooled"]["event"]["tp"] + runs[1]["pooled"]["event"]["fn"] == \
        sum(f["test"]["event"]["tp"] + f["test"]["event"]["fn"] for f in folds)
    assert "3-fold smoke (pytorch, seed 42)" in render(runs[1])


def test_nested_summary_takes_the_chosen_inner_runs_outer_test() -> None:
    def metrics(val_sens: float, tp: int) -> dict:
        test = {"loss": 0.1, **_test_section((tp, 1, 10, 2), (tp, 0, 4, 1))}
        for level in ("window", "event"):
            c = test[level]
            c.update(tpr=c["tp"] / (c["tp"] + c["fn"]), fpr=c["fp"] / (c["fp"] + c["tn"]))
        test["window"].update(ppv=None, accuracy=None)
        return {"best_epoch": 1, "gate_met": True, "test_events": [tp], "test": test,
                "best_epoch_record": {"val_sensitivity": val_sens}}

    results = {"fold-0/inner-0": metrics(0.2, 1), "fold-0/inner-1": metrics(0.9, 2),
               "fold-1/inner-0": metrics(0.5, 3), "fold-1/inner-1": metrics(0.5, 4)}
    from deepepi.train.kfold import summarise

    summary = summarise(load_config(SMOKE), results, k=2, nested=2, threads=1)
    assert [f["run_dir"] for f in summary["folds"]] == ["fold-0/inner-1", "fold-1/inner-0"]
    assert [f["inner_val_sensitivity"] for f in summary["folds"]] == [[0.2, 0.9], [0.5, 0.5]]
    assert summary["pooled"]["event"]["tp"] == 5 and summary["pooled"]["event"]["fn"] == 2
    assert summary["across_folds"]["event_tpr"]["mean"] == pytest.approx((2 / 3 + 3 / 4) / 2)


def test_prepare_follows_an_explicit_split(csv_path: Path) -> None:
    from deepepi.core.errors import DataError
    from deepepi.data.dataset import prepare

    cfg = load_config(SMOKE)
    split = EventSplit.from_dict(plan(cfg, csv_path, k=3, nested=2)[1].split)
    data = prepare(cfg, csv_path, split)
    assert set(data.test.event_id.tolist()) == set(split.test)
    assert set(data.val.event_id.tolist()) == set(split.val)
    assert set(data.train.event_id.tolist()) == set(split.train)
    assert data.val_source == "inner test fold"
    bad = EventSplit(split.train, split.val, (*split.test, 999999), note="x", val_source="y")
    with pytest.raises(DataError, match="999999"):
        prepare(cfg, csv_path, bad)


@pytest.mark.torch
@pytest.mark.slow
def test_nested_run_tests_the_chosen_inner_model_on_untouched_outer_folds(csv_path: Path, tmp_path: Path) -> None:
    summary = kfold(load_config(SMOKE), k=2, nested=2, jobs=2, data=csv_path, framework="pytorch",
                    out=tmp_path, epochs=1, echo=lambda line: None)
    events = _all_events(csv_path)
    outer_tests = [set(f["test_events"]) for f in summary["folds"]]
    assert outer_tests[0].isdisjoint(outer_tests[1]) and outer_tests[0] | outer_tests[1] == events
    for fold in summary["folds"]:
        i = fold["fold"]
        inner = [json.loads((tmp_path / f"fold-{i}" / f"inner-{j}" / "metrics.json").read_text()) for j in range(2)]
        sens = [m["best_epoch_record"]["val_sensitivity"] for m in inner]
        assert fold["inner_val_sensitivity"] == sens
        assert fold["run_dir"] == f"fold-{i}/inner-{choose_inner(inner)}"
        assert fold["test"] == inner[fold["chosen_inner"]]["test"]
        assert json.loads((tmp_path / f"fold-{i}" / "outer.json").read_text()) == fold
        for m in inner:  # every inner run is tested on the outer fold, never trained or validated on it
            assert set(m["test_events"]) == outer_tests[i]
            assert m["validation_source"] == "inner test fold"


@pytest.mark.torch
@pytest.mark.slow
def test_resume_reuses_finished_folds_and_trains_missing_ones(csv_path: Path, tmp_path: Path) -> None:
    import shutil

    cfg = load_config(SMOKE)
    run = dict(k=2, data=csv_path, framework="pytorch", out=tmp_path, epochs=1)
    first = kfold(cfg, **run, echo=lambda line: None)
    shutil.rmtree(tmp_path / "fold-1")
    before = (tmp_path / "fold-0" / "weights.npz").stat().st_mtime_ns
    lines: list[str] = []
    again = kfold(cfg, **run, resume=True, echo=lines.append)
    assert _comparable(again) == _comparable(first)
    assert (tmp_path / "fold-0" / "weights.npz").stat().st_mtime_ns == before  # not retrained
    assert any(line.startswith("fold-0:") and "finished earlier" in line for line in lines)
    assert any(line.startswith("fold-1:") and "finished earlier" not in line for line in lines)
    # --resume continues with the config the k-fold run recorded (as a single run's resume does): another
    # --config only names the default --out, so nothing is retrained and the figures are the same
    changed = cfg.with_overrides(batchSize=16)
    third = kfold(changed, **run, resume=True, echo=lambda line: None)
    assert _comparable(third) == _comparable(first)
    assert (tmp_path / "fold-0" / "weights.npz").stat().st_mtime_ns == before
