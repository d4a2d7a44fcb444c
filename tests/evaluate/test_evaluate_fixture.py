"""deepepi evaluate on the hand-computed fixture (tests/helpers/evaluate_fixture.py): every figure worked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepepi.evaluate.runner import Evaluation, Options, evaluate
from evaluate_fixture import write_data, write_stub_model

HOURS = 9 * 5 / 3600  # non-seizure windows (7 + 2) x 5 s


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("fixture")
    js, csv = write_data(d)
    return js, csv, write_stub_model(d / "stub.onnx")


def run(model: Path, data: Path, **kw) -> Evaluation:
    return evaluate([model], [data], options=Options(resamples=200, **kw))


def test_window_figures(files) -> None:
    js, csv, model = files
    ev = run(model, csv)
    assert ev.results["data"]["windows"] == 21 and ev.results["data"]["seizure_windows"] == 12
    assert ev.results["data"]["events"] == 6 and ev.results["data"]["events_without_windows"] == 1
    m = ev.results["models"][0]
    assert m["operating_point"]["threshold"] == 0.5 and m["operating_point"]["rule"] == "default 0.5"
    w = m["window"]
    assert (w["tp"], w["fp"], w["tn"], w["fn"]) == (9, 5, 4, 3)
    assert w["tpr"] == pytest.approx(0.75) and w["fpr"] == pytest.approx(5 / 9)
    assert w["ppv"] == pytest.approx(9 / 14) and w["npv"] == pytest.approx(4 / 7)
    assert w["f1"] == pytest.approx(18 / 26)
    np.testing.assert_allclose(ev.models[0].p, [.2, .8, .9, .8, .2, .8, .9, .2, .9, .9, .9, .9,
                                                .8, .2, .8, .8, .8, .2, .8, .1, .3], atol=1e-6)


def test_raw_events(files) -> None:
    ev = run(files[2], files[1])
    e = ev.results["models"][0]["logic"]["raw"]["event"]
    assert (e["seizure_events"], e["detected"], e["sensitivity"]) == (4, 3, 0.75)
    assert (e["non_seizure_events"], e["events_with_false_alarm"], e["false_alarm_ratio"]) == (2, 1, 0.5)
    # event 4: alarm windows {0}, {2, 3, 4}, {6}, all within 90 s of the first: one alarm episode
    assert e["false_alarms"] == 1
    assert e["non_seizure_hours"] == pytest.approx(HOURS)
    assert e["fp_per_24h"] == pytest.approx(1 / HOURS * 24)  # 1920
    figs = ev.models[0].figures["raw"]
    # latency from the recording start (CSV: no seizureTimes): window k ends 5 (k + 5) + 5 s after it
    np.testing.assert_array_equal(figs.latency, [35.0, 30.0, 30.0, np.nan, np.nan, np.nan])
    assert figs.alarms.tolist() == [1, 1, 1, 1, 0, 0]
    np.testing.assert_allclose(figs.max_p, [.9, .9, .9, .8, .3, np.nan], atol=1e-6)
    # latency figures cover the non-negative latencies; alarms before the onset are only counted
    assert e["latency_s"] == {"n": 3, "median": 30.0, "mean": pytest.approx(95 / 3), "p90": 34.0, "min": 30.0,
                              "max": 35.0, "before_onset": 0}
    by_user = ev.results["models"][0]["logic"]["raw"]["per_user"]
    assert [(r["userId"], r["false_alarms"], r["non_seizure_hours"]) for r in by_user] == [
        (1, 1, pytest.approx(HOURS)), (2, 0, 0.0)]  # event 4's alarms: one episode
    # the report's headline is the app logic (what the phone would have done), whatever logic the sweep used
    assert ev.results["definitions"]["primary_logic"] == "app"


def test_app_alarm_logic(files) -> None:
    ev = run(files[2], files[1], alarm_logic="app")
    figs = ev.models[0].figures["app"]
    states = ev.models[0].states["app"]
    # event 1: OK OK WARNING ALARM WARNING; event 2: OK OK(1st +) WARNING OK; event 3 gated (still) -> OK
    # event 4: OK OK OK WARNING ALARM WARNING ALARM (counter 6 + 5 > 10 after the revert)
    assert states.tolist() == [0, 0, 1, 2, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1, 2, 0, 0]
    assert figs.detected.tolist() == [True, False, False, True, False, False]
    assert figs.warned.tolist() == [True, True, False, True, False, False]
    assert figs.alarms.tolist() == [1, 0, 0, 1, 0, 0]  # event 4's two ALARMs 10 s apart: one episode
    assert figs.latency[0] == 45.0
    e = ev.results["models"][0]["logic"]["app"]["event"]
    assert (e["detected"], e["warned"], e["false_alarms"]) == (1, 2, 1)
    assert e["fp_per_24h"] == pytest.approx(1 / HOURS * 24)  # 1920
    no_gate = run(files[2], files[1], alarm_logic="app", acc_sd_threshold=0.0).models[0].figures["app"]
    assert no_gate.detected.tolist() == [True, False, True, True, False, False]
    assert no_gate.latency[2] == 40.0


def test_szcore_matches_hand_computed(files) -> None:
    """SzCORE by hand (10 Hz, tolerances 30 s / 60 s, merge < 90 s, one recording per event):
    raw: events 1, 2, 3 overlap their whole-recording reference (TP 3 of 4); event 4's alarms
    [25,30] [35,50] [55,60] s merge into one FP. app: only event 1 (TP 1 of 4), event 4's two
    alarms merge into one FP. Duration 50 + 40 + 45 + 60 + 35 + 25 = 255 s."""
    ev = run(files[2], files[1])
    days = 255 / 86400
    raw = ev.results["models"][0]["logic"]["raw"]["szcore"]
    assert (raw["tp"], raw["fp"], raw["reference_events"]) == (3, 1, 4)
    assert raw["sensitivity"] == pytest.approx(0.75) and raw["precision"] == pytest.approx(0.75)
    assert raw["f1"] == pytest.approx(6 / 8) and raw["fp_per_24h"] == pytest.approx(1 / days)
    assert raw["hours"] == pytest.approx(255 / 3600)
    app = ev.results["models"][0]["logic"]["app"]["szcore"]
    assert (app["tp"], app["fp"], app["reference_events"]) == (1, 1, 4)
    assert app["precision"] == pytest.approx(0.5) and app["f1"] == pytest.approx(1 / 3)


def test_json_input_uses_seizure_times(files) -> None:
    js, csv, model = files
    ev = run(model, js)
    assert ev.results["data"]["seizure_onset_sources"] == {"recording start": 3, "seizureTimes": 1}
    m = ev.models[0]
    # event 1 onset = its dataTime + 20 s; first raw alarm at +30 s, first app alarm at +40 s
    assert m.figures["raw"].latency[0] == 10.0 and m.figures["app"].latency[0] == 20.0
    # reference [25, 50] s of the recording still overlaps the raw alarm [30, 45]: same SzCORE counts
    sz = ev.results["models"][0]["logic"]["raw"]["szcore"]
    assert (sz["tp"], sz["fp"]) == (3, 1)
    base = run(model, csv)
    assert ev.results["models"][0]["window"] == base.results["models"][0]["window"]


def test_osd_baseline(files) -> None:
    osd = run(files[2], files[1]).results["osd_baseline"]
    assert (osd["window"]["tp"], osd["window"]["fp"]) == (1, 0)  # event 1, window 2 ends at datapoint 7
    e = osd["event"]
    assert (e["detected"], e["sensitivity"]) == (1, 0.25)
    assert (e["events_with_false_alarm"], e["false_alarm_ratio"]) == (1, 0.5)  # event 4, before its windows
    assert e["false_alarms"] == 0 and e["fp_per_24h"] == 0.0


def test_operating_points(files) -> None:
    ev = run(files[2], files[1], target_sensitivity=0.75, alarm_logic="raw")
    op = ev.results["models"][0]["operating_point"]
    # the graph computes p in float32: 0.9 is 0.90000004 > 0.9, so events 1-3 stay detected up to
    # t = 0.90 and none from 0.91 on; the highest threshold keeping 0.75 is therefore 0.90
    assert ev.models[0].p.max() > 0.9 and ev.models[0].p[12] > 0.8
    assert op["threshold"] == 0.9 and op["target_met"] and op["chosen_on_data"]
    ev = run(files[2], files[1], target_sensitivity=1.0, alarm_logic="raw")
    assert ev.results["models"][0]["operating_point"]["target_met"] is False
    # event 4's max p is float32 0.8 (> 0.8): no false alarm from t = 0.81 on; events 1-3 stay
    # detected up to 0.90, the highest threshold with that sensitivity
    ev = run(files[2], files[1], max_far_per_day=0.0, alarm_logic="raw")
    assert ev.results["models"][0]["operating_point"]["threshold"] == 0.9
    ev = run(files[2], files[1], threshold=0.85)
    assert ev.results["models"][0]["logic"]["raw"]["event"]["detected"] == 3  # p .9 in events 1-3


def test_bootstrap_is_seeded(files) -> None:
    a = run(files[2], files[1], seed=3).results["models"][0]["logic"]["raw"]["bootstrap_95ci"]
    b = run(files[2], files[1], seed=3).results["models"][0]["logic"]["raw"]["bootstrap_95ci"]
    assert a == b
    lo, hi = a["sensitivity"]
    assert 0.0 <= lo <= 0.75 <= hi <= 1.0
    # 3/4 detected spreads over the resamples: percentile intervals, no fallback; latencies 35, 30, 30
    assert a["interval_methods"]["sensitivity"] == a["interval_methods"]["fp_per_24h"] == "bootstrap percentile"
    assert a["latency_median_s"] == [30.0, 35.0]  # each resample's median is 30, 32.5 or 35


def test_rules_need_the_right_events() -> None:
    from deepepi.core.errors import DataError
    from deepepi.scoring.operating import GRID, Sweep, choose

    nan = np.full(len(GRID), np.nan)
    sw = Sweep(GRID, nan, np.zeros(len(GRID)), np.zeros(len(GRID)), nan, np.zeros(len(GRID)))
    with pytest.raises(DataError, match="no seizure event"):
        choose(sw, target_sensitivity=0.9)
    assert choose(sw, max_far_per_day=1.0)["threshold"] == 0.0  # every threshold meets it: the lowest
    sw = Sweep(GRID, np.ones(len(GRID)), nan, nan, nan, nan)
    with pytest.raises(DataError, match="no non-seizure event"):
        choose(sw, max_far_per_day=1.0)
