"""Evaluate and predict cut windows through training's own function (``windows_from_config``), with the
same config keys: on a CSV with invalid datapoints (gaps, overlaps) under ``validateDatapoints`` the
windows are identical across `deepepi data windows`, train's test split, evaluate and predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepepi.core.config import load_config
from deepepi.data.csvio import load_csv
from deepepi.data.dataset import prepare
from deepepi.data.windows import Windows, make_windows
from deepepi.evaluate.data import load
from deepepi.runtimes.windowing import windowing
from deepepi.evaluate.predict import predict_batch, predict_stream
from deepepi.runtimes import open_model
from deepepi.scoring.decision import Decision
from onnx_helpers import SEPARABLE_MIX, SMOKE, cli, tiny_weights, write_tiny


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small CSV with gaps (rows removed) and an overlapping duplicate, and a config with validateDatapoints."""
    from deepepi.data.synth import synthesize

    root = tmp_path_factory.mktemp("broken")
    df = pd.read_csv(synthesize(root, users=2, events=16, seed=3, mix=SEPARABLE_MIX).csv_path)
    rng = np.random.default_rng(0)
    drop = rng.choice(len(df), size=len(df) // 15, replace=False)  # gaps of 10 s and more
    dup = df.iloc[rng.choice(len(df), size=5, replace=False)].copy()  # overlaps: repeated datapoints
    bad = pd.concat([df.drop(df.index[drop]), dup]).sample(frac=1.0, random_state=1)
    csv = root / "broken.csv"
    bad.to_csv(csv, index=False)
    raw = json.loads(Path(SMOKE).read_text())
    raw["dataProcessing"].update(validateDatapoints=True, testProp=0.4, validationProp=0.25)
    config = root / "config.json"
    config.write_text(json.dumps(raw))
    return csv, config


def test_windows_identical_across_data_windows_train_evaluate_predict(broken, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    csv, config = broken
    cfg = load_config(config, warn=False)
    npz = tmp_path / "w.npz"
    assert cli(capsys, "data", "windows", csv, "-o", npz, "--raw", "--config", config)[0] == 0
    ref = Windows.load_npz(npz)
    # the invalid datapoints matter: without validateDatapoints the same CSV gives other windows
    assert len(make_windows(load_csv(csv), preprocessing=None)) != len(ref)

    # train's test split (raw milli-g, as the movement gate reads them)
    split = prepare(cfg, csv)
    mine = np.isin(ref.event_id, np.unique(split.test.event_id))
    np.testing.assert_array_equal(split.test_raw_X, ref.X[mine])
    np.testing.assert_array_equal(split.test.end_time, ref.end_time[mine])

    # evaluate (ONNX model, windowing from --config)
    model = write_tiny(tmp_path / "m.onnx", *tiny_weights(cfg.window, seed=4)).path
    runtime = open_model(model)
    win = windowing([runtime], config)
    data = load([csv], win.cfg)
    np.testing.assert_array_equal(data.X, ref.X)
    np.testing.assert_array_equal(data.y, ref.y)
    np.testing.assert_array_equal(data.end_time, ref.end_time)

    # predict, batch and streamed: one row per window, at the window's last datapoint
    decision = Decision(threshold=0.5, acc_sd_threshold=0.0)
    frame = load_csv(csv)
    batch = predict_batch(runtime, frame, decision, win.cfg)
    np.testing.assert_array_equal(batch["dataTime"].to_numpy(), ref.end_time)
    np.testing.assert_array_equal(batch["eventId"].to_numpy(), ref.event_id)
    np.testing.assert_allclose(batch["p_seizure"].to_numpy(), runtime.predict_proba(ref.X)[:, 1], atol=0)
    stream = predict_stream(runtime, frame, decision, win.cfg)
    full = stream[stream["buffer_full"] == 1]
    np.testing.assert_array_equal(full["dataTime"].to_numpy(), ref.end_time)
    np.testing.assert_allclose(full["p_seizure"].to_numpy(), batch["p_seizure"].to_numpy(), atol=1e-6)
    assert full["state"].tolist() == batch["state"].tolist()
