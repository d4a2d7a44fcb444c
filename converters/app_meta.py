"""The phone app's model metadata JSON, written beside every .tflite / .pte file.

The OpenSeizureDetector app (``SdAlgMl``) reads ``framework`` ("tflite" or "pytorch"),
``input_size`` (its default of 125 is wrong for DeepEpi, so it is always written), ``input_format_val``
(1 = "1d_mag", the only format) and the two threshold seeds ``accel_std_threshold_pct`` and
``seizure_probability_threshold_pct``. deepepi adds what its own runtimes and ``deepepi verify`` need:
the run's WarnTime/AlarmTime (``warn_time_s``, ``alarm_time_s``: the rest of the file's Decision), the
file's I/O convention and, under ``deepepi``, the same provenance keys the ONNX metadata_props hold
(contract.META_KEYS, plus ``validate_datapoints``: how training cut windows), so a .tflite or .pte is
compared with an ONNX file key by key.
Framework-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters.contract import ALARM_KEY, GATE_KEY, META_KEYS, RULE_KEY, THRESHOLD_KEY, VALIDATE_KEY, WARN_KEY
from deepepi.core.constants import APP_ACC_SD_THRESHOLD_PCT, DEFAULT_THRESHOLD
from deepepi.core.errors import ExportError, UnusableInputError
from deepepi.core.io import open_input, write_json
from deepepi.core.preprocessing import Preprocessing
from deepepi.core.threshold import parse_threshold

INPUT_FORMAT_1D_MAG = 1
APP_DEFAULT_ACC_SD_PCT = APP_ACC_SD_THRESHOLD_PCT
APP_DEFAULT_PROBABILITY_PCT = 100.0 * DEFAULT_THRESHOLD


@dataclass(frozen=True)
class Convention:
    """How a deployment format is fed and what it returns (the app's, per format)."""

    app_framework: str          # the app's metadata value: "tflite" or "pytorch"
    input_shape: tuple[int, ...]  # per window; 0 marks where the window length goes
    input_unit: str             # "g" for both app formats
    output: str                 # "probabilities" or "logits"
    delegate: str | None = None  # backend the converter lowers the graph to, recorded in the sidecar

    def shape(self, window: int) -> list[int]:
        return [window if d == 0 else d for d in self.input_shape]


TFLITE = Convention("tflite", (1, 0, 1), "g", "probabilities")
PTE = Convention("pytorch", (1, 1, 0), "g", "logits", "XnnpackBackend")


def sidecar_path(model_path: str | Path) -> Path:
    """``model.tflite`` -> ``model.tflite.json`` (one sidecar per file, whatever its format)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def build(convention: Convention, provenance: dict[str, str], *, window: int,
          acc_sd_threshold_pct: float | None, extra: dict[str, Any] | None = None,
          decision: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar content; ``provenance`` is contract.metadata(...) of the exported model, whose
    optional decision threshold also seeds the app's probability threshold. ``decision``
    (``scoring.decision.Decision.to_dict``) records the whole decision and where each part came from."""
    recorded = provenance.get(THRESHOLD_KEY)
    decision_threshold = None if recorded is None else parse_threshold(
        recorded, field=f"metadata {THRESHOLD_KEY}", source=None, error=ExportError, from_text=True)
    probability_pct = (APP_DEFAULT_PROBABILITY_PCT if decision_threshold is None
                       else round(100.0 * decision_threshold, 6))
    data: dict[str, Any] = {
        "framework": convention.app_framework,
        "input_size": int(window),
        "input_format_val": INPUT_FORMAT_1D_MAG,
        "accel_std_threshold_pct": float(APP_DEFAULT_ACC_SD_PCT if acc_sd_threshold_pct is None
                                         else acc_sd_threshold_pct),
        "seizure_probability_threshold_pct": probability_pct,
    }
    if decision_threshold is not None:
        data[THRESHOLD_KEY] = decision_threshold
        if provenance.get(RULE_KEY):
            data[RULE_KEY] = json.loads(provenance[RULE_KEY])
    for key in (WARN_KEY, ALARM_KEY):  # the run's WarnTime / AlarmTime: the rest of the file's Decision
        if provenance.get(key) is not None:
            data[key] = float(provenance[key])
    data["io"] = {"input_shape": convention.shape(window), "input_dtype": "float32",
                  "input_unit": convention.input_unit, "output": convention.output}
    if convention.delegate:
        data["io"]["delegate"] = convention.delegate
    data["deepepi"] = {key: provenance[key] for key in META_KEYS}
    if provenance.get(VALIDATE_KEY) is not None:  # how training cut windows, for evaluate and predict
        data["deepepi"][VALIDATE_KEY] = provenance[VALIDATE_KEY]
    if extra:
        data["deepepi"].update({k: str(v) for k, v in extra.items()})
    if decision is not None:
        data["decision"] = decision
    return data


def write(model_path: str | Path, data: dict[str, Any]) -> Path:
    path = sidecar_path(model_path)
    write_json(path, data)
    return path


def read(model_path: str | Path) -> dict[str, Any]:
    """The sidecar of ``model_path``; missing or unreadable is UnusableInputError naming the file."""
    path = sidecar_path(model_path)
    with open_input(path, "model metadata JSON (written by deepepi export beside the model)",
                    UnusableInputError) as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as exc:
            raise UnusableInputError(f"not valid JSON: {exc.msg} (line {exc.lineno})",
                                     source=str(path)) from None
    missing = [k for k in ("input_size", "io", "deepepi") if not isinstance(data, dict) or k not in data]
    if missing:
        raise UnusableInputError(f"not a deepepi model metadata file: lacks {', '.join(missing)}",
                                 source=str(path))
    return data


def runtime_metadata(data: dict[str, Any]) -> dict[str, str]:
    """The contract metadata a Runtime exposes: the provenance keys (``validate_datapoints`` among
    them when recorded), plus the decision threshold, the movement gate (the app's
    ``accel_std_threshold_pct``) and WarnTime/AlarmTime."""
    meta = {str(k): str(v) for k, v in data["deepepi"].items()}
    if THRESHOLD_KEY in data:
        meta[THRESHOLD_KEY] = repr(float(data[THRESHOLD_KEY]))
    if "accel_std_threshold_pct" in data:  # the app's movement gate: the file's part of the Decision
        meta[GATE_KEY] = str(data["accel_std_threshold_pct"])
    for key in (WARN_KEY, ALARM_KEY):
        if key in data:
            meta[key] = str(data[key])
    return meta


def check_convention(data: dict[str, Any], convention: Convention, source: str) -> int:
    """The window the sidecar declares, after checking it describes ``convention``."""
    io = data["io"]
    window = int(data["input_size"])
    if io.get("input_shape") != convention.shape(window) or io.get("output") != convention.output \
            or io.get("input_unit") != convention.input_unit:
        raise UnusableInputError(f"metadata declares input {io.get('input_shape')} in {io.get('input_unit')} "
                         f"with {io.get('output')} out; this format needs {convention.shape(window)} "
                         f"in {convention.input_unit} with {convention.output} out", source=source)
    return window


def preprocessing(meta: dict[str, str], source: str) -> Preprocessing:
    """The training preprocessing recorded in ``meta``; the adapters take its scale (milli-g -> g)."""
    try:
        return Preprocessing.from_dict(json.loads(meta["preprocessing"]))
    except (KeyError, TypeError, ValueError):
        raise UnusableInputError("model metadata lacks a readable preprocessing entry",
                                 source=source) from None
