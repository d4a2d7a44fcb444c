"""Evaluation outputs: results.json (every figure), events.csv, PNG plots and a self-contained report.html.

Every file is written atomically through ``deepepi.core.io``; report.html embeds the plots as base64 PNG,
so it can be mailed or archived as one file.
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

EVENT_COLUMNS = ("model", "eventId", "userId", "label", "typeStr", "subtype", "windows", "max_p", "onset_source",
                 "raw_alarm_raised", "raw_alarms", "raw_latency_s", "app_warned", "app_alarm_raised", "app_alarms",
                 "app_latency_s", "osd_detected")


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


def events_csv(path: Path, ev: Evaluation) -> Path:
    events = ev.data.events
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(EVENT_COLUMNS)
    for m in ev.models:
        raw, app = m.figures["raw"], m.figures["app"]
        for i, row in enumerate(events.itertuples(index=False)):
            writer.writerow([m.name, row.eventId, row.userId, row.label, row.typeStr, row.subtype,
                             int(raw.n_windows[i]), _num(raw.max_p[i], 6), row.onset_source,
                             int(raw.detected[i]), int(raw.alarms[i]), _num(raw.latency[i], 1),
                             int(app.warned[i]), int(app.detected[i]), int(app.alarms[i]), _num(app.latency[i], 1),
                             int(row.osd_detected)])
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
            title = (f"{m.name}: {kind}, event {row.eventId} (user {row.userId}, {row.typeStr}), "
                     f"max p {figs.max_p[i]:.3f}, {figs.alarms[i]} alarm(s), {logic} logic")
            path = plots.strip(out / f"strip_{_slug(m.name)}_{'miss' if row.label == 1 else 'fa'}_{row.eventId}.png",
                               title, data.end_time[sl] - row.start, m.decision_p[logic][sl], m.states[logic][sl] >= ALARM,
                               m.operating["threshold"], onset, data.osd[sl] >= OSD_ALARM_STATE)
            written.append((title, path))
    return written


OUTPUT_FILES = {"results": "results.json", "events": "events.csv", "report": "report.html"}


def write_all(ev: Evaluation, out: str | Path) -> dict[str, Any]:
    """Write every output into ``out``; returns {kind: path(s)} (also recorded in results.json)."""
    out = Path(out)
    io.make_dirs(out)  # recorded: a failed or interrupted evaluate removes it with the files
    logic = ev.results["definitions"]["primary_logic"]
    figures: list[tuple[str, Path]] = []
    curves = {m.name: m.curves for m in ev.models}
    roc, pr = plots.roc_pr(out / "roc.png", out / "pr.png", curves)
    figures += [("ROC curve (windows)", roc), ("Precision-recall curve (windows)", pr)]
    for m in ev.models:
        figures.append((f"{m.name}: threshold sweep", plots.sweep(out / f"sweep_{_slug(m.name)}.png", m.name,
                                                                 m.summary["sweep"], m.operating["threshold"], logic)))
    figures.append(("Detection latency (" + logic + " alarms)",
                    plots.latency(out / "latency.png", {m.name: m.figures[logic].latency for m in ev.models})))
    for m in ev.models:
        figures += _strips(out, ev, m, logic)
    files = {kind: str(out / name) for kind, name in OUTPUT_FILES.items()}
    files["plots"] = [str(p) for _, p in figures]
    ev.results["outputs"] = files
    io.write_json(out / OUTPUT_FILES["results"], clean(ev.results))
    events_csv(out / OUTPUT_FILES["events"], ev)
    io.write_text(out / OUTPUT_FILES["report"], render_html(clean(ev.results), figures))
    return files


# ---- report.html -------------------------------------------------------------------------------

def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c if isinstance(c, str) else _num(c))}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"{ci[0]:.3f} to {ci[1]:.3f}"


def _model_section(m: dict[str, Any]) -> str:
    op, w = m["operating_point"], m["window"]
    parts = [f"<h2>Model {html.escape(m['name'])}</h2>",
             f"<p><code>{html.escape(m['path'])}</code> &middot; {html.escape(str(m['runtime'].get('format')))} via "
             f"{html.escape(str(m['runtime'].get('runtime')))} {html.escape(str(m['runtime'].get('runtime_version')))}"
             f" &middot; inference {m['inference_seconds']:.1f} s</p>",
             f"<p><b>Threshold {op['threshold']:.2f}</b> ({html.escape(op['rule'])}; alarm logic "
             f"{html.escape(op['alarm_logic'])}). Reuse it with <code>--threshold {op['threshold']:.2f}</code>.</p>"]
    if op.get("note"):
        parts.append(f"<p class='note'>{html.escape(op['note'])}"
                     + ("" if op.get("target_met") is not False else " The target was not reachable on this data; "
                        "the threshold shown is the closest.") + "</p>")
    parts.append("<h3>Windows</h3>" + _table(
        ["ROC AUC", "average precision", "TP", "FP", "TN", "FN", "TPR", "FPR", "PPV", "NPV", "F1"],
        [[m["roc_auc"], m["average_precision"], w["tp"], w["fp"], w["tn"], w["fn"], w["tpr"], w["fpr"], w["ppv"],
          w["npv"], w["f1"]]]))
    rows = []
    for key in ("raw", "app"):
        e, b = m["logic"][key]["event"], m["logic"][key]["bootstrap_95ci"]
        rows.append([f"{key} windows" if key == "raw" else "app alarm logic", f"{e['detected']}/{e['seizure_events']}",
                     e["sensitivity"], _ci(b["sensitivity"]), e["false_alarms"], e["fp_per_24h"], _ci(b["fp_per_24h"]),
                     e["false_alarm_ratio"], e["latency_s"]["median"]])
    parts.append("<h3>Events</h3>" + _table(
        ["logic", "detected", "sensitivity", "95% CI", "false alarms", "FP/24 h", "95% CI", "false-alarm ratio",
         "median latency (s)"], rows))
    rows = []
    for key in ("raw", "app"):
        s, e = m["logic"][key]["szcore"], m["logic"][key]["event"]
        rows.append([key, s["sensitivity"], e["sensitivity"], s["precision"], s["f1"], s["fp_per_24h"],
                     e["fp_per_24h"], f"{s['tp']}/{s['reference_events']}", s["fp"]])
    parts.append("<h3>SzCORE (timescoring) beside deepepi</h3>" + _table(
        ["logic", "SzCORE sensitivity", "deepepi sensitivity", "SzCORE precision", "SzCORE F1", "SzCORE FP/24 h",
         "deepepi FP/24 h", "SzCORE TP/ref", "SzCORE FP"], rows))
    for column, title in (("userId", "per user"), ("subtype", "per subtype")):
        table = m["logic"][op["alarm_logic"]]["per_" + ("user" if column == "userId" else "subtype")]
        parts.append(f"<h3>Events {title} ({html.escape(op['alarm_logic'])} logic)</h3>" + _table(
            [column, "seizure events", "detected", "sensitivity", "non-seizure events", "with false alarm",
             "false alarms", "FP/24 h", "median latency (s)"],
            [[str(r[column]), r["seizure_events"], r["detected"], r["sensitivity"], r["non_seizure_events"],
              r["events_with_false_alarm"], r["false_alarms"], r["fp_per_24h"], r["latency_median_s"]]
             for r in table]))
    return "\n".join(parts)


def _img(title: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


def render_html(results: dict[str, Any], figures: list[tuple[str, Path]]) -> str:
    d, osd = results["data"], results["osd_baseline"]
    sz = results["szcore"]
    intro = (f"<p>{d['windows']} windows ({d['seizure_windows']} seizure) from {d['events']} events "
             f"({d['seizure_events']} seizure, {d['users']} users); window {d['window']} samples, hop {d['hop_s']:g} s; "
             f"inputs: {html.escape(', '.join(d['inputs']))}. Onset for latency: "
             f"{html.escape(', '.join(f'{k} ({v} seizure events)' for k, v in d['seizure_onset_sources'].items()))}.</p>")
    ow, oe = osd["window"], osd["event"]
    osd_html = "<h2>OSD baseline</h2><p>" + html.escape(osd["rule"]) + "</p>" + _table(
        ["window TPR", "window FPR", "events detected", "sensitivity", "false alarms", "FP/24 h", "false-alarm ratio"],
        [[ow["tpr"], ow["fpr"], f"{oe['detected']}/{oe['seizure_events']}", oe["sensitivity"], oe["false_alarms"],
          oe["fp_per_24h"], oe["false_alarm_ratio"]]])
    defs = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in results["definitions"].items())
    params = ", ".join(f"{k} {v}" for k, v in sz["parameters"].items())
    diffs = "".join(f"<li>{html.escape(x)}</li>" for x in sz["differences_from_deepepi"])
    body = "\n".join([
        "<h1>deepepi evaluation</h1>", intro,
        *(_model_section(m) for m in results["models"]), osd_html,
        "<h2>Plots</h2>", *(_img(t, p) for t, p in figures),
        "<h2>Definitions</h2><ul>" + defs + "</ul>",
        f"<h2>SzCORE parameters</h2><p>{html.escape(sz['package'])} {html.escape(str(sz['version']))}: "
        f"{html.escape(params)}; {html.escape(sz['recordings'])}.</p><p>Why SzCORE and deepepi figures differ:</p>"
        f"<ul>{diffs}</ul>",
    ])
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}table{border-collapse:collapse;"
             "margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}"
             "img{max-width:100%}.note{background:#fff3cd;padding:.4em}figure{margin:1em 0}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>deepepi evaluation</title>"
            f"<style>{style}</style></head><body>{body}</body></html>\n")
