"""``evaluate``: run every model on the same windows and judge it per window, per event and per alarm.

Order: check the options, open the models (any runtime format), read and window the data once (as
training does, ``evaluate.data``), predict, then per model: its Decision (``scoring.decision``: flags >
model metadata > config > defaults), ROC/PR, the threshold sweep under the Decision's leading logic,
the operating point, and at that threshold the window figures, both alarm logics' event figures (per user and
subtype too), SzCORE scores and bootstrap CIs (``BOOTSTRAP``: events resampled within each class,
``--bootstrap`` draws, 1,000 by default). The OSD baseline (recorded osdAlarmState >= OSD_ALARM_STATE) is
scored beside them. ``report.write_all`` then writes results.json, events.csv, the plots and
report.html.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from deepepi import __version__
from deepepi.core.constants import OSD_ALARM_STATE
from deepepi.core.errors import ConfigError, ModelError
from deepepi.evaluate import szcore
from deepepi.evaluate.data import EvalData, load
from deepepi.runtimes.windowing import Windowing, windowing
from deepepi.scoring import bootstrap
from deepepi.scoring.alarm import ALARM
from deepepi.scoring.decision import DEFAULT_SOURCE, CLI_SOURCE, Decision, cli_layer, config_layer, resolve
from deepepi.scoring.events import (EventFigures, detection, episode_starts, event_figures, hours, per_24h,
                                    summary, table_by)
from deepepi.scoring.operating import Sweep, check_rule, choose, sweep
from deepepi.evaluate.qsweep import check_qs, sweep_q
from deepepi.scoring.window_metrics import at_threshold, curves
from deepepi.runtimes import Runtime, open_model
from deepepi.runtimes.base import decision_layer, decision_threshold
from deepepi.scoring.per_event import max_per_event

BOOTSTRAP_RESAMPLES = 1000  # evaluate's default draws; its rule resamples events within each class


@dataclass(frozen=True)
class Options:
    """evaluate's options; the Decision's parts left None fall through to the model's metadata, the
    config and the reference default (``scoring.decision.resolve``)."""

    threshold: float | None = None
    target_sensitivity: float | None = None
    max_far_per_day: float | None = None
    alarm_logic: str | None = None
    acc_sd_threshold: float | None = None
    seed: int = 0
    resamples: int = BOOTSTRAP_RESAMPLES
    threads: int | None = None
    warn_time: float | None = None
    alarm_time: float | None = None
    sweep_q: tuple[float, ...] | None = None  # ensembles: event figures over these q (qsweep)

    def check(self) -> None:
        check_rule(self.threshold, self.target_sensitivity, self.max_far_per_day)
        if self.sweep_q is not None:
            check_qs(self.sweep_q)
        if self.alarm_logic not in (None, "raw", "app"):
            raise ConfigError(f"--alarm-logic: got {self.alarm_logic!r}, expected raw or app")
        if self.acc_sd_threshold is not None and not self.acc_sd_threshold >= 0.0:
            raise ConfigError(f"--acc-sd-threshold: got {self.acc_sd_threshold!r}, expected a percentage >= 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads: got {self.threads}, expected a positive number of threads")
        if self.resamples < 1:
            raise ConfigError(f"--bootstrap: got {self.resamples}, expected a positive number of resamples")

    def bootstrap_rule(self) -> bootstrap.Rule:
        """evaluate's bootstrap: ``resamples`` draws of events within each class (class counts kept)."""
        return bootstrap.Rule(draws=self.resamples, within_class=True)

    def decision(self, rt: Runtime, win: Windowing) -> Decision:
        """The model's Decision: these flags > its metadata > the windowing config > the defaults."""
        return resolve(cli_layer(threshold=self.threshold, acc_sd_threshold=self.acc_sd_threshold,
                                 warn_time=self.warn_time, alarm_time=self.alarm_time, logic=self.alarm_logic),
                       decision_layer(rt.metadata, str(rt.path)),
                       config_layer(win.cfg.processing, win.source) if win.from_file else None)


@dataclass
class ModelResult:
    """Everything computed for one model (arrays kept for events.csv and the plots)."""

    name: str
    runtime: Runtime
    p: np.ndarray
    curves: dict[str, Any]
    sweep: Sweep
    operating: dict[str, Any]
    decision_p: dict[str, np.ndarray]  # per logic: p as thresholded (after the app's movement gate)
    states: dict[str, np.ndarray]
    figures: dict[str, EventFigures]
    summary: dict[str, Any]
    decision: Decision | None = None  # the model's Decision (threshold: the operating point)


@dataclass
class Evaluation:
    data: EvalData
    models: list[ModelResult]
    results: dict[str, Any]


def _names(paths: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for path in paths:
        base = path.name if path.is_dir() else path.stem
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def _model(name: str, rt: Runtime, data: EvalData, opts: Options, win: Windowing) -> ModelResult:
    t0 = time.perf_counter()
    p = rt.predict_proba(data.X)[:, 1].astype(np.float64)
    inference_seconds = time.perf_counter() - t0
    decision = opts.decision(rt, win)
    logics = decision.logics()
    sw = sweep(data, p, decision.alarm_logic())
    source = decision.sources["threshold"]
    op = choose(sw, threshold=opts.threshold, target_sensitivity=opts.target_sensitivity,
                max_far_per_day=opts.max_far_per_day,
                recorded=None if source in (DEFAULT_SOURCE, CLI_SOURCE) else decision.threshold)
    op["alarm_logic"] = decision.logic
    if op["chosen_on_data"]:
        decision = decision.with_threshold(op["threshold"], f"chosen on --data: {op['rule']}")
        op["note"] = ("chosen on the data evaluated here, so the figures at it are optimistic: choose it on a "
                      "validation set and reuse it on test data with --threshold")
    t = op["threshold"]
    max_p = max_per_event(p, data.window_event, len(data.events))
    decision_p, states, figures, by_logic = {}, {}, {}, {}
    for key, logic in logics.items():
        decision_p[key] = logic.decision_p(data, p)
        states[key] = logic.states(data, decision_p[key], t)
        figures[key] = event_figures(data, states[key], max_p)
        alarm = states[key] >= ALARM
        by_logic[key] = {
            "event": summary(data, figures[key]),
            "per_user": table_by(data, figures[key], "userId"),
            "per_subtype": table_by(data, figures[key], "subtype"),
            "szcore": szcore.score(data, alarm),
            "bootstrap_95ci": bootstrap.intervals(data.events["label"].to_numpy(), figures[key], data.hop_s,
                                                  seed=opts.seed, rule=opts.bootstrap_rule()),
        }
    c = curves(data.y, p)
    result = {"name": name, "path": str(rt.path), "runtime": rt.describe(),
              "decision_threshold_metadata": decision_threshold(rt.metadata, str(rt.path)),
              "decision": decision.to_dict(), "operating_point": op, "window": at_threshold(data.y, p > t),
              "roc_auc": c["roc_auc"], "average_precision": c["average_precision"],
              "logic": by_logic, "sweep": sw.to_dict(),
              "inference_seconds": inference_seconds}
    if opts.sweep_q is not None:
        result["q_sweep"] = sweep_q(rt, data, check_qs(opts.sweep_q), t, decision.alarm_logic())
    return ModelResult(name, rt, p, c, sw, op, decision_p, states, figures, result, decision)


def _osd_baseline(data: EvalData) -> dict[str, Any]:
    """The phone's recorded osdAlarmState >= OSD_ALARM_STATE: per window (its last datapoint) and per event
    (any row)."""
    osd = data.osd >= OSD_ALARM_STATE
    seizure = data.events["label"].to_numpy() == 1
    det = data.events["osd_detected"].to_numpy()
    non_windows = np.bincount(data.window_event, minlength=len(data.events))[~seizure].sum()
    starts = episode_starts(osd, data.window_event, data.end_time)  # alarm episodes, as for the models
    false_alarms = int(starts[~seizure[data.window_event]].sum())
    non_hours = hours(non_windows, data.hop_s)
    return {"rule": f"recorded osdAlarmState >= {OSD_ALARM_STATE} ({OSD_ALARM_STATE} ALARM and higher codes; empty "
                    "counts as 0); window: its last "
                    "datapoint; event: any datapoint of the event, including those before its first window; false "
                    "alarms: alarm episodes, as for the models",
            "window": at_threshold(data.y, osd),
            "event": {**detection(seizure, det), "false_alarms": false_alarms,
                      "fp_per_24h": per_24h(false_alarms, non_hours)}}


def evaluate(models: Sequence[str | Path], data: Sequence[str | Path], *, config: str | Path | None = None,
             options: Options = Options()) -> Evaluation:
    """Evaluate ``models`` side by side on ``data``; returns arrays and the results.json body."""
    options.check()
    if not models:
        raise ModelError("no MODEL given (an ONNX file, a run directory, or a .pt / .keras file)")
    paths = [Path(m) for m in models]
    runtimes = [open_model(p, threads=options.threads) for p in paths]
    win = windowing(runtimes, config)
    window, step, sample_freq = win.cfg.window, int(win.cfg.processing["step"]), int(win.cfg.model["sampleFreq"])
    t0 = time.perf_counter()
    ev_data = load(data, win.cfg, filters=dict(win.cfg.filters) if win.from_file else {})
    load_seconds = time.perf_counter() - t0
    model_results = [_model(name, rt, ev_data, options, win) for name, rt in zip(_names(paths), runtimes)]
    ev = ev_data.events
    results = {
        "deepepi_version": __version__,
        "data": {"inputs": ev_data.sources, "windows": len(ev_data), "seizure_windows": int((ev_data.y == 1).sum()),
                 "events": len(ev), "seizure_events": int((ev["label"] == 1).sum()),
                 "events_without_windows": int((np.bincount(ev_data.window_event, minlength=len(ev)) == 0).sum()),
                 "users": int(ev["userId"].nunique()), "window": window, "step": step, "sample_freq": sample_freq,
                 "hop_s": ev_data.hop_s, "windowing_from": win.source,
                 "validate_datapoints": bool(win.cfg.processing["validateDatapoints"]),
                 "seizure_onset_sources": {k: int(v) for k, v in
                                           ev.loc[ev["label"] == 1, "onset_source"].value_counts().items()},
                 "load_seconds": load_seconds},
        "definitions": _definitions(options, model_results[0].decision),
        "szcore": szcore.description(),
        "models": [m.summary for m in model_results],
        "osd_baseline": _osd_baseline(ev_data),
    }
    return Evaluation(ev_data, model_results, results)


def _definitions(opts: Options, decision: Decision) -> dict[str, Any]:
    return {
        "window_positive": "p(seizure) > threshold (strict)",
        "decision": "each model's Decision (models[].decision): threshold, movement gate, WarnTime/AlarmTime "
                    "and leading logic, each part from the first of: CLI flag, model metadata, config, "
                    "reference default",
        "alarm_logics": {"raw": "every window with p > threshold is an alarm window",
                         "app": f"movement gate (accSdThreshold {decision.acc_sd_threshold:g} % for the first "
                                "model: p = 0 when "
                                "100*std/mean of the newest 5 s datapoint is below it), p > threshold, then "
                                "the WarnTime/AlarmTime state machine; alarm windows are those in ALARM",
                         "app_timing": decision.params.to_dict()},
        "primary_logic": "app",  # the headline: what the phone would have done (the Decision's logic: the sweep)
        "alarm": "the start of a run of alarm windows within a contiguous stretch of one event",
        "detected": "an alarm anywhere in a seizure event",
        "latency": "first alarm window's time (its last datapoint) minus the onset: seizureTimes start from "
                   "OSDB JSON, else the recording start (5 s before the first datapoint)",
        "fp_per_24h": "alarms in non-seizure events / (non-seizure windows x hop) x 24 h",
        "false_alarm_ratio": "share of non-seizure events with at least one alarm",
        "bootstrap": f"{opts.resamples} resamples of events within each class, seed {opts.seed}, 95% percentile",
    }
