"""The alarm decision: how a model's probabilities become what the phone does, resolved once.

A ``Decision`` holds the five parts that turn probabilities into alarms: the decision threshold
(p > t, strict), the movement gate (``accSdThreshold`` %), the app's WarnTime and AlarmTime
(``scoring.alarm.AlarmParams``) and the logic whose figures lead (``raw`` windows or the ``app``'s
alarms; both are always computed). Every part records where it came from.

``resolve`` is the one precedence rule, used by train's reported figures, evaluate, predict (batch
and stream), ``verify --mode quantized``, the export gates and the app metadata:

    CLI flag  >  model metadata (ONNX metadata, app sidecar, the run's threshold.json)
              >  run config (``dataProcessing.accSdThreshold``, ``warnTime``, ``alarmTime``)
              >  reference default (``core.constants``)

A part a layer does not give (None) falls through to the next. Callers read their layers (the
runtimes read metadata, the CLI its flags) and pass the values in; this module reads no file.
``at_decision`` computes the figures every route reports at a Decision, so the same model on the
same windows gives the same numbers whichever command asks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from deepepi.core.constants import APP_ACC_SD_THRESHOLD_PCT, DEFAULT_THRESHOLD
from deepepi.core.errors import ConfigError, DeepEpiError
from deepepi.scoring.alarm import AlarmParams
from deepepi.scoring.evaldata import ONSET_RECORDING_START, EvalData, from_windows
from deepepi.scoring.events import LOGICS, AlarmLogic, event_figures, summary
from deepepi.scoring.per_event import max_per_event
from deepepi.scoring.window_metrics import at_threshold

PARTS = ("threshold", "acc_sd_threshold", "warn_time", "alarm_time", "logic")
DEFAULT_SOURCE = "reference default"
CLI_SOURCE = "CLI flag"
DEFAULT_LOGIC = "app"  # what the phone does leads; raw-window figures are reported beside it
_DEFAULTS: dict[str, Any] = {"threshold": DEFAULT_THRESHOLD, "acc_sd_threshold": APP_ACC_SD_THRESHOLD_PCT,
                             "warn_time": AlarmParams().warn_time, "alarm_time": AlarmParams().alarm_time,
                             "logic": DEFAULT_LOGIC}
_NAMES = {"threshold": "decision threshold", "acc_sd_threshold": "movement gate (accSdThreshold %)",
          "warn_time": "WarnTime (s)", "alarm_time": "AlarmTime (s)", "logic": "alarm logic"}


@dataclass(frozen=True)
class Layer:
    """One source of decision parts: its name (for the outputs) and the parts it gives (None: not given)."""

    source: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """Threshold, movement gate, warn/alarm times and the leading logic, with each part's source."""

    threshold: float = DEFAULT_THRESHOLD
    acc_sd_threshold: float = APP_ACC_SD_THRESHOLD_PCT
    warn_time: float = AlarmParams().warn_time
    alarm_time: float = AlarmParams().alarm_time
    logic: str = DEFAULT_LOGIC
    sources: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(PARTS, DEFAULT_SOURCE))

    @property
    def params(self) -> AlarmParams:
        return AlarmParams(warn_time=self.warn_time, alarm_time=self.alarm_time)

    def alarm_logic(self, name: str | None = None) -> AlarmLogic:
        """``name`` (default: the leading logic) with this decision's gate and timing."""
        name = self.logic if name is None else name
        return AlarmLogic("raw") if name == "raw" else AlarmLogic("app", self.acc_sd_threshold, self.params)

    def logics(self) -> dict[str, AlarmLogic]:
        return {name: self.alarm_logic(name) for name in LOGICS}

    def with_threshold(self, threshold: float, source: str) -> "Decision":
        """The same decision at another threshold (an operating point chosen on data)."""
        return replace(self, threshold=float(threshold), sources={**self.sources, "threshold": source})

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "acc_sd_threshold_pct": self.acc_sd_threshold,
                "warn_time_s": self.warn_time, "alarm_time_s": self.alarm_time, "logic": self.logic,
                "sources": {part: self.sources[part] for part in PARTS}}

    def describe(self) -> str:
        """One line for a printed summary: each part and where it came from."""
        return describe(self.to_dict())


def describe(d: Mapping[str, Any]) -> str:
    """``Decision.to_dict()`` (as written to JSON) as the one printed line every command shows."""
    s = d["sources"]
    return (f"decision: threshold {d['threshold']:g} ({s['threshold']}), movement gate "
            f"{d['acc_sd_threshold_pct']:g} % ({s['acc_sd_threshold']}), WarnTime {d['warn_time_s']:g} s "
            f"({s['warn_time']}), AlarmTime {d['alarm_time_s']:g} s ({s['alarm_time']}), "
            f"{d['logic']} logic leads ({s['logic']})")


def _check(part: str, value: Any, source: str, error: type[DeepEpiError]) -> Any:
    """``value`` as the part's type, else the caller's one-line error naming the source."""
    if part == "logic":
        if value not in LOGICS:
            raise error(f"{_NAMES[part]}: got {value!r}, expected one of {', '.join(LOGICS)}", source=source)
        return str(value)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))
    hi = 1.0 if part == "threshold" else math.inf
    if not ok or not 0.0 <= float(value) <= hi:
        want = "a number in [0, 1]" if part == "threshold" else "a finite number >= 0"
        raise error(f"{_NAMES[part]}: got {value!r}, expected {want}", source=source)
    return float(value)


def resolve(*layers: Layer | None, error: type[DeepEpiError] = ConfigError) -> Decision:
    """The decision from ``layers`` in precedence order (first wins: CLI, model metadata, run config),
    then the reference default; a layer of None is skipped. A bad value is ``error`` naming its source."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for layer in (x for x in layers if x is not None):
        for part in PARTS:
            value = layer.values.get(part)
            if part not in values and value is not None:
                values[part] = _check(part, value, layer.source, error)
                sources[part] = layer.source
    for part in PARTS:
        if part not in values:
            values[part], sources[part] = _DEFAULTS[part], DEFAULT_SOURCE
    if values["alarm_time"] < values["warn_time"]:
        raise error(f"AlarmTime {values['alarm_time']:g} s is below WarnTime {values['warn_time']:g} s "
                    f"({sources['alarm_time']}, {sources['warn_time']})")
    return Decision(**values, sources=sources)


def cli_layer(**values: Any) -> Layer:
    """The command line's parts (None: the flag was not given)."""
    return Layer(CLI_SOURCE, values)


def config_parts(processing: Mapping[str, Any]) -> dict[str, Any]:
    """A config's parts of the decision (its ``dataProcessing`` section): the movement gate
    ``accSdThreshold`` and the app's ``warnTime`` / ``alarmTime`` (absent: None)."""
    return {"acc_sd_threshold": processing.get("accSdThreshold"), "warn_time": processing.get("warnTime"),
            "alarm_time": processing.get("alarmTime")}


def config_layer(processing: Mapping[str, Any], source: str) -> Layer:
    """A config file's layer of the decision (``config_parts``), named by the file."""
    return Layer(f"config {source}", config_parts(processing))


def windows_data(windows: Any, *, hop_s: float, gap_seconds: float, window_seconds: float) -> EvalData:
    """EvalData over already-cut raw milli-g windows (``data.windows.Windows``: a training split, verify's
    or export's check windows), scored as ``evaluate`` scores the same windows: the movement gate reads
    the raw samples, and each event's recording starts ``window_seconds`` before its first window ends
    (latency from the recording start, as for CSV input)."""
    data = from_windows(windows, hop_s, gap_seconds=gap_seconds)
    events = data.events.copy()
    first = np.full(len(events), np.nan)
    if len(windows):
        np.fmin.at(first, data.window_event, np.asarray(windows.end_time, dtype=np.float64))
    events["start"] = events["onset"] = first - window_seconds
    events["onset_source"] = ONSET_RECORDING_START
    return replace(data, X=np.asarray(windows.X), events=events)


def at_decision(data: EvalData, p: np.ndarray, decision: Decision) -> dict[str, Any]:
    """Every route's figures at ``decision``: window counts at p > threshold, and per alarm logic the
    event summary (``scoring.events.summary``); ``primary`` names the leading logic."""
    p = np.asarray(p, dtype=np.float64)
    max_p = max_per_event(p, data.window_event, len(data.events))
    by_logic = {}
    for name, logic in decision.logics().items():
        states = logic.states(data, logic.decision_p(data, p), decision.threshold)
        by_logic[name] = summary(data, event_figures(data, states, max_p))
    return {"decision": decision.to_dict(), "primary": decision.logic,
            "window": at_threshold(data.y, p > decision.threshold), "event": by_logic}


__all__ = ["Decision", "Layer", "describe", "PARTS", "DEFAULT_SOURCE", "CLI_SOURCE", "DEFAULT_LOGIC", "resolve", "cli_layer",
           "config_parts", "config_layer", "at_decision", "windows_data"]
