"""A run trained with validateDatapoints, exported, and its ONNX file copied away from the run: evaluate on
the bare file cuts the windows `data windows --config` cuts, and takes the run's WarnTime/AlarmTime from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from onnx_helpers import SEPARABLE_MIX, SMOKE, cli

pytestmark = [pytest.mark.torch]


def test_bare_onnx_of_a_validate_datapoints_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import onnx
    import torch

    from converters.contract import ALARM_KEY, VALIDATE_KEY, WARN_KEY, read_metadata
    from deepepi.core.config import from_dict
    from deepepi.data.synth import synthesize
    from deepepi.data.windows import Windows
    from deepepi.evaluate.data import load
    from deepepi.runtimes.windowing import windowing
    from deepepi.export.onnx_file import export_run
    from deepepi.runtimes import open_model
    from deepepi.train.run import train

    df = pd.read_csv(synthesize(tmp_path / "data", users=2, events=10, seed=7, mix=SEPARABLE_MIX).csv_path)
    rng = np.random.default_rng(1)
    csv = tmp_path / "gapped.csv"
    df.drop(df.index[rng.choice(len(df), size=len(df) // 15, replace=False)]).to_csv(csv, index=False)
    raw = json.loads(Path(SMOKE).read_text())
    raw["modelConfig"].update(epochs=1, framework="pytorch", modelType="pytorch")
    raw["dataProcessing"].update(validateDatapoints=True, warnTime=0.0, alarmTime=5.0)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(raw))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(from_dict(raw, source=str(config), warn=False), data=csv, framework="pytorch", out=tmp_path / "run",
              quiet=True)
    finally:
        torch.set_num_threads(threads)
    bare = tmp_path / "elsewhere" / "model.onnx"
    bare.parent.mkdir()
    shutil.copy(export_run(tmp_path / "run").path, bare)
    meta = read_metadata(onnx.load(bare))
    assert (meta[VALIDATE_KEY], meta[WARN_KEY], meta[ALARM_KEY]) == ("true", "0.0", "5.0")

    npz = tmp_path / "w.npz"
    assert cli(capsys, "data", "windows", csv, "-o", npz, "--raw", "--config", config)[0] == 0
    ref = Windows.load_npz(npz)
    data = load([csv], windowing([open_model(bare)], None).cfg)
    np.testing.assert_array_equal(data.X, ref.X)
    np.testing.assert_array_equal(data.end_time, ref.end_time)
    code, out, _ = cli(capsys, "evaluate", bare, "--data", csv, "-o", tmp_path / "ev", "--bootstrap", "5")
    assert code == 0, out
    assert f"data: {len(ref)} windows" in out and "validateDatapoints true" in out
    assert f"WarnTime 0 s (model metadata {bare}), AlarmTime 5 s (model metadata {bare})" in out
    # verify without --config cuts the same windows from the file's metadata (was: the default config)
    from deepepi.verify.runner import verify

    report = verify(bare, bare, data=csv)  # same-weights: one file against itself passes
    assert report.inputs["n"] == len(ref) and "validateDatapoints true" in report.inputs["config"]
    assert report.passed
