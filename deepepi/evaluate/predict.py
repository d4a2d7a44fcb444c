"""`deepepi predict MODEL --data CSV|OSDB.json [--stream]`: per-datapoint probabilities, states, alarms.

Framework-free: the model runs in its own runtime (``deepepi.runtimes.open_model``: onnxruntime,
LiteRT, ExecuTorch, ...). The decision rules are the phone app's, from ``deepepi.scoring.alarm``: the
movement gate (p = 0 when the current datapoint's 100*std/mean is below ``accSdThreshold`` %),
p > threshold (strict), and the WarnTime / AlarmTime state machine.

The decision settings are one ``scoring.decision.Decision`` (threshold, gate, WarnTime/AlarmTime),
resolved by the caller; windows follow the windowing config (``evaluate.data.windowing``) exactly as
training cuts them (``validateDatapoints`` zero-fills gaps and lets the buffer run through them).

Two ways to get the probabilities, which must agree:
- batch: every window cut at once (``windows_from_config``: the training windows), the state machine
  run vectorised per contiguous stretch (``alarm_states``);
- ``stream``: what the app does, one 5 s datapoint at a time: its 125 samples are appended to a
  circular buffer of ``window`` samples (oldest first), p = 0 until the buffer is full, then the
  model on the buffer, the gate, the threshold and one ``AlarmStateMachine.step``. A replay starts
  each event (and each stretch after a recording gap) with an empty buffer and a fresh machine, so
  the buffer holds exactly the batch window ending at the same datapoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepepi.core.config import Config
from deepepi.core.constants import SAMPLES_PER_DATAPOINT
from deepepi.core.errors import DataError, ModelError
from deepepi.core.io import atomic_path
from deepepi.data import source
from deepepi.data.csvio import M_COLUMNS, WINDOW_COLUMNS
from deepepi.data.windows import contiguous_runs, count_windows, gap_from_config, rows_from_config, windows_from_config
from deepepi.scoring.alarm import ALARM, STATE_NAMES, AlarmStateMachine, alarm_states, gate_windows, still
from deepepi.scoring.decision import Decision
from deepepi.scoring.segments import restart_segments

COLUMNS = ("eventId", "userId", "dataTime", "label", "p_seizure", "p_decision", "positive", "state",
           "alarm")


def read_datapoints(path: str | Path, filters: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per datapoint from a flattened CSV, or from OSDB JSON (flattened on the way, with
    the given eventFilters)."""
    return source.read_datapoints(path, filters, columns=WINDOW_COLUMNS, prefix="deepepi-predict-")


def _frame(event: np.ndarray, user: np.ndarray, time: np.ndarray, label: np.ndarray, p: np.ndarray,
           decision_p: np.ndarray, positive: np.ndarray, states: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "eventId": event, "userId": user, "dataTime": time, "label": label,
        "p_seizure": p.astype(np.float64), "p_decision": decision_p.astype(np.float64),
        "positive": positive.astype(np.int8), "state": [STATE_NAMES[s] for s in states],
        "alarm": (np.asarray(states) == ALARM).astype(np.int8)})


def predict_batch(runtime: Any, df: pd.DataFrame, rules: Decision, cfg: Config, *,
                  source: str | None = None) -> pd.DataFrame:
    """One row per window (a datapoint with a full buffer), all windows at once, cut as training cuts them;
    ``source`` (the data file) is named when it gives no window."""
    window, step = cfg.window, int(cfg.processing["step"])
    windows = windows_from_config(df, cfg, raw=True)
    if len(windows) == 0:
        raise DataError(f"no complete {window}-sample windows (every event is shorter than "
                        f"{window // SAMPLES_PER_DATAPOINT} datapoints)", source=source)
    _, _, lengths = contiguous_runs(rows_from_config(df, cfg)[0], gap_from_config(cfg))
    segment = restart_segments(windows.event_id, windows.end_time, gap_seconds=gap_from_config(cfg),
                               run_windows=count_windows(lengths * SAMPLES_PER_DATAPOINT, window, step))
    p = runtime.predict_proba(windows.X)[:, 1]
    decision_p = gate_windows(p, windows.X, rules.acc_sd_threshold)
    positive = decision_p > rules.threshold
    states = alarm_states(positive, segment, rules.params)
    return _frame(windows.event_id, windows.user_id, windows.end_time, windows.y, p, decision_p,
                  positive, states)


class Stream:
    """The app's per-datapoint loop for one model: circular buffer, gate, threshold, state machine."""

    def __init__(self, runtime: Any, rules: Decision) -> None:
        self.runtime = runtime
        self.rules = rules
        self.window = int(runtime.window)
        self.machine = AlarmStateMachine(rules.params)
        self.reset()

    def reset(self) -> None:
        """Empty buffer and a fresh state machine (a new recording)."""
        self.buffer = np.zeros(self.window, dtype=np.float32)
        self.head = 0    # where the next sample goes; the oldest sample once the buffer is full
        self.filled = 0
        self.machine.reset()

    def step(self, samples_milli_g: np.ndarray) -> tuple[float, float, bool, int, bool]:
        """One datapoint -> (p, decision p, positive, state, buffer full)."""
        for value in np.asarray(samples_milli_g, dtype=np.float32):
            self.buffer[self.head] = value
            self.head = (self.head + 1) % self.window
        self.filled = min(self.filled + len(samples_milli_g), self.window)
        full = self.filled == self.window
        p = 0.0
        if full:
            ordered = np.concatenate([self.buffer[self.head:], self.buffer[:self.head]])
            p = float(self.runtime.predict_proba(ordered[None, :])[0, 1])
        decision_p = 0.0 if bool(still(samples_milli_g, self.rules.acc_sd_threshold)) else p
        positive = decision_p > self.rules.threshold
        return p, decision_p, positive, self.machine.step(positive), full


def predict_stream(runtime: Any, df: pd.DataFrame, rules: Decision, cfg: Config) -> pd.DataFrame:
    """One row per datapoint (after the config's gap filling), fed one at a time; ``buffer_full`` marks
    rows the model ran on. The buffer restarts where the config's windows restart."""
    df = rows_from_config(df, cfg)[0]
    order, starts, _ = contiguous_runs(df, gap_from_config(cfg))
    samples = df[list(M_COLUMNS)].to_numpy(dtype=np.float32)[order]
    run_start = np.zeros(len(order), dtype=bool)
    run_start[starts] = True
    stream = Stream(runtime, rules)
    rows = []
    for i in range(len(order)):
        if run_start[i]:
            stream.reset()
        try:
            rows.append(stream.step(samples[i]))
        except ModelError as err:  # the model's one window: name the datapoint it ended at
            event, time = (df[c].to_numpy()[order[i]] for c in ("eventId", "dataTime"))
            raise ModelError(f"{err} (streamed datapoint of event {int(event)}, dataTime {float(time)!r})") from None
    p, decision_p, positive, states, full = (np.array(col) for col in zip(*rows)) if rows else \
        (np.empty(0),) * 5
    def pick(column: str) -> np.ndarray:
        return df[column].to_numpy()[order]

    out = _frame(pick("eventId"), pick("userId"), pick("dataTime"), pick("type"), p, decision_p,
                 positive.astype(bool), states.astype(np.int64))
    out["buffer_full"] = full.astype(np.int8)
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
