"""report.html for a clinician, on the hand-computed fixture (tests/helpers/evaluate_fixture.py): the app
logic's headline, the per-event table in outcome order, strips of both logics, hours beside FP/24 h,
intervals that keep a width, a planted negative latency counted apart, and no matplotlib warning."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from deepepi.evaluate import plots
from deepepi.evaluate.report import clean, render_html, write_all
from deepepi.evaluate.runner import Options, evaluate
from evaluate_fixture import write_data, write_stub_model

HOURS = 9 * 5 / 3600  # the fixture's non-seizure windows (7 + 2) x 5 s


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, list, Path]:
    """One evaluation of the fixture's JSON, with event 1's seizureTimes moved to [40, 60] s: its first
    raw alarm (+30 s) then comes 10 s before the annotated onset, its first app alarm (+40 s) at it."""
    d = tmp_path_factory.mktemp("report")
    js, _ = write_data(d)
    events = json.loads(js.read_text())
    events[0]["seizureTimes"] = [40, 60]
    js.write_text(json.dumps(events))
    model = write_stub_model(d / "stub.onnx")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = evaluate([model], [js], options=Options(resamples=200))
        write_all(ev, d / "out")
    return (d / "out" / "report.html").read_text(), json.loads((d / "out" / "results.json").read_text()), \
        [str(w.message) for w in caught], d / "out"


def _rows(html: str, table_class: str = "sortable") -> list[list[str]]:
    table = re.search(rf"<table class='{table_class}'>(.*?)</table>", html).group(1)
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])]


def test_headline_is_the_app_logic_with_hours(report) -> None:
    html, results, _, _ = report
    assert results["definitions"]["primary_logic"] == "app"
    headline = re.search(r"<p class='headline'>(.*?)</p>", html).group(1)
    assert headline.startswith("App alarm logic at threshold 0.50: 1 of 4 seizure events raised an alarm")
    # event 4's two app ALARMs 10 s apart are one alarm episode
    assert "1 false alarm(s) in 0.0125 h of non-seizure recording" in headline and "1920.00 per 24 h" in headline
    # the events table: app row first, the non-seizure hours beside each FP/24 h
    events = re.search(r"<h3>Events</h3><table>(.*?)</table>", html).group(1)
    head = re.findall(r"<th>(.*?)</th>", events)
    assert head[head.index("FP/24 h") + 2] == "non-seizure h"
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", events.split("<tbody>")[1])]
    assert [c[0] for c in cells] == ["app alarm logic", "raw windows"]
    assert [c[7] for c in cells] == ["0.0125", "0.0125"]
    for title in ("per user (app alarm logic)", "per user (raw windows)", "per subtype (app alarm logic)",
                  "per subtype (raw windows)"):
        assert f"<h3>Events {title}</h3>" in html
    assert html.index("per user (app alarm logic)") < html.index("per user (raw windows)")
    rows = results["models"][0]["logic"]["app"]["per_user"]
    assert [r["non_seizure_hours"] for r in rows] == pytest.approx([HOURS, 0.0])


def test_per_event_table_in_outcome_order(report) -> None:
    rows = _rows(report[0])
    # one row per event; app outcomes: misses 2 and 3 (max p .9 each, event order), the windowless seizure 6,
    # event 4's false alarms, the detected event 1, the quiet event 5
    assert [r[0] for r in rows] == ["2", "3", "6", "4", "1", "5"]
    assert [r[7] for r in rows] == ["missed seizure", "missed seizure", "missed seizure (no window)", "false alarm",
                                    "detected seizure", "no alarm"]
    # event 1: first app alarm 45 s from its recording start (onset 45 s) -> latency 0; raw alarm at 35 s -> -10
    one = rows[4]
    assert one[6] == "0.900" and one[8:11] == ["45.0", "0.0", "1"]
    assert one[11:15] == ["detected seizure", "35.0", "-10.0 (before onset)", "1"]
    assert rows[3][10] == "1" and rows[3][14] == "1"  # event 4: one alarm episode in each logic
    html = report[0]
    assert "<script>" in html and "<script src" not in html and "<link" not in html and "http" not in html


def test_negative_latency_counted_apart(report) -> None:
    raw = report[1]["models"][0]["logic"]["raw"]
    lat = raw["event"]["latency_s"]
    assert lat["before_onset"] == 1 and lat["n"] == 2 and lat["median"] == 30.0 and lat["min"] == 30.0
    app = report[1]["models"][0]["logic"]["app"]["event"]["latency_s"]
    assert (app["n"], app["median"], app["before_onset"]) == (1, 0.0, 0)  # an alarm at the onset is not early
    assert raw["bootstrap_95ci"]["latency_median_s"] == [30.0, 30.0]  # -10 never enters a resample
    assert "before the annotated onset" in report[1]["definitions"]["negative_latency"]
    assert "1 event(s) alarmed before the annotated onset" not in report[0].split("<h3>")[0]  # app headline: none


def test_strips_of_both_logics_and_quiet(report) -> None:
    html, results, caught, out = report
    pngs = {p.name for p in out.glob("strip_*.png")}
    # app: misses 2 and 3, event 4's false alarms; raw: event 4's false alarms (raw detects 1-3)
    assert pngs == {"strip_stub_app_miss_2.png", "strip_stub_app_miss_3.png", "strip_stub_app_fa_4.png",
                    "strip_stub_raw_fa_4.png"}
    assert html.count("data:image/png;base64,") == len(list(out.glob("*.png")))
    assert not [m for m in caught if "No artists" in m or "legend" in m.lower()], caught


def test_collapsed_interval_falls_back_to_wilson(tmp_path: Path) -> None:
    """At threshold 0.95 nothing alarms: every resample gives 0/4 and 0 per 24 h; the report shows
    Wilson 0/4 (0.000 to 0.490) and the exact Poisson bound 3.68888 / 0.0125 h x 24 h = 7082.65."""
    js, _ = write_data(tmp_path)
    ev = evaluate([write_stub_model(tmp_path / "stub.onnx")], [js], options=Options(resamples=100, threshold=0.95))
    b = ev.results["models"][0]["logic"]["app"]["bootstrap_95ci"]
    assert b["sensitivity"] == pytest.approx([0.0, 0.490], abs=5e-4)
    assert b["fp_per_24h"] == pytest.approx([0.0, 3.689 / HOURS * 24], rel=1e-3)
    assert b["latency_median_s"] is None and b["interval_methods"]["latency_median_s"].startswith("none: 0")
    html = render_html(clean(ev.results), [])
    assert "0.000 to 0.490 (Wilson)" in html and "0.00 to 7082.65 (exact Poisson)" in html and "1.000 to 1.000" not in html


def test_operating_point_marked_and_no_empty_legend(tmp_path: Path) -> None:
    curves = {"m": {"roc_auc": 0.75, "average_precision": 0.7, "roc": {"fpr": np.array([0, .5, 1]),
                                                                        "tpr": np.array([0, .8, 1])},
                    "pr": {"recall": np.array([1, .8, 0]), "precision": np.array([.5, .7, 1])}}}
    point = {"m": {"threshold": 0.5, "fpr": 0.5, "tpr": 0.8, "ppv": 0.7}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty legend's UserWarning would fail here
        plain = plots.roc_pr(tmp_path / "a.png", tmp_path / "b.png", curves)
        marked = plots.roc_pr(tmp_path / "c.png", tmp_path / "d.png", curves, point)
        plots.roc_pr(tmp_path / "e.png", tmp_path / "f.png", {"m": {"roc": None, "pr": None}})  # one class only
        plots.latency(tmp_path / "g.png", {"m": np.array([np.nan, -5.0])})  # only an alarm before onset
    assert plain[0].read_bytes() != marked[0].read_bytes() and plain[1].read_bytes() != marked[1].read_bytes()
