"""The Decision's last gaps: WarnTime/AlarmTime set by config, flag and model metadata; validateDatapoints
travelling with the model file; training's threshold chosen on windows segmented as evaluate segments them."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from converters.app_meta import TFLITE, build, runtime_metadata
from converters.check import finish_onnx
from converters.contract import ALARM_KEY, VALIDATE_KEY, WARN_KEY, metadata
from deepepi.core.config import from_dict, load_config
from deepepi.core.errors import ConfigError, ModelError
from deepepi.data.csvio import load_csv
from deepepi.data.windows import GAP_SECONDS, Windows, gap_from_config, windows_from_config
from deepepi.evaluate.data import load
from deepepi.runtimes.windowing import windowing
from deepepi.runtimes import open_model
from deepepi.runtimes.base import decision_layer, run_layers
from deepepi.scoring.decision import DEFAULT_SOURCE, cli_layer, config_layer, resolve
from deepepi.scoring.evaldata import from_windows
from onnx_helpers import EXPORTER, SEPARABLE_MIX, SMOKE, cli, info, reference, refused, tiny_model, tiny_weights

SHIFTED_EVENT_GAP_S = 4.0  # one event's later half moved 4 s: a 9 s step, no zero datapoint fills it


# ----- 1. WarnTime / AlarmTime ---------------------------------------------------------------------------
def test_config_keys_default_to_the_app_and_refuse_bad_values_in_one_line() -> None:
    cfg = from_dict({}, warn=False)
    assert (cfg.processing["warnTime"], cfg.processing["alarmTime"]) == (5.0, 10.0)
    cfg = from_dict({"dataProcessing": {"warnTime": 0, "alarmTime": 2.5}}, warn=False)
    assert (cfg.processing["warnTime"], cfg.processing["alarmTime"]) == (0, 2.5)
    for processing, needle in (({"warnTime": -1}, "dataProcessing.warnTime: got -1, expected a finite number >= 0"),
                               ({"alarmTime": "10"}, 'dataProcessing.alarmTime: got "10"'),
                               ({"alarmTime": 4}, "dataProcessing.alarmTime: got 4, expected a number >= "
                                                  "dataProcessing.warnTime (5.0)")):
        with pytest.raises(ConfigError) as err:
            from_dict({"dataProcessing": processing}, source="bad.json", warn=False)
        assert str(err.value).startswith("bad.json: ") and needle in str(err.value), str(err.value)
        assert "\n" not in str(err.value)


def test_warn_and_alarm_time_follow_the_precedence() -> None:
    cfg = config_layer({"accSdThreshold": 3.0, "warnTime": 0.0, "alarmTime": 5.0}, "c.json")
    d = resolve(cli_layer(warn_time=None, alarm_time=None), decision_layer({}, "m.onnx"), cfg)
    assert (d.warn_time, d.alarm_time) == (0.0, 5.0)
    assert d.sources["warn_time"] == d.sources["alarm_time"] == "config c.json"
    meta = decision_layer({WARN_KEY: "2.5", ALARM_KEY: "7.5"}, "m.onnx")
    d = resolve(cli_layer(warn_time=None, alarm_time=20.0), meta, cfg)
    assert (d.warn_time, d.alarm_time) == (2.5, 20.0)
    assert (d.sources["warn_time"], d.sources["alarm_time"]) == ("model metadata m.onnx", "CLI flag")
    assert "WarnTime 2.5 s (model metadata m.onnx), AlarmTime 20 s (CLI flag)" in d.describe()
    d = resolve(cli_layer(), decision_layer({}, "m.onnx"), None)
    assert (d.warn_time, d.alarm_time, d.sources["alarm_time"]) == (5.0, 10.0, DEFAULT_SOURCE)
    # the app logic acts on them: with AlarmTime 0 the first positive datapoint (counter 5 s) is an ALARM
    assert int(d.params.state_for(5.0)) == 0 and int(replace(d, alarm_time=0.0).params.state_for(5.0)) == 2
    with pytest.raises(ModelError, match=r"model metadata m.onnx: WarnTime \(s\): got 'soon'"):
        resolve(decision_layer({WARN_KEY: "soon"}, "m.onnx"), error=ModelError)


def test_the_model_files_carry_the_times_and_the_window_rule() -> None:
    cfg = from_dict({"dataProcessing": {"warnTime": 2.0, "alarmTime": 4.0, "validateDatapoints": True}},
                    source="run.json", warn=False)
    base = info(64)
    src = replace(base.source, warn_time_s=2.0, alarm_time_s=4.0, validate_datapoints=True)
    meta = metadata(replace(base, source=src), EXPORTER)
    assert (meta[WARN_KEY], meta[ALARM_KEY], meta[VALIDATE_KEY]) == ("2.0", "4.0", "true")
    side = runtime_metadata(json.loads(json.dumps(build(TFLITE, meta, window=64, acc_sd_threshold_pct=1.0))))
    for recorded in (meta, side):  # ONNX metadata_props and the app sidecar, read back as the runtimes do
        d = resolve(decision_layer(recorded, "m"))
        assert (d.warn_time, d.alarm_time) == (2.0, 4.0)
        assert d.sources["warn_time"] == d.sources["alarm_time"] == "model metadata m"
        assert recorded[VALIDATE_KEY] == "true"
    # a run directory: its config is the run-config layer
    d = resolve(*run_layers(Path("/nonexistent-run"), cfg))
    assert (d.warn_time, d.alarm_time, d.sources["alarm_time"]) == (2.0, 4.0, "the run's config.json")


# ----- data: a CSV with gaps (zero-filled under validateDatapoints) and one 9 s step inside a seizure ----
@pytest.fixture(scope="module")
def gapped(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from deepepi.data.synth import synthesize

    root = tmp_path_factory.mktemp("gapped")
    df = pd.read_csv(synthesize(root, users=1, events=6, seed=11, mix=SEPARABLE_MIX).csv_path)
    rng = np.random.default_rng(2)
    df = df.drop(df.index[rng.choice(len(df), size=len(df) // 12, replace=False)])  # 10 s+ gaps: zero-filled
    seizure = int(df.loc[df["type"] == 1, "eventId"].iloc[0])
    rows = df.index[df["eventId"] == seizure]
    later = rows[len(rows) // 2:]
    moved = pd.to_datetime(df.loc[later, "dataTime"]) + pd.Timedelta(seconds=SHIFTED_EVENT_GAP_S)
    df.loc[later, "dataTime"] = moved.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    csv = root / "gapped.csv"
    df.to_csv(csv, index=False)
    raw = json.loads(Path(SMOKE).read_text())
    raw["dataProcessing"].update(validateDatapoints=True, accSdThreshold=0.0)
    config = root / "config.json"
    config.write_text(json.dumps(raw))
    cfg = load_config(config, warn=False)
    w = tiny_weights(cfg.window, seed=4)
    onnx_path = root / "run" / "m.onnx"
    onnx_path.parent.mkdir()
    base = info(cfg.window)
    source = replace(base.source, validate_datapoints=True, warn_time_s=0.0, alarm_time_s=5.0)
    finish_onnx(tiny_model(*w), onnx_path, replace(base, source=source), EXPORTER, reference(*w))
    return {"csv": csv, "config": config, "cfg": cfg, "onnx": onnx_path, "seizure": seizure}


def test_a_bare_onnx_file_cuts_windows_as_its_run_did(gapped: dict, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    bare = tmp_path / "elsewhere" / "model.onnx"
    bare.parent.mkdir()
    shutil.copy(gapped["onnx"], bare)
    npz = tmp_path / "w.npz"
    assert cli(capsys, "data", "windows", gapped["csv"], "-o", npz, "--raw", "--config", gapped["config"])[0] == 0
    ref = Windows.load_npz(npz)
    assert len(windows_from_config(load_csv(gapped["csv"]), from_dict({}, warn=False), raw=True)) != len(ref)
    win = windowing([open_model(bare)], None)
    assert win.cfg.processing["validateDatapoints"] is True and not win.from_file
    assert "metadata" in win.source and "validateDatapoints true" in win.source
    data = load([gapped["csv"]], win.cfg)
    np.testing.assert_array_equal(data.X, ref.X)
    np.testing.assert_array_equal(data.end_time, ref.end_time)
    # the command line: the source is printed, and the metadata's WarnTime/AlarmTime lead over the defaults
    code, out, _ = cli(capsys, "evaluate", bare, "--data", gapped["csv"], "-o", tmp_path / "ev", "--bootstrap", "5")
    assert code == 0, out
    assert f"data: {len(ref)} windows" in out and "validateDatapoints true" in out
    assert f"WarnTime 0 s (model metadata {bare})" in out and "AlarmTime 5 s (model metadata" in out
    # --config still wins over the metadata (and says so)
    off = tmp_path / "off.json"
    off.write_text(json.dumps({**json.loads(gapped["config"].read_text()),
                               "dataProcessing": {"validateDatapoints": False, "step": 125}}))
    assert windowing([open_model(bare)], off).cfg.processing["validateDatapoints"] is False


def test_predict_takes_the_flags_and_states_the_windowing(gapped: dict, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    out_csv = tmp_path / "p.csv"
    code, out, _ = cli(capsys, "predict", gapped["onnx"], "--data", gapped["csv"], "-o", out_csv,
                       "--warn-time", "10", "--alarm-time", "15", "--threshold", "0", "--acc-sd-threshold", "0")
    assert code == 0, out
    assert "WarnTime 10 s (CLI flag), AlarmTime 15 s (CLI flag)" in out
    assert "windows cut as in" in out and "validateDatapoints true" in out
    states = pd.read_csv(out_csv).groupby("eventId")["state"]
    # threshold 0, no gate: every datapoint is positive; ALARM needs more than 15 s of positives: the 4th
    first_alarm = states.apply(lambda s: int(np.argmax(s.to_numpy() == "ALARM")) if (s == "ALARM").any() else -1)
    assert (first_alarm == 3).all(), first_alarm
    streamed = tmp_path / "s.csv"  # --stream takes the same flags: the same states once the buffer is full
    code, out, _ = cli(capsys, "predict", gapped["onnx"], "--data", gapped["csv"], "-o", streamed, "--stream",
                       "--warn-time", "10", "--alarm-time", "15", "--threshold", "0", "--acc-sd-threshold", "0")
    assert code == 0 and "WarnTime 10 s (CLI flag), AlarmTime 15 s (CLI flag)" in out
    rows = pd.read_csv(streamed)
    assert rows.loc[rows["buffer_full"] == 1, "state"].tolist() == pd.read_csv(out_csv)["state"].tolist()
    line = refused(capsys, "predict", gapped["onnx"], "--data", gapped["csv"], "-o", tmp_path / "q.csv",
                   "--warn-time", "20", "--alarm-time", "15")
    assert "AlarmTime 15 s is below WarnTime 20 s" in line


def test_a_bad_recorded_window_rule_is_one_line(gapped: dict, tmp_path: Path) -> None:
    import onnx

    model = onnx.load(gapped["onnx"])
    for prop in model.metadata_props:
        if prop.key == VALIDATE_KEY:
            prop.value = "yes"
    path = tmp_path / "odd.onnx"
    onnx.save(model, path)
    with pytest.raises(ModelError, match="validate_datapoints: got 'yes', expected 'true' or 'false'"):
        windowing([open_model(path)], None)


# ----- 3. training's threshold: validation windows segmented as evaluate segments them --------------------
def test_threshold_validation_is_segmented_as_evaluate(gapped: dict, tmp_path: Path) -> None:
    from deepepi.train.threshold import record, validation_data

    cfg = gapped["cfg"]
    windows = windows_from_config(load_csv(gapped["csv"]), cfg, raw=True)
    hop = int(cfg.processing["step"]) / cfg.model["sampleFreq"]
    evaluated = load([gapped["csv"]], cfg)
    ours = validation_data(windows, hop, gap_seconds=gap_from_config(cfg))
    np.testing.assert_array_equal(ours.segment, evaluated.segment)
    fixed = from_windows(windows, hop, gap_seconds=GAP_SECONDS)  # the old rule splits at the 9 s step
    assert len(np.unique(fixed.segment)) > len(np.unique(evaluated.segment))

    # p high on the two windows before the 9 s step and the one after: an ALARM (3rd positive in a row)
    # only when they are one segment, as evaluate sees them
    mine = np.flatnonzero(windows.event_id == gapped["seizure"])
    step = mine[np.argmax(np.diff(windows.end_time[mine]) > 7.5)]
    p = np.full(len(windows), 0.1)
    p[[step - 1, step, step + 1]] = 0.9
    rec = record(tmp_path, p, windows, hop, "test", cfg=cfg)
    seizures = int(len(np.unique(windows.event_id[windows.y == 1])))
    assert rec["event_sensitivity"] == pytest.approx(1 / seizures) and rec["rule_kind"] == "alarm budget"
    assert (rec["alarm_logic"]["warn_time_s"], rec["alarm_logic"]["alarm_time_s"]) == (5.0, 10.0)
    # the config's AlarmTime is the training rule's too: at 15 s three positives no longer alarm
    later = from_dict({**cfg.to_dict(), "dataProcessing": {**cfg.processing, "alarmTime": 15.0}}, warn=False)
    rec = record(tmp_path, p, windows, hop, "test", cfg=later)
    assert rec["alarm_logic"]["alarm_time_s"] == 15.0 and not rec["event_sensitivity"]
