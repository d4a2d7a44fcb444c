"""The validation-chosen decision threshold, recorded in the run directory as threshold.json.

The rule and its figures are scoring's (``deepepi.scoring.operating.training_threshold``: the highest
validation event sensitivity through the app's alarm logic within the config's false-alarm budget,
``alarmBudgetPer24h``, else the best event Youden J, said loudly); this module only turns the
validation split into scoring's input (the movement gate needs the windows' samples: applied unless
the windows are normalised) and writes the record. Export copies the threshold into the ONNX
metadata as ``decision_threshold``; evaluate and predict use it by default.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from deepepi.core import io
from deepepi.core.preprocessing import MILLI_G_PER_G
from deepepi.data.windows import GAP_SECONDS, gap_from_config
from deepepi.runs.layout import THRESHOLD
from deepepi.scoring.alarm import AlarmParams
from deepepi.scoring.evaldata import EvalData, from_windows
from deepepi.scoring.events import AlarmLogic
from deepepi.scoring.operating import training_threshold
from deepepi.scoring.per_event import event_auc


def validation_data(windows: Any, hop_s: float, *, gap_seconds: float) -> EvalData:
    """The validation split as scoring's input, segmented as ``evaluate`` segments the same windows:
    ``gap_seconds`` is ``data.windows.gap_from_config`` of the run's config (no restart under
    validateDatapoints, whose windows run through the zero-filled gaps)."""
    return from_windows(windows, hop_s, gap_seconds=gap_seconds)


def rule_input(windows: Any, hop_s: float, *, gap_seconds: float, acc_sd_threshold: float,
               normalised: bool) -> tuple[EvalData, float]:
    """The validation split as the rule reads it, and the movement gate applied to it. The gate
    (100 * std / mean, unit-free) is computed from the windows scaled back to milli-g; normalised
    windows have lost their mean, so the gate is then left out (0)."""
    data = validation_data(windows, hop_s, gap_seconds=gap_seconds)
    gate = acc_sd_threshold if acc_sd_threshold > 0 and not normalised else 0.0
    if gate > 0:
        X = np.asarray(windows.X, dtype=np.float64).reshape(len(windows.y), -1) * MILLI_G_PER_G
        data = replace(data, X=X)
    return data, gate


def choose_threshold(p_seizure: np.ndarray, windows: Any, hop_s: float, *, budget_per_24h: float,
                     acc_sd_threshold: float = 0.0, normalised: bool = False, seed: int = 0,
                     gap_seconds: float = GAP_SECONDS, params: AlarmParams = AlarmParams(),
                     interval: bool = True) -> dict[str, Any]:
    """The threshold record for ``windows`` (validation split, model input in g) and their seizure
    probabilities, through the app logic with ``params`` (WarnTime/AlarmTime) and the movement gate
    (``rule_input``)."""
    data, gate = rule_input(windows, hop_s, gap_seconds=gap_seconds, acc_sd_threshold=acc_sd_threshold,
                            normalised=normalised)
    rec = training_threshold(p_seizure, data, budget_per_24h=budget_per_24h,
                             logic=AlarmLogic("app", acc_sd_threshold=gate, params=params), seed=seed,
                             interval=interval)
    rec["alarm_logic"]["movement_gate_applied"] = gate > 0
    if acc_sd_threshold > 0 and gate == 0:
        rec["alarm_logic"]["movement_gate_note"] = ("not applied on validation: the windows are normalised "
                                                    "(dataProcessing.normalise), so 100 * std / mean is undefined")
    return rec


def _rule_settings(cfg: Any) -> dict[str, Any]:
    """The rule's settings from a run config: budget, movement gate, WarnTime/AlarmTime, seed, gap rule."""
    proc = cfg.processing
    return {"budget_per_24h": float(cfg.model["alarmBudgetPer24h"]), "acc_sd_threshold": float(proc["accSdThreshold"]),
            "normalised": bool(proc["normalise"]), "seed": cfg.seed, "gap_seconds": gap_from_config(cfg),
            "params": AlarmParams(warn_time=float(proc["warnTime"]), alarm_time=float(proc["alarmTime"]))}


def record(run_dir: Path, p_seizure: np.ndarray, windows: Any, hop_s: float, val_source: str, *,
           cfg: Any) -> dict[str, Any]:
    """Choose the threshold on the validation split per ``cfg`` (budget, movement gate, WarnTime/AlarmTime,
    seed, and the gap rule of its windows) and write RUN/threshold.json."""
    rec = {**choose_threshold(p_seizure, windows, hop_s, **_rule_settings(cfg)), "validation_source": val_source}
    io.write_json(Path(run_dir) / THRESHOLD, rec)
    return rec


def epoch_figures(p_seizure: np.ndarray, windows: Any, cfg: Any) -> dict[str, Any]:
    """The rule applied to one epoch's validation probabilities, as history fields for the ``alarm_rule``
    checkpoint selection (``train.selection``): whether a threshold meets the budget, the event
    sensitivity, false alarms and event Youden J at the rule's threshold, and the event AUC. The
    validation data is built once per epoch for both."""
    hop_s = int(cfg.processing["step"]) / float(cfg.model["sampleFreq"])
    rule = _rule_settings(cfg)
    data, gate = rule_input(windows, hop_s, gap_seconds=rule["gap_seconds"],
                            acc_sd_threshold=rule["acc_sd_threshold"], normalised=rule["normalised"])
    rec = training_threshold(p_seizure, data, budget_per_24h=rule["budget_per_24h"],
                             logic=AlarmLogic("app", acc_sd_threshold=gate, params=rule["params"]),
                             seed=rule["seed"], interval=False)
    return {"val_budget_met": rec["budget_met"], "val_event_threshold": rec["decision_threshold"],
            "val_event_sensitivity": rec["event_sensitivity"], "val_false_alarms": rec["false_alarms"],
            "val_event_youden": rec["youden_j"],
            "val_event_auc": event_auc(p_seizure, data.window_event, data.events["label"].to_numpy())}


def figures_words(rec: dict[str, Any]) -> str:
    """The validation figures at the chosen threshold, for the training log's threshold line."""
    sens, n = rec.get("event_sensitivity"), rec.get("validation_seizure_events", 0)
    detected = "n/a" if sens is None else f"{sens:.3f} ({round(sens * n)} of {n} seizure events)"
    return (f"validation: sensitivity {detected}, {rec.get('false_alarms', 0)} false alarm(s) in "
            f"{rec.get('validation_non_seizure_hours') or 0.0:.1f} h of non-seizure recording")


def end_lines(rec: dict[str, Any]) -> list[str]:
    """What training prints last about its threshold: the fallback's one loud line and the
    uncertainty warning (empty when the budget was met on enough seizure events)."""
    return list(rec.get("warnings", []))
