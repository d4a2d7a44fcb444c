"""The validation-chosen decision threshold: the rule on hand-made windows, and train -> export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deepepi.data.windows import Windows
from deepepi.train.threshold import choose_threshold


def windows(event_id: list[int], y: list[int]) -> Windows:
    n = len(y)
    t = np.zeros(n)
    for e in set(event_id):  # 5 s apart within each event
        idx = [i for i, v in enumerate(event_id) if v == e]
        t[idx] = 1000.0 * e + 5.0 * np.arange(len(idx))
    return Windows(X=np.zeros((n, 1), np.float32), y=np.array(y), event_id=np.array(event_id),
                   user_id=np.ones(n, np.int64), end_time=t)


def test_highest_threshold_keeping_max_sensitivity() -> None:
    # seizure events 1 (max p .95) and 2 (max p .70); non-seizure event 3 (max p .60)
    w = windows([1, 1, 2, 2, 3, 3, 3], [1, 1, 1, 1, 0, 0, 0])
    p = np.array([.2, .95, .7, .1, .6, .1, .55])
    rec = choose_threshold(p, w, 5.0)
    assert rec["decision_threshold"] == 0.69  # 0.70 would lose event 2 (p > t is strict)
    assert rec["event_sensitivity"] == 1.0 and rec["false_alarm_ratio"] == 0.0 and rec["fp_per_24h"] == 0.0
    assert (rec["validation_events"], rec["validation_seizure_events"]) == (3, 2)


def test_no_seizure_in_validation() -> None:
    rec = choose_threshold(np.array([.3, .4]), windows([5, 5], [0, 0]), 5.0)
    assert rec["decision_threshold"] == 0.5 and rec["rule"].startswith("default 0.5")


@pytest.mark.torch
@pytest.mark.slow
def test_training_records_threshold_and_export_writes_it(tmp_path: Path) -> None:
    import onnx
    import torch

    from converters.contract import THRESHOLD_KEY, read_metadata
    from deepepi.core.config import REPO_CONFIGS, load_config
    from deepepi.data.synth import synthesize
    from deepepi.export.onnx_file import export_run
    from deepepi.runs.layout import read_json, read_threshold
    from deepepi.train.run import train

    csv = synthesize(tmp_path / "data", users=3, events=40, seed=0).csv_path
    torch.set_num_threads(1)
    run = train(load_config(REPO_CONFIGS / "smoke.json"), data=csv, framework="pytorch", out=tmp_path / "run",
                epochs=1, quiet=True).run_dir
    rec = read_json(run / "threshold.json")
    assert 0.0 <= rec["decision_threshold"] <= 1.0 and rec["validation_source"]
    assert rec["decision_threshold"] == read_threshold(run)
    meta = read_metadata(onnx.load(export_run(run).path))
    assert float(meta[THRESHOLD_KEY]) == rec["decision_threshold"]
