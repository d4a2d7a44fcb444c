"""Config files in the reference (nnTraining2) layout: schema, defaults, framework detection, key warnings.

A reference config must load unchanged. Keys we do not act on are listed in one warning (never an
error, never a silent change of meaning); a key we act on with a wrong type or value is a ConfigError
naming the key path and the expected form.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Union

from deepepi.core import jsonlimits
from deepepi.core.constants import APP_ALARM_TIME_S, APP_WARN_TIME_S
from deepepi.core.errors import ConfigError, DeepEpiError
from deepepi.core.io import read_text
from deepepi.core.jsonlimits import CONFIG_MAX_DEPTH

SECTIONS = ("modelConfig", "dataProcessing", "eventFilters", "osdbConfig", "dataFileNames")
FRAMEWORKS = ("tensorflow", "pytorch")
_FRAMEWORK_ALIASES = {"tensorflow": "tensorflow", "tf": "tensorflow", "keras": "tensorflow",
                      "pytorch": "pytorch", "torch": "pytorch"}
REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DEFAULT_CONFIG = REPO_CONFIGS / "nnConfig_deep.json"


class UnsupportedKeysWarning(UserWarning):
    """Config keys that deepepi reads past without acting on them."""


# What a config warning is about. A command asks only for the kinds that concern what it reads
# (``load_config(path, warn=("keys", "window"))``): `data flatten` never validates, so a note that
# validationProp is replaced would be noise there. True means all kinds, False none.
WARNING_KINDS = ("keys", "framework", "window", "validation", "oversample")
Warn = Union[bool, Collection[str]]


def _warned_kinds(warn: Warn) -> frozenset[str]:
    if warn is True:
        return frozenset(WARNING_KINDS)
    if warn is False:
        return frozenset()
    unknown = set(warn) - set(WARNING_KINDS)
    if unknown:  # a programming error, not a user's: name it plainly
        raise ValueError(f"unknown config warning kind(s) {sorted(unknown)}; expected some of {WARNING_KINDS}")
    return frozenset(warn)


@dataclass(frozen=True)
class Key:
    """One supported key: its default, the form it must have, and a check of that form."""

    default: Any
    expected: str
    check: Callable[[Any], bool]


def number_rule(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                hi_open: bool = False, integer: bool = False, int_type: bool = False,
                expected: str | None = None) -> tuple[str, Callable[[Any], bool]]:
    """(what is expected, check) for a finite number in a range: the one rule for config values,
    CLI options (deepepi.cli.params), library arguments such as verify's tolerances, and model specs
    (deepepi.models.base's check_*).

    ``integer`` accepts whole floats (2.0, as JSON may carry them); ``int_type`` accepts Python ints
    only (a spec field must already be one). ``expected`` replaces the generated wording (specs say
    e.g. "a number with 0 <= dropout < 1").
    """
    kind = "an integer" if integer or int_type else "a finite number"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi}")
    if expected is None:
        expected = kind + (" " + " and ".join(parts) if parts else "")

    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if isinstance(v, float) and not math.isfinite(v):  # JSON NaN / Infinity
            return False
        if int_type and not isinstance(v, int):
            return False
        if integer and not (isinstance(v, int) or float(v).is_integer()):
            return False
        if lo is not None and (v <= lo if lo_open else v < lo):
            return False
        return not (hi is not None and (v >= hi if hi_open else v > hi))

    return expected, check


_num = number_rule  # the short name SCHEMA uses


def require_number(name: str, value: Any, rule: tuple[str, Callable[[Any], bool]],
                   error: type[DeepEpiError] = ConfigError) -> None:
    """``error`` naming ``name`` when ``value`` breaks ``rule`` (from number_rule)."""
    expected, check = rule
    if not check(value):
        raise error(f"{name}: got {value!r}, expected {expected}")


def _key(default: Any, spec: tuple[str, Callable[[Any], bool]]) -> Key:
    return Key(default, spec[0], spec[1])


def _choice(default: str, *choices: str) -> Key:
    return Key(default, "one of " + ", ".join(repr(c) for c in choices),
               lambda v: isinstance(v, str) and v in choices)


def _bool(default: bool) -> Key:
    return Key(default, "true or false", lambda v: isinstance(v, bool))


def _int_list(default: list[int] | None, lo: int = 1) -> Key:
    return Key(default, f"a non-empty list of integers >= {lo}",
               lambda v: isinstance(v, list) and len(v) > 0
               and all(isinstance(i, int) and not isinstance(i, bool) and i >= lo for i in v))


def _str_list() -> Key:
    return Key([], "a list of strings",
               lambda v: isinstance(v, list) and all(isinstance(i, (str, int)) for i in v))


def _opt(key: Key) -> Key:
    """Allow null, meaning 'use the derived value'."""
    return Key(key.default, key.expected + " or null", lambda v: v is None or key.check(v))


_POS_INT = _num(1, integer=True)
_NONNEG_INT = _num(0, integer=True)
_POS = _num(0, lo_open=True)
_FRACTION = _num(0, 1)
_OPEN_FRACTION = _num(0, 1, lo_open=True, hi_open=True)
DEFAULT_VALIDATION_PROP = 0.2
DEFAULT_ALARM_BUDGET_PER_24H = 1.0

SCHEMA: dict[str, dict[str, Key]] = {
    "modelConfig": {
        "framework": Key(None, "one of 'tensorflow', 'pytorch'", lambda v: v is None or isinstance(v, str)),
        "modelType": Key(None, "one of 'tensorflow', 'pytorch'", lambda v: v is None or isinstance(v, str)),
        "modelClass": Key("deepEpiCnn", "a model name (see `deepepi model list`)", lambda v: isinstance(v, str)),
        "modelFname": Key("deepEpiCnnModel", "a non-empty file name without '/'",
                          lambda v: isinstance(v, str) and v != "" and "/" not in v),
        "sampleFreq": _key(25, _POS_INT),
        "bufferSeconds": _key(30, _POS_INT),
        "epochs": _key(100, _POS_INT),
        "batchSize": _key(64, _POS_INT),
        "nLayers": _key(14, _POS_INT),
        # 2 is the reference SpecCnn's setting; its spectrogram is computed in the graph here, so both
        # values build the same SpecCnn (deepepi.models.registry refuses 2 for the 1-D models).
        "dims": _key(1, _num(1, 2, integer=True)),
        "lrStart": _key(1e-3, _POS),
        "lrFactor": _key(0.1, _OPEN_FRACTION),
        "lrPatience": _key(5, _NONNEG_INT),
        "lrMin": _key(1e-6, _num(0)),
        "earlyStoppingPatience": _key(10, _POS_INT),
        "trainingVerbosity": _key(1, _NONNEG_INT),
        "useLrSchedule": _bool(False),
        "useAdamW": _bool(False),
        "adamwBeta1": _key(0.9, _num(0, 1, hi_open=True)),
        "adamwBeta2": _key(0.999, _num(0, 1, hi_open=True)),
        "weightDecay": _key(1e-4, _num(0)),
        "lrPeak": _key(1e-4, _POS),
        "lrMainEnd": _key(3e-5, _num(0)),
        "warmupSteps": _key(2500, _NONNEG_INT),
        "mainSteps": _key(95000, _NONNEG_INT),
        "cooldownSteps": _key(2500, _NONNEG_INT),
        "convDropout": _key(0.0, _num(0, 1, hi_open=True)),
        "denseDropout": _key(0.025, _num(0, 1, hi_open=True)),
        # Checkpoint selection (deepepi.train.selection); defaults are the reference's.
        "modelSelectionMetric": _choice("dual_improvement", "dual_improvement", "f1", "f_beta", "youden",
                                        "min_fpr", "val_loss", "alarm_rule"),
        "saveBestMinSensitivity": _key(0.25, _FRACTION),
        "saveBestMaxFpr": _opt(_key(None, _FRACTION)),
        "fBeta": _key(2.0, _POS),
        "saveBestOnFarReduction": _key(0.10, _num(0)),
        "saveBestOnSensitivityTolerance": _key(0.05, _num(0)),
        "saveBestOnBothImprovement": _bool(True),
        # deepepi's threshold rule (deepepi.scoring.operating.training_threshold): the most app-logic
        # false alarms (alarm episodes) per 24 h of non-seizure validation recording the shipped
        # threshold may give; the default and its reasons are in README.md ("threshold.json").
        "alarmBudgetPer24h": _key(DEFAULT_ALARM_BUDGET_PER_24H, _num(0)),
        # Batches and step mode (useLrSchedule true: train totalTrainingSteps steps, validate every
        # evalEverySteps; deepepi.train.balanced for useBalancedBatches).
        "useBalancedBatches": _bool(False),
        "totalTrainingSteps": _key(50000, _POS_INT),
        "evalEverySteps": _key(5000, _POS_INT),
        # deepepi's own keys (architecture spec and precision); absent from reference configs. Null
        # strides / bnEpsilon / bnMomentum mean the reference model's value for the framework
        # (ArchSpec.from_config), so a reference config builds what the reference code builds.
        "filters": _opt(_int_list(None)),
        "strides": _opt(_int_list(None)),
        "kernelSize": _key(5, _POS_INT),
        "denseWidths": _opt(_int_list(None)),
        # The ONNX contract's output is [batch, 2] (class 1 = seizure); other counts cannot be exported.
        "numClasses": _key(2, _num(2, 2, integer=True)),
        "bnEpsilon": _opt(_key(None, _POS)),
        "bnMomentum": _opt(_key(None, _OPEN_FRACTION)),
        # SpecCnn (deepepi.models.speccnn.spec): analysed span (null: the window), slice length and step.
        "analysisSamp": _opt(_key(None, _POS_INT)),
        "specSamp": _key(50, _num(2, integer=True)),
        "specStep": _key(5, _POS_INT),
        # AMBER (deepepi.models.amber.spec): BiLSTM and LSTM widths.
        "amberRowHidden": _key(128, _POS_INT),
        "amberColHidden": _key(128, _POS_INT),
        "precision": _choice("fp32", "fp32", "bf16", "fp16"),
        "compile": _bool(False),
        "deterministic": _bool(False),  # CUDA: deterministic kernels (slower); CPU is always deterministic
    },
    "dataProcessing": {
        "window": _opt(_key(None, _POS_INT)),
        "step": _key(125, _POS_INT),
        "normalise": _bool(False),
        "oversample": _choice("none", "none", "random", "smote"),
        "undersample": _choice("none", "none", "random"),
        # Training-split augmentation (deepepi.data.augment), order phase -> user -> noise -> balance.
        "phaseAugmentation": _bool(False),
        "phaseAugmentationStep": _key(1, _num(1, 124, integer=True)),
        "userAugmentation": _bool(False),
        "noiseAugmentation": _bool(False),
        "noiseAugmentationFactor": _key(0, _NONNEG_INT),
        "noiseAugmentationValue": _key(0.0, _num(0)),
        # Deployment movement gate (per 5 s datapoint, 100*std/mean % of the magnitude); recorded with
        # the model for the alarm logic, never applied to the model input (see docs/ARCHITECTURE.md).
        "accSdThreshold": _key(5.0, _num(0)),
        # The app's WarnTime and AlarmTime (s): WARNING, then ALARM, once positives have lasted longer
        # (deepepi.scoring.alarm); part of the run's Decision like accSdThreshold, recorded with the model.
        "warnTime": _key(APP_WARN_TIME_S, _num(0)),
        "alarmTime": _key(APP_ALARM_TIME_S, _num(0)),
        # DeepEpi reads raw magnitude windows: the reference's feature path (and its high-pass filter)
        # does not apply; a filter would have to run in the app too, so only null is accepted.
        "simpleMagnitudeOnly": Key(True, "true (DeepEpi reads raw magnitude windows)", lambda v: v is True),
        "highPassFreq": Key(None, "null (DeepEpi input is not filtered, as in the reference's raw path "
                            "and the phone app)", lambda v: v is None),
        "highPassOrder": _key(2, _POS_INT),
        "validateDatapoints": _bool(False),  # reference gap zero-filling (deepepi.data.gaps)
        "features": Key(["acc_magnitude"], "a list of feature names containing 'acc_magnitude'",
                        lambda v: isinstance(v, list) and "acc_magnitude" in v),
        "testProp": _key(0.3, _OPEN_FRACTION),
        "validationProp": _key(0.2, _FRACTION),
        "nFolds": _key(1, _POS_INT),
        "fold": _key(0, _NONNEG_INT),
        "groupByUser": _bool(False),
        "splitTestTrainByEvent": Key(True, "true (deepepi always splits by event)", lambda v: v is True),
    },
    "eventFilters": {
        "includeUserIds": _str_list(), "excludeUserIds": _str_list(),
        "includeTypes": _str_list(), "excludeTypes": _str_list(),
        "includeSubTypes": _str_list(), "excludeSubTypes": _str_list(),
        "includeDataSources": _str_list(), "excludeDataSources": _str_list(),
        "includeText": _str_list(), "excludeText": _str_list(),
        "requireHrData": _bool(False), "requireO2SatData": _bool(False), "require3dData": _bool(False),
    },
    "osdbConfig": {
        "cacheDir": Key(".", "a directory path", lambda v: isinstance(v, str)),
        "osdbFiles": _str_list(),
    },
    "dataFileNames": {},
}
MAX_SEED = 2**32 - 1  # numpy, torch and TensorFlow all accept seeds up to here
TOP_LEVEL: dict[str, Key] = {"randomSeed": _key(42, _num(0, MAX_SEED, integer=True))}


def _is_comment(name: str) -> bool:
    """Reference configs annotate themselves with `_comment...`, `_key` and `..._desc` entries."""
    return name.startswith("_") or name.endswith("_desc")


@dataclass
class Config:
    """A validated, defaults-filled config. ``sections`` mirrors the reference JSON layout."""

    sections: dict[str, Any]
    source: str = "<defaults>"
    ignored_keys: list[str] = field(default_factory=list)
    # The keys the config itself set ("modelConfig.nLayers", "randomSeed"), as opposed to defaults
    # filled in: a reference config that leaves a key out means the reference's default, so training
    # names the keys whose deepepi default differs (deepepi.train.reference_notes). to_dict() holds
    # every key, so a config rebuilt from it counts all of them as set.
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def model(self) -> dict[str, Any]:
        return self.sections["modelConfig"]

    @property
    def processing(self) -> dict[str, Any]:
        return self.sections["dataProcessing"]

    @property
    def filters(self) -> dict[str, Any]:
        return self.sections["eventFilters"]

    @property
    def framework(self) -> str:
        return self.model["framework"]

    @property
    def seed(self) -> int:
        return int(self.sections["randomSeed"])

    @property
    def window(self) -> int:
        """Model input length in samples: sampleFreq x bufferSeconds."""
        return int(self.model["sampleFreq"]) * int(self.model["bufferSeconds"])

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.sections)

    def with_overrides(self, **model_keys: Any) -> "Config":
        """Return a copy with modelConfig keys replaced (CLI flags such as --epochs), re-validated."""
        raw = self.to_dict()
        set_now = {k: v for k, v in model_keys.items() if v is not None}
        raw["modelConfig"].update(set_now)
        out = from_dict(raw, source=self.source, warn=False)
        out.given = self.given | {f"modelConfig.{k}" for k in set_now}
        return out


def _detect_framework(model: dict[str, Any], source: str) -> tuple[str, list[tuple[str, str]]]:
    """Order: modelConfig.framework, then legacy modelConfig.modelType, then 'tensorflow'."""
    notes: list[tuple[str, str]] = []
    chosen = None
    for name in ("framework", "modelType"):
        value = model.get(name)
        if value is None:
            continue
        resolved = _FRAMEWORK_ALIASES.get(str(value).lower()) if isinstance(value, str) else None
        if resolved is None:
            raise ConfigError(f"modelConfig.{name}: unknown framework {value!r}; expected one of "
                              f"'tensorflow', 'pytorch'", source=source)
        if chosen is None:
            chosen = resolved
        elif resolved != chosen:
            notes.append(("framework", f"modelConfig.modelType={value!r} disagrees with modelConfig.framework; "
                                       f"using framework={chosen!r}"))
    return chosen or "tensorflow", notes


def _validate_section(name: str, given: Any, schema: dict[str, Key], source: str,
                      ignored: list[str]) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise ConfigError(f"{name}: expected a JSON object, got {type(given).__name__}", source=source)
    out = {k: copy.deepcopy(key.default) for k, key in schema.items()}
    for k, v in given.items():
        if _is_comment(k):
            continue
        key = schema.get(k)
        if key is None:
            ignored.append(f"{name}.{k}")
            continue
        if not key.check(v):
            raise ConfigError(f"{name}.{k}: got {json.dumps(v)}, expected {key.expected}", source=source)
        out[k] = v
    return out


def from_dict(raw: Any, *, source: str = "<dict>", warn: Warn = True) -> Config:
    """Validate a parsed config; fill defaults; warn once about the keys that are not acted on.
    ``warn``: True (every warning), False (none) or the WARNING_KINDS the caller acts on."""
    kinds = _warned_kinds(warn)
    if not isinstance(raw, dict):
        raise ConfigError("top level must be a JSON object", source=source)
    ignored: list[str] = []
    sections: dict[str, Any] = {}
    for name in SECTIONS:
        sections[name] = _validate_section(name, raw.get(name, {}), SCHEMA[name], source, ignored)
    for k, v in raw.items():
        if k in SECTIONS or _is_comment(k):
            continue
        key = TOP_LEVEL.get(k)
        if key is None:
            ignored.append(k)
        elif not key.check(v):
            raise ConfigError(f"{k}: got {json.dumps(v)}, expected {key.expected}", source=source)
    sections["randomSeed"] = int(raw.get("randomSeed", TOP_LEVEL["randomSeed"].default))

    given = frozenset(k for k in raw if not _is_comment(k) and k not in SECTIONS) | frozenset(
        f"{name}.{k}" for name in SECTIONS if isinstance(raw.get(name), dict)
        for k in raw[name] if not _is_comment(k))
    cfg = Config(sections=sections, source=source, ignored_keys=ignored, given=given)
    model, proc = cfg.model, cfg.processing
    framework, notes = _detect_framework(model, source)
    model["framework"] = framework
    model["modelType"] = framework
    window = cfg.window
    if proc["window"] is not None and proc["window"] != window:
        notes.append(("window", f"dataProcessing.window={proc['window']} is not used: the DeepEpi input is "
                                f"modelConfig.sampleFreq x bufferSeconds = {window} samples"))
    proc["window"] = window
    if proc["fold"] >= proc["nFolds"]:
        raise ConfigError(f"dataProcessing.fold: got {proc['fold']}, expected an integer < nFolds "
                          f"({proc['nFolds']})", source=source)
    if proc["alarmTime"] < proc["warnTime"]:
        raise ConfigError(f"dataProcessing.alarmTime: got {json.dumps(proc['alarmTime'])}, expected a number >= "
                          f"dataProcessing.warnTime ({json.dumps(proc['warnTime'])})", source=source)
    if not 0.0 < proc["validationProp"] < 1.0:
        notes.append(("validation", f"dataProcessing.validationProp={proc['validationProp']}: validating on "
                                    f"{DEFAULT_VALIDATION_PROP} of the training events instead (the test split "
                                    "is never used for validation)"))
        proc["validationProp"] = DEFAULT_VALIDATION_PROP
    if proc["oversample"] == "smote":
        notes.append(("oversample", "dataProcessing.oversample='smote' duplicates whole events like 'random' (as "
                                    "the reference does: SMOTE cannot interpolate events)"))
    if "keys" in kinds and ignored:
        warnings.warn(f"{source}: ignoring {len(ignored)} unsupported config key(s): "
                      + ", ".join(ignored), UnsupportedKeysWarning, stacklevel=2)
    for kind, note in notes:
        if kind in kinds:
            warnings.warn(f"{source}: {note}", UnsupportedKeysWarning, stacklevel=2)
    return cfg


def load_config(path: str | Path | None = None, *, warn: Warn = True) -> Config:
    """Load a JSON config; ``None`` means configs/nnConfig_deep.json, or built-in defaults without it.
    ``warn`` as in from_dict: a command passes the warning kinds that concern what it reads."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return from_dict({}, source="<defaults>", warn=warn)
        path = DEFAULT_CONFIG
    path = Path(path)
    text = read_text(path, "config", ConfigError)
    raw = jsonlimits.loads(text, CONFIG_MAX_DEPTH, ConfigError, source=str(path), what="config")
    return from_dict(raw, source=str(path), warn=warn)
