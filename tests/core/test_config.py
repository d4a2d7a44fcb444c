"""Config loading: reference files load unchanged, defaults fill in, bad keys fail with the key path."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from deepepi.core.config import REPO_CONFIGS, UnsupportedKeysWarning, from_dict, load_config
from deepepi.core.errors import ConfigError

REFERENCE = next((p / "shared" / "reference" / "osd-configs" for p in Path(__file__).resolve().parents
                  if (p / "shared" / "reference" / "osd-configs").is_dir()), Path("/nonexistent"))


def _reference_like_tf() -> dict:
    """A fixture in the shape of the reference TensorFlow config (keys we ignore included)."""
    return {
        "debug": False,
        "randomSeed": 42,
        "osdbConfig": {"_cacheDir": ".", "osdbFiles_desc": "x", "osdbFiles": ["a.json"]},
        "dataFileNames": {"allDataFileCsv": "allData.csv"},
        "eventFilters": {"excludeSubTypes": ["Unknown"], "require3dData": True},
        "dataProcessing": {"window": 750, "step": 125, "undersample": "random", "noiseAugmentation": False,
                           "stream_chunksize": 20000, "testProp": 0.3, "validationProp": 0.0},
        "modelConfig": {"framework": "tensorflow", "modelType": "tensorflow",
                        "modelClass": "user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel",
                        "modelFname": "deepEpiCnnModel", "sampleFreq": 25, "bufferSeconds": 30,
                        "epochs": 1, "batchSize": 64, "lrStart": 1e-5, "useLrSchedule": False},
    }


def _load_quiet(raw: dict) -> tuple:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = from_dict(raw, source="test.json")
    return cfg, [str(w.message) for w in caught]


def test_reference_shaped_config_loads_and_lists_ignored_keys_once() -> None:
    cfg, messages = _load_quiet(_reference_like_tf())
    assert cfg.framework == "tensorflow"
    assert cfg.window == 750
    assert cfg.model["epochs"] == 1 and cfg.model["lrStart"] == 1e-5
    ignored = [m for m in messages if "unsupported config key" in m]
    assert len(ignored) == 1
    for path in ("debug", "dataFileNames.allDataFileCsv", "dataProcessing.stream_chunksize"):
        assert path in ignored[0]
    assert "osdbConfig._cacheDir" not in ignored[0] and "osdbFiles_desc" not in ignored[0]
    assert set(cfg.ignored_keys) == {"debug", "dataFileNames.allDataFileCsv", "dataProcessing.stream_chunksize"}


# Every modelConfig / dataProcessing key of the reference's nnConfig_deep_pytorch.json, with its value.
REFERENCE_TORCH_KEYS = {
    "dataProcessing": {
        "addFeatureHistoryLength": 0, "window": 125, "step": 125, "oversample": "none", "undersample": "none",
        "worker_count": None, "batch_size": 1000, "stream_chunksize": 20000, "stream_low_memory": False,
        "stream_dtype_map": None, "noiseAugmentation": True, "noiseAugmentationFactor": 10,
        "noiseAugmentationValue": 30.0, "phaseAugmentation": False, "phaseAugmentationStep": 5,
        "userAugmentation": False, "splitTestTrainByEvent": True, "accSdThreshold": 5.0, "testProp": 0.2,
        "validationProp": 1.0, "features": ["acc_magnitude"], "simpleMagnitudeOnly": True,
        "validateDatapoints": True, "highPassFreq": None, "highPassOrder": 2},
    "modelConfig": {
        "framework": "pytorch", "modelFname": "deepEpiCnnModel_pytorch",
        "modelClass": "user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch", "sampleFreq": 25,
        "bufferSeconds": 30, "epochs": 100, "batchSize": 512, "nLayers": 14, "convDropout": 0.025,
        "denseDropout": 0.25, "lrFactor": 0.1, "lrPatience": 5, "lrStart": 1e-6, "lrMin": 1e-7,
        "earlyStoppingPatience": 6, "trainingVerbosity": 1, "dims": 1, "useLrSchedule": True, "useAdamW": True,
        "adamwBeta1": 0.9, "adamwBeta2": 0.999, "weightDecay": 0.0001, "lrPeak": 0.0001, "lrMainEnd": 0.00003,
        "warmupSteps": 2500, "mainSteps": 95000, "cooldownSteps": 2500, "totalTrainingSteps": 100000,
        "evalEverySteps": 5000, "saveBestOnBothImprovement": True, "saveBestOnFarReduction": 0.05,
        "saveBestOnSensitivityTolerance": 0.2, "saveBestMinSensitivity": 0.42, "saveBestMaxFpr": 0.045,
        "modelSelectionMetric": "min_fpr", "fBeta": 2.0, "useBalancedBatches": True},
}
# What may still be ignored: keys that cannot change the trained model (raw-only DeepEpi input has no
# feature history; streaming knobs of the reference's CSV reader; file names; the debug switch).
NOT_TRAINING = {"dataProcessing.addFeatureHistoryLength", "dataProcessing.worker_count", "dataProcessing.batch_size",
                "dataProcessing.stream_chunksize", "dataProcessing.stream_low_memory",
                "dataProcessing.stream_dtype_map"}


def test_reference_torch_config_acts_on_every_training_key() -> None:
    cfg, messages = _load_quiet({**REFERENCE_TORCH_KEYS, "debug": False,
                                 "dataFileNames": {"trainAugmentedFileCsv": "trainDataAugmented.csv"}})
    assert set(cfg.ignored_keys) == NOT_TRAINING | {"debug", "dataFileNames.trainAugmentedFileCsv"}
    ignored = next(m for m in messages if "unsupported config key" in m)
    for word in ("ugmentation", "saveBest", "fBeta", "Selection", "Steps", "Balanced", "accSd", "validate",
                 "highPass", "oversample"):
        assert word not in ignored
    m, p = cfg.model, cfg.processing
    assert (m["modelSelectionMetric"], m["saveBestMaxFpr"], m["totalTrainingSteps"], m["evalEverySteps"],
            m["useBalancedBatches"]) == ("min_fpr", 0.045, 100000, 5000, True)
    assert (p["noiseAugmentationFactor"], p["phaseAugmentationStep"], p["validateDatapoints"]) == (10, 5, True)
    assert p["validationProp"] == 0.2  # 1.0 ("validate on test") is replaced, with a note
    assert any("test split is never used for validation" in msg for msg in messages)


@pytest.mark.parametrize("key,value", [("highPassFreq", 0.5), ("simpleMagnitudeOnly", False),
                                       ("phaseAugmentationStep", 125), ("noiseAugmentationFactor", -1),
                                       ("features", ["acc_x"]), ("oversample", "adasyn")])
def test_training_keys_reject_values_deepepi_cannot_honour(key: str, value: object) -> None:
    from deepepi.core.errors import ConfigError

    with pytest.raises(ConfigError, match=f"dataProcessing.{key}"):
        from_dict({"dataProcessing": {key: value}}, warn=False)


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference config files not present beside the checkout")
@pytest.mark.parametrize("name,framework", [("nnConfig_deep.json", "tensorflow"),
                                            ("nnConfig_deep_pytorch.json", "pytorch")])
def test_real_reference_files_load_unchanged(name: str, framework: str) -> None:
    with pytest.warns(UnsupportedKeysWarning):
        cfg = load_config(REFERENCE / name)
    assert cfg.framework == framework
    assert cfg.window == 750
    assert set(cfg.ignored_keys) <= NOT_TRAINING | {"debug"} | {k for k in cfg.ignored_keys
                                                               if k.startswith("dataFileNames.")}


@pytest.mark.parametrize("model,expected", [
    ({"framework": "pytorch"}, "pytorch"),
    ({"framework": "Torch", "modelType": "pytorch"}, "pytorch"),
    ({"modelType": "pytorch"}, "pytorch"),
    ({"modelType": "tensorflow"}, "tensorflow"),
    ({}, "tensorflow"),
])
def test_framework_detection_order(model: dict, expected: str) -> None:
    cfg, _ = _load_quiet({"modelConfig": model})
    assert cfg.framework == expected


def test_framework_wins_over_conflicting_model_type_with_warning() -> None:
    cfg, messages = _load_quiet({"modelConfig": {"framework": "pytorch", "modelType": "tensorflow"}})
    assert cfg.framework == "pytorch"
    assert any("disagrees" in m for m in messages)


@pytest.mark.parametrize("raw,path,expected", [
    ({"modelConfig": {"framework": "caffe"}}, "modelConfig.framework", "tensorflow"),
    ({"modelConfig": {"epochs": "ten"}}, "modelConfig.epochs", "an integer >= 1"),
    ({"modelConfig": {"batchSize": 0}}, "modelConfig.batchSize", "an integer >= 1"),
    ({"modelConfig": {"useAdamW": "yes"}}, "modelConfig.useAdamW", "true or false"),
    ({"dataProcessing": {"testProp": 1.5}}, "dataProcessing.testProp", "< 1"),
    ({"dataProcessing": {"oversample": "adasyn"}}, "dataProcessing.oversample", "'random'"),
    ({"eventFilters": {"excludeUserIds": "12"}}, "eventFilters.excludeUserIds", "a list"),
    ({"randomSeed": -1}, "randomSeed", ">= 0"),
    ({"modelConfig": []}, "modelConfig", "JSON object"),
])
def test_wrong_type_or_value_names_key_path(raw: dict, path: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(raw, source="bad.json")
    message = str(info.value)
    assert message.startswith("bad.json: " + path)
    assert expected in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_defaults_are_filled_and_round_trip() -> None:
    cfg, messages = _load_quiet({})
    assert messages == []
    assert cfg.model["batchSize"] == 64 and cfg.processing["step"] == 125
    again, _ = _load_quiet(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()


def test_overrides_are_validated() -> None:
    cfg, _ = _load_quiet({})
    assert cfg.with_overrides(epochs=3).model["epochs"] == 3
    with pytest.raises(ConfigError, match="modelConfig.epochs"):
        cfg.with_overrides(epochs=0)


@pytest.mark.parametrize("name,framework", [("nnConfig_deep.json", "tensorflow"),
                                            ("nnConfig_deep_pytorch.json", "pytorch"),
                                            ("smoke.json", "tensorflow")])
def test_shipped_configs_load_without_warnings(name: str, framework: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = load_config(REPO_CONFIGS / name)
    assert cfg.framework == framework


@pytest.mark.parametrize("name", ["nnConfig_deep.json", "nnConfig_deep_pytorch.json"])
def test_shipped_selection_cannot_pick_a_single_class_model(name: str) -> None:
    """The shipped configs select by alarm_rule. Its gate (a threshold within the false-alarm budget
    that detects a validation seizure) rules out the never-firing model, and the budget the
    always-firing one; the event Youden fallback scores both 0, below any model that separates at
    all, whatever their event AUC."""
    from deepepi.scoring.operating import training_threshold
    from deepepi.scoring.evaldata import from_windows
    from deepepi.data.windows import Windows
    from deepepi.train.selection import Selector

    sel = Selector.from_model_config(load_config(REPO_CONFIGS / name).model)
    assert sel.metric == "alarm_rule" and sel.needs_events and not sel.val_loss_rescue
    # the rule itself: a silent model meets no budget (no seizure detected), an always-firing one neither
    t = np.concatenate([1000.0 * e + 5.0 * np.arange(3) for e in (1, 2)])
    w = Windows(X=np.zeros((6, 1), np.float32), y=np.array([1, 1, 1, 0, 0, 0]), event_id=np.repeat([1, 2], 3),
                user_id=np.ones(6, np.int64), end_time=t)
    data = from_windows(w, 5.0, gap_seconds=7.5)
    for p in (np.zeros(6), np.ones(6)):
        rec = training_threshold(p, data, budget_per_24h=1.0, interval=False)
        assert rec["budget_met"] is False and rec["youden_j"] == 0.0
    silent = {"epoch": 1, "val_budget_met": False, "val_event_sensitivity": 0.0, "val_event_youden": 0.0,
              "val_event_auc": 1.0, "val_sensitivity": 0.0, "val_far": 0.0, "val_loss": 0.2}
    always = {"epoch": 2, "val_budget_met": False, "val_event_sensitivity": 1.0, "val_event_youden": 0.0,
              "val_event_auc": 1.0, "val_sensitivity": 1.0, "val_far": 1.0, "val_loss": 0.2}
    weak = {"epoch": 3, "val_budget_met": False, "val_event_sensitivity": 0.3, "val_event_youden": 0.1,
            "val_event_auc": 0.6, "val_sensitivity": 0.3, "val_far": 0.2, "val_loss": 0.9}
    assert not sel.gate(silent) and not sel.gate(always)
    for record in (silent, always, weak):
        sel.update(record)
    assert sel.best_epoch == 3


def test_missing_and_invalid_json_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"modelConfig\": ")
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON \(line 1"):
        load_config(bad)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="top level must be a JSON object"):
        load_config(bad)
