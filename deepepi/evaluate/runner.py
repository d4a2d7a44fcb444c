"""``evaluate``: run every model on the same windows and judge it per window, per event and per alarm.

Order: check the options, open the models (any runtime format), read and window the data once,
predict, then per model: ROC/PR, the threshold sweep under the chosen alarm logic, the operating
point, and at that threshold the window figures, both alarm logics' event figures (per user and
subtype too), SzCORE scores and bootstrap CIs (``BOOTSTRAP``: events resampled within each class,
``--bootstrap`` draws, 1,000 by default). The OSD baseline (recorded osdAlarmState >= OSD_ALARM_STATE) is
scored beside them. ``report.write_all`` then writes results.json, events.csv, the plots and
report.html.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from deepepi import __version__
from deepepi.core.config import load_config
from deepepi.core.constants import APP_ACC_SD_THRESHOLD_PCT, OSD_ALARM_STATE
from deepepi.core.errors import ConfigError, ModelError
from deepepi.evaluate import szcore
from deepepi.evaluate.data import EvalData, load
from deepepi.scoring import bootstrap
from deepepi.scoring.alarm import ALARM, AlarmParams
from deepepi.scoring.events import (AlarmLogic, EventFigures, detection, episode_starts, event_figures, hours, per_24h,
                                    summary, table_by)
from deepepi.scoring.operating import Sweep, check_rule, choose, sweep
from deepepi.evaluate.qsweep import check_qs, sweep_q
from deepepi.scoring.window_metrics import at_threshold, curves
from deepepi.runtimes import Runtime, open_model
from deepepi.runtimes.base import decision_threshold
from deepepi.scoring.per_event import max_per_event

BOOTSTRAP_RESAMPLES = 1000  # evaluate's default draws; its rule resamples events within each class


@dataclass(frozen=True)
class Options:
    threshold: float | None = None
    target_sensitivity: float | None = None
    max_far_per_day: float | None = None
    alarm_logic: str = "raw"
    acc_sd_threshold: float = APP_ACC_SD_THRESHOLD_PCT
    seed: int = 0
    resamples: int = BOOTSTRAP_RESAMPLES
    threads: int | None = None
    alarm_params: AlarmParams = field(default_factory=AlarmParams)
    sweep_q: tuple[float, ...] | None = None  # ensembles: event figures over these q (qsweep)

    def check(self) -> None:
        check_rule(self.threshold, self.target_sensitivity, self.max_far_per_day)
        if self.sweep_q is not None:
            check_qs(self.sweep_q)
        if self.alarm_logic not in ("raw", "app"):
            raise ConfigError(f"--alarm-logic: got {self.alarm_logic!r}, expected raw or app")
        if not self.acc_sd_threshold >= 0.0:
            raise ConfigError(f"--acc-sd-threshold: got {self.acc_sd_threshold!r}, expected a percentage >= 0")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads: got {self.threads}, expected a positive number of threads")
        if self.resamples < 1:
            raise ConfigError(f"--bootstrap: got {self.resamples}, expected a positive number of resamples")

    def bootstrap_rule(self) -> bootstrap.Rule:
        """evaluate's bootstrap: ``resamples`` draws of events within each class (class counts kept)."""
        return bootstrap.Rule(draws=self.resamples, within_class=True)

    def logics(self) -> dict[str, AlarmLogic]:
        return {"raw": AlarmLogic("raw"),
                "app": AlarmLogic("app", self.acc_sd_threshold, self.alarm_params)}


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


def _windowing(runtimes: list[Runtime], config: str | Path | None) -> tuple[int, int, int, dict[str, Any], str]:
    """(window, step, sample_freq, eventFilters, source): from --config, else the first model's metadata."""
    windows = {rt.window for rt in runtimes}
    if len(windows) > 1:
        raise ModelError(f"the models take different windows ({', '.join(map(str, sorted(windows)))} samples); "
                         "models compared side by side must read the same windows")
    window = windows.pop()
    if config is not None:
        cfg = load_config(config, warn=("keys", "window"))  # windows only: no training warnings
        if cfg.window != window:
            raise ConfigError(f"config window {cfg.window} (sampleFreq x bufferSeconds) differs from the "
                              f"models' input window {window}", source=cfg.source)
        return window, int(cfg.processing["step"]), int(cfg.model["sampleFreq"]), dict(cfg.filters), cfg.source
    meta = runtimes[0].metadata
    try:
        return window, int(meta["step"]), int(meta["sample_freq"]), {}, f"{runtimes[0].path} metadata"
    except (KeyError, ValueError):
        raise ModelError("metadata lacks step/sample_freq; pass --config", source=str(runtimes[0].path)) from None


def _model(name: str, rt: Runtime, data: EvalData, opts: Options) -> ModelResult:
    t0 = time.perf_counter()
    p = rt.predict_proba(data.X)[:, 1].astype(np.float64)
    inference_seconds = time.perf_counter() - t0
    logics = opts.logics()
    sw = sweep(data, p, logics[opts.alarm_logic])
    op = choose(sw, threshold=opts.threshold, target_sensitivity=opts.target_sensitivity,
                max_far_per_day=opts.max_far_per_day, recorded=decision_threshold(rt.metadata, str(rt.path)))
    op["alarm_logic"] = opts.alarm_logic
    if op["chosen_on_data"]:
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
              "operating_point": op, "window": at_threshold(data.y, p > t),
              "roc_auc": c["roc_auc"], "average_precision": c["average_precision"],
              "logic": by_logic, "sweep": sw.to_dict(),
              "inference_seconds": inference_seconds}
    if opts.sweep_q is not None:
        result["q_sweep"] = sweep_q(rt, data, check_qs(opts.sweep_q), t, logics[opts.alarm_logic])
    return ModelResult(name, rt, p, c, sw, op, decision_p, states, figures, result)


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
    window, step, sample_freq, filters, windowing_source = _windowing(runtimes, config)
    t0 = time.perf_counter()
    ev_data = load(data, window=window, step=step, sample_freq=sample_freq, filters=filters)
    load_seconds = time.perf_counter() - t0
    model_results = [_model(name, rt, ev_data, options) for name, rt in zip(_names(paths), runtimes)]
    ev = ev_data.events
    results = {
        "deepepi_version": __version__,
        "data": {"inputs": ev_data.sources, "windows": len(ev_data), "seizure_windows": int((ev_data.y == 1).sum()),
                 "events": len(ev), "seizure_events": int((ev["label"] == 1).sum()),
                 "events_without_windows": int((np.bincount(ev_data.window_event, minlength=len(ev)) == 0).sum()),
                 "users": int(ev["userId"].nunique()), "window": window, "step": step, "sample_freq": sample_freq,
                 "hop_s": ev_data.hop_s, "windowing_from": windowing_source,
                 "seizure_onset_sources": {k: int(v) for k, v in
                                           ev.loc[ev["label"] == 1, "onset_source"].value_counts().items()},
                 "load_seconds": load_seconds},
        "definitions": _definitions(options),
        "szcore": szcore.description(),
        "models": [m.summary for m in model_results],
        "osd_baseline": _osd_baseline(ev_data),
    }
    return Evaluation(ev_data, model_results, results)


def _definitions(opts: Options) -> dict[str, Any]:
    return {
        "window_positive": "p(seizure) > threshold (strict)",
        "alarm_logics": {"raw": "every window with p > threshold is an alarm window",
                         "app": f"movement gate (accSdThreshold {opts.acc_sd_threshold:g} %: p = 0 when "
                                "100*std/mean of the newest 5 s datapoint is below it), p > threshold, then "
                                "the WarnTime/AlarmTime state machine; alarm windows are those in ALARM",
                         "app_timing": opts.alarm_params.to_dict()},
        "primary_logic": "app",  # the headline: what the phone would have done (--alarm-logic: the sweep)
        "alarm": "the start of a run of alarm windows within a contiguous stretch of one event",
        "detected": "an alarm anywhere in a seizure event",
        "latency": "first alarm window's time (its last datapoint) minus the onset: seizureTimes start from "
                   "OSDB JSON, else the recording start (5 s before the first datapoint)",
        "fp_per_24h": "alarms in non-seizure events / (non-seizure windows x hop) x 24 h",
        "false_alarm_ratio": "share of non-seizure events with at least one alarm",
        "bootstrap": f"{opts.resamples} resamples of events within each class, seed {opts.seed}, 95% percentile",
    }
