"""Evaluation outputs: results.json (every figure), events.csv, PNG plots and a self-contained report.html.

Every file is written atomically through ``deepepi.core.io``; report.html embeds the plots as base64 PNG
(and a few lines of inline script to sort the per-event table), so it can be mailed or archived as one
file. The report is written for a clinician: it leads with the app alarm logic (what the phone would
have done), puts the non-seizure hours beside every false-alarm rate, lists every event with the
errors first, and shows intervals that keep a width when the bootstrap collapses (``scoring.bootstrap``).
"""

from __future__ import annotations

import base64
import csv
import html
import io as _io
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from deepepi.core import io
from deepepi.core.constants import OSD_ALARM_STATE
from deepepi.core.jsonsafe import json_safe
from deepepi.evaluate import plots
from deepepi.evaluate.runner import Evaluation, ModelResult
from deepepi.scoring.alarm import ALARM
from deepepi.scoring.events import LOGICS, NEGATIVE_LATENCY
from deepepi.scoring.per_event import FALSE_ALARM, MISSED, MISSED_NO_WINDOW, OUTCOMES, outcome_order, outcomes

EVENT_COLUMNS = ("model", "eventId", "userId", "label", "typeStr", "subtype", "windows", "max_p", "onset_source",
                 "raw_alarm_raised", "raw_alarms", "raw_latency_s", "app_warned", "app_alarm_raised", "app_alarms",
                 "app_latency_s", "osd_detected", "raw_outcome", "app_outcome", "raw_first_alarm_s",
                 "app_first_alarm_s")
LOGIC_NAMES = {"app": "app alarm logic", "raw": "raw windows"}


def clean(obj: Any) -> Any:
    """JSON-safe copy for results.json: numpy scalars/arrays to Python, NaN/inf to None (undefined)."""
    return json_safe(obj, non_finite="null")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.{digits}f}"


def logic_outcomes(ev: Evaluation, m: ModelResult, logic: str) -> np.ndarray:
    """Each event's outcome under ``logic`` (``scoring.per_event.OUTCOMES``)."""
    figs = m.figures[logic]
    return outcomes(ev.data.events["label"].to_numpy() == 1, figs.detected, figs.n_windows)


def first_alarm_s(ev: Evaluation, m: ModelResult, logic: str) -> np.ndarray:
    """Each event's first alarm in seconds from its recording start (NaN: no alarm)."""
    return np.round(m.figures[logic].first_alarm - ev.data.events["start"].to_numpy(dtype=np.float64), 3)


def events_csv(path: Path, ev: Evaluation) -> Path:
    events = ev.data.events
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(EVENT_COLUMNS)
    for m in ev.models:
        raw, app = m.figures["raw"], m.figures["app"]
        out = {k: logic_outcomes(ev, m, k) for k in LOGICS}
        first = {k: first_alarm_s(ev, m, k) for k in LOGICS}
        for i, row in enumerate(events.itertuples(index=False)):
            writer.writerow([m.name, row.eventId, row.userId, row.label, row.typeStr, row.subtype,
                             int(raw.n_windows[i]), _num(raw.max_p[i], 6), row.onset_source,
                             int(raw.detected[i]), int(raw.alarms[i]), _num(raw.latency[i], 1),
                             int(app.warned[i]), int(app.detected[i]), int(app.alarms[i]), _num(app.latency[i], 1),
                             int(row.osd_detected), out["raw"][i], out["app"][i], _num(first["raw"][i], 1),
                             _num(first["app"][i], 1)])
    io.write_text(path, buf.getvalue())
    return path


def _strips(out: Path, ev: Evaluation, m: ModelResult, logic: str) -> list[tuple[str, Path]]:
    """Probability strips of the worst misses (lowest max p) and false alarms (most alarms)."""
    data, figs = ev.data, m.figures[logic]
    label = data.events["label"].to_numpy()
    misses = np.flatnonzero((label == 1) & ~figs.detected & (figs.n_windows > 0))
    misses = misses[np.argsort(figs.max_p[misses], kind="stable")][:plots.STRIPS_PER_KIND]
    false_alarms = np.flatnonzero((label == 0) & figs.detected)
    order = np.lexsort((-figs.max_p[false_alarms], -figs.alarms[false_alarms]))
    false_alarms = false_alarms[order][:plots.STRIPS_PER_KIND]
    written = []
    bounds = np.searchsorted(data.window_event, np.arange(len(data.events) + 1))
    for kind, rows in (("missed seizure", misses), ("false alarm", false_alarms)):
        for i in rows:
            row = data.events.iloc[i]
            sl = slice(bounds[i], bounds[i + 1])
            onset = float(row.onset - row.start) if row.label == 1 else None
            title = (f"{m.name}, {LOGIC_NAMES[logic]}: {kind}, event {row.eventId} (user {row.userId}, "
                     f"{row.typeStr}), max p {figs.max_p[i]:.3f}, {figs.alarms[i]} alarm(s)")
            name = f"strip_{_slug(m.name)}_{logic}_{'miss' if row.label == 1 else 'fa'}_{row.eventId}.png"
            path = plots.strip(out / name,
                               title, data.end_time[sl] - row.start, m.decision_p[logic][sl], m.states[logic][sl] >= ALARM,
                               m.operating["threshold"], onset, data.osd[sl] >= OSD_ALARM_STATE)
            written.append((title, path))
    return written


OUTPUT_FILES = {"results": "results.json", "events": "events.csv", "report": "report.html"}


def _logic_order(primary: str) -> tuple[str, ...]:
    return (primary,) + tuple(k for k in LOGICS if k != primary)


def write_all(ev: Evaluation, out: str | Path) -> dict[str, Any]:
    """Write every output into ``out``; returns {kind: path(s)} (also recorded in results.json)."""
    out = Path(out)
    io.make_dirs(out)  # recorded: a failed or interrupted evaluate removes it with the files
    primary = ev.results["definitions"]["primary_logic"]
    ev.results["definitions"].setdefault("negative_latency", NEGATIVE_LATENCY)
    figures: list[tuple[str, Path]] = []
    curves = {m.name: m.curves for m in ev.models}
    points = {m.name: {"threshold": m.operating["threshold"], **m.summary["window"]} for m in ev.models}
    roc, pr = plots.roc_pr(out / "roc.png", out / "pr.png", curves, points)
    figures += [("ROC curve (windows), operating point marked", roc),
                ("Precision-recall curve (windows), operating point marked", pr)]
    for m in ev.models:
        sweep_logic = m.operating["alarm_logic"]
        hours = m.summary["logic"][sweep_logic]["event"]["non_seizure_hours"]
        figures.append((f"{m.name}: threshold sweep ({LOGIC_NAMES[sweep_logic]}), operating point marked",
                        plots.sweep(out / f"sweep_{_slug(m.name)}.png", m.name, m.summary["sweep"],
                                    m.operating["threshold"], sweep_logic, hours)))
    figures.append(("Detection latency (both logics; alarms before the onset counted, not drawn)",
                    plots.latency(out / "latency.png", {f"{m.name} {k}": m.figures[k].latency
                                                        for m in ev.models for k in _logic_order(primary)})))
    for m in ev.models:
        for logic in _logic_order(primary):
            figures += _strips(out, ev, m, logic)
    files = {kind: str(out / name) for kind, name in OUTPUT_FILES.items()}
    files["plots"] = [str(p) for _, p in figures]
    ev.results["outputs"] = files
    io.write_json(out / OUTPUT_FILES["results"], clean(ev.results))
    events_csv(out / OUTPUT_FILES["events"], ev)
    tables = {m.name: event_table(ev, m, primary) for m in ev.models}
    io.write_text(out / OUTPUT_FILES["report"], render_html(clean(ev.results), figures, tables))
    return files


def event_rows(ev: Evaluation, m: ModelResult, primary: str) -> list[dict[str, Any]]:
    """One row per event, ordered by the ``primary`` logic's outcome (misses and false alarms first)."""
    events = ev.data.events
    out = {k: logic_outcomes(ev, m, k) for k in LOGICS}
    first = {k: first_alarm_s(ev, m, k) for k in LOGICS}
    figs = m.figures[primary]
    rows = []
    for i in outcome_order(out[primary], figs.max_p, figs.alarms):
        e = events.iloc[i]
        row = {"event": e["eventId"], "label": "seizure" if e["label"] == 1 else "non-seizure",
               "type": e["typeStr"], "subtype": e["subtype"], "user": e["userId"], "windows": int(figs.n_windows[i]),
               "max_p": figs.max_p[i]}
        for k in _logic_order(primary):
            f = m.figures[k]
            row.update({f"{k}_outcome": out[k][i], f"{k}_first_alarm_s": first[k][i], f"{k}_latency_s": f.latency[i],
                        f"{k}_alarms": int(f.alarms[i])})
        rows.append(row)
    return rows


def event_table(ev: Evaluation, m: ModelResult, primary: str) -> str:
    """The sortable per-event HTML table (outcome cells sort by ``OUTCOMES`` rank)."""
    logics = _logic_order(primary)
    header = ["event", "label", "type", "subtype", "user", "windows", "max p"]
    for k in logics:
        header += [f"{k}: outcome", f"{k}: first alarm (s)", f"{k}: latency (s)", f"{k}: alarms"]
    body = []
    for r in event_rows(ev, m, primary):
        cells = [_td(r[c]) for c in ("event", "label", "type", "subtype", "user", "windows")] + [_td(r["max_p"])]
        for k in logics:
            o = r[f"{k}_outcome"]
            cls = " class='bad'" if o in (MISSED, MISSED_NO_WINDOW, FALSE_ALARM) else ""
            lat = r[f"{k}_latency_s"]
            cells += [f"<td data-v='{OUTCOMES.index(o)}'{cls}>{html.escape(o)}</td>", _td(r[f"{k}_first_alarm_s"], 1),
                      _td(lat, 1, note=" (before onset)" if lat is not None and lat < 0 else ""),
                      _td(r[f"{k}_alarms"])]
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th title='click to sort'>{html.escape(h)}</th>" for h in header)
    return (f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _td(v: Any, digits: int = 3, note: str = "") -> str:
    text = v if isinstance(v, str) else _num(v, digits)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        text = ""
    return f"<td>{html.escape(str(text))}{html.escape(note)}</td>"


# ---- report.html -------------------------------------------------------------------------------

def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c if isinstance(c, str) else _num(c))}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_SHORT_METHODS = (("Wilson", "Wilson"), ("Garwood", "exact Poisson"))


def _ci(b: dict[str, Any], key: str, digits: int = 3) -> str:
    """'low to high' of ``b[key]``, with the fallback's name when the bootstrap collapsed."""
    ci = b.get(key)
    if not ci:
        return ""
    method = b.get("interval_methods", {}).get(key, "")
    tag = next((f" ({short})" for word, short in _SHORT_METHODS if word in method), "")
    return f"{ci[0]:.{digits}f} to {ci[1]:.{digits}f}{tag}"


def _h(v: float | None) -> str:
    return "" if v is None else f"{v:.3g}"


def headline(m: dict[str, Any], logic: str) -> str:
    """One paragraph in words: what ``logic`` (the app's, what the phone would have done) gave."""
    e, b, op = m["logic"][logic]["event"], m["logic"][logic]["bootstrap_95ci"], m["operating_point"]
    lat = e["latency_s"]
    level = round(100 * b["level"])
    parts = [f"{LOGIC_NAMES[logic].capitalize()} at threshold {op['threshold']:.2f}: "]
    if e["seizure_events"]:
        parts.append(f"{e['detected']} of {e['seizure_events']} seizure events raised an alarm (sensitivity "
                     f"{_num(e['sensitivity'])}, {level} % CI {_ci(b, 'sensitivity')}). ")
    else:
        parts.append("no seizure event in the data. ")
    if e["non_seizure_events"]:
        parts.append(f"{e['false_alarms']} false alarm(s) in {_h(e['non_seizure_hours'])} h of non-seizure recording "
                     f"({e['events_with_false_alarm']} of {e['non_seizure_events']} non-seizure events): "
                     f"{_num(e['fp_per_24h'], 2)} per 24 h ({level} % CI {_ci(b, 'fp_per_24h', 2)}). ")
    if lat["n"]:
        ci = (f"{level} % CI {_ci(b, 'latency_median_s', 1)}" if b.get("latency_median_s")
              else "no interval from fewer than 2 latencies")
        parts.append(f"Median latency {lat['median']:.1f} s over {lat['n']} detected event(s) ({ci}). ")
    if lat["before_onset"]:
        parts.append(f"{lat['before_onset']} event(s) alarmed before the annotated onset (negative latency, "
                     "kept out of the latency figures). ")
    return "<p class='headline'>" + html.escape("".join(parts).strip()) + "</p>"


def _model_section(m: dict[str, Any], primary: str, event_html: str | None) -> str:
    op, w = m["operating_point"], m["window"]
    logics = _logic_order(primary)
    parts = [f"<h2>Model {html.escape(m['name'])}</h2>",
             f"<p><code>{html.escape(m['path'])}</code> &middot; {html.escape(str(m['runtime'].get('format')))} via "
             f"{html.escape(str(m['runtime'].get('runtime')))} {html.escape(str(m['runtime'].get('runtime_version')))}"
             f" &middot; inference {m['inference_seconds']:.1f} s</p>",
             headline(m, primary),
             f"<p><b>Threshold {op['threshold']:.2f}</b> ({html.escape(op['rule'])}; threshold sweep under the "
             f"{html.escape(LOGIC_NAMES[op['alarm_logic']])}). Reuse it with "
             f"<code>--threshold {op['threshold']:.2f}</code>.</p>"]
    if op.get("note"):
        parts.append(f"<p class='note'>{html.escape(op['note'])}"
                     + ("" if op.get("target_met") is not False else " The target was not reachable on this data; "
                        "the threshold shown is the closest.") + "</p>")
    rows = []
    for key in logics:
        e, b = m["logic"][key]["event"], m["logic"][key]["bootstrap_95ci"]
        rows.append([LOGIC_NAMES[key], f"{e['detected']}/{e['seizure_events']}", e["sensitivity"],
                     _ci(b, "sensitivity"), e["false_alarms"], e["fp_per_24h"], _ci(b, "fp_per_24h", 2),
                     _h(e["non_seizure_hours"]), e["false_alarm_ratio"], _ci(b, "false_alarm_ratio"),
                     e["latency_s"]["median"], _ci(b, "latency_median_s", 1), e["latency_s"]["before_onset"]])
    parts.append("<h3>Events</h3>" + _table(
        ["logic", "detected", "sensitivity", "95% CI", "false alarms", "FP/24 h", "95% CI", "non-seizure h",
         "false-alarm ratio", "95% CI", "median latency (s)", "95% CI", "alarms before onset"], rows))
    parts.append("<h3>Every event (misses and false alarms first; click a column to sort)</h3>"
                 + (event_html or "<p>not available</p>"))
    parts.append("<h3>Windows</h3>" + _table(
        ["ROC AUC", "average precision", "TP", "FP", "TN", "FN", "TPR", "FPR", "PPV", "NPV", "F1"],
        [[m["roc_auc"], m["average_precision"], w["tp"], w["fp"], w["tn"], w["fn"], w["tpr"], w["fpr"], w["ppv"],
          w["npv"], w["f1"]]]))
    for column, title in (("userId", "per user"), ("subtype", "per subtype")):
        for key in logics:
            table = m["logic"][key]["per_" + ("user" if column == "userId" else "subtype")]
            parts.append(f"<h3>Events {title} ({html.escape(LOGIC_NAMES[key])})</h3>" + _table(
                [column, "seizure events", "detected", "sensitivity", "non-seizure events", "with false alarm",
                 "false alarms", "FP/24 h", "non-seizure h", "median latency (s)", "alarms before onset"],
                [[str(r[column]), r["seizure_events"], r["detected"], r["sensitivity"], r["non_seizure_events"],
                  r["events_with_false_alarm"], r["false_alarms"], r["fp_per_24h"], _h(r.get("non_seizure_hours")),
                  r["latency_median_s"], r.get("latency_before_onset")] for r in table]))
    rows = []
    for key in logics:
        s, e = m["logic"][key]["szcore"], m["logic"][key]["event"]
        rows.append([LOGIC_NAMES[key], s["sensitivity"], e["sensitivity"], s["precision"], s["f1"], s["fp_per_24h"],
                     _h(s.get("hours")), e["fp_per_24h"], _h(e["non_seizure_hours"]),
                     f"{s['tp']}/{s['reference_events']}", s["fp"]])
    parts.append("<h3>SzCORE (timescoring) beside deepepi</h3>" + _table(
        ["logic", "SzCORE sensitivity", "deepepi sensitivity", "SzCORE precision", "SzCORE F1", "SzCORE FP/24 h",
         "SzCORE h (all recording)", "deepepi FP/24 h", "deepepi non-seizure h", "SzCORE TP/ref", "SzCORE FP"],
        rows))
    return "\n".join(parts)


def _img(title: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


# Click a header to sort its table (numbers numerically, outcome cells by their rank); no external assets.
_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0], asc = th.dataset.asc !== '1';
    th.dataset.asc = asc ? '1' : '0';
    var key = function (row) { var c = row.cells[col]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      var d = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return asc ? d : -d;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""


def _reading(results: dict[str, Any]) -> str:
    """How to read the figures: the headline logic, intervals, hours and negative latency, in words."""
    defs = results["definitions"]
    items = [
        f"The headline is the {LOGIC_NAMES[defs['primary_logic']]}: what the phone would have done (movement gate, "
        "then a warning and an alarm after consecutive positive datapoints). The raw-window figures follow it.",
        "Every false-alarm rate (FP/24 h) stands beside the hours of non-seizure recording it was counted in: "
        "a rate over a few hours is a rough figure.",
        "Intervals are 95 % bootstrap percentile intervals over events. Where the bootstrap collapses (for example "
        "every seizure detected, so every resample gives 1.000), a proportion gets the Wilson score interval and a "
        "false-alarm rate the exact Poisson (Garwood) interval instead; the table names which.",
        defs.get("negative_latency", NEGATIVE_LATENCY).capitalize() + ".",
    ]
    return "<h2>Reading this report</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>"


def render_html(results: dict[str, Any], figures: list[tuple[str, Path]],
                event_tables: dict[str, str] | None = None) -> str:
    d, osd = results["data"], results["osd_baseline"]
    sz = results["szcore"]
    primary = results["definitions"]["primary_logic"]
    event_tables = event_tables or {}
    intro = (f"<p>{d['windows']} windows ({d['seizure_windows']} seizure) from {d['events']} events "
             f"({d['seizure_events']} seizure, {d['users']} users); window {d['window']} samples, hop {d['hop_s']:g} s; "
             f"inputs: {html.escape(', '.join(d['inputs']))}. Onset for latency: "
             f"{html.escape(', '.join(f'{k} ({v} seizure events)' for k, v in d['seizure_onset_sources'].items()))}.</p>")
    ow, oe = osd["window"], osd["event"]
    osd_hours = next((m["logic"][primary]["event"]["non_seizure_hours"] for m in results["models"]), None)
    osd_html = "<h2>OSD baseline</h2><p>" + html.escape(osd["rule"]) + "</p>" + _table(
        ["window TPR", "window FPR", "events detected", "sensitivity", "false alarms", "FP/24 h", "non-seizure h",
         "false-alarm ratio"],
        [[ow["tpr"], ow["fpr"], f"{oe['detected']}/{oe['seizure_events']}", oe["sensitivity"], oe["false_alarms"],
          oe["fp_per_24h"], _h(osd_hours), oe["false_alarm_ratio"]]])
    defs = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in results["definitions"].items())
    params = ", ".join(f"{k} {v}" for k, v in sz["parameters"].items())
    diffs = "".join(f"<li>{html.escape(x)}</li>" for x in sz["differences_from_deepepi"])
    body = "\n".join([
        "<h1>deepepi evaluation</h1>", intro, _reading(results),
        *(_model_section(m, primary, event_tables.get(m["name"])) for m in results["models"]), osd_html,
        "<h2>Plots</h2>", *(_img(t, p) for t, p in figures),
        "<h2>Definitions</h2><ul>" + defs + "</ul>",
        f"<h2>SzCORE parameters</h2><p>{html.escape(sz['package'])} {html.escape(str(sz['version']))}: "
        f"{html.escape(params)}; {html.escape(sz['recordings'])}.</p><p>Why SzCORE and deepepi figures differ:</p>"
        f"<ul>{diffs}</ul>",
    ])
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}"
             "table.sortable th{cursor:pointer}td.bad{background:#f8d7da}.headline{font-size:1.1em;"
             "background:#e7f1ff;padding:.5em}img{max-width:100%}.note{background:#fff3cd;padding:.4em}"
             "figure{margin:1em 0}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>deepepi evaluation</title>"
            f"<style>{style}</style></head><body>{body}<script>{_SORT_JS}</script></body></html>\n")
