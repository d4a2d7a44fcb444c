"""One model, one data set, one Decision, four routes, the same event figures: train's metrics.json,
`evaluate` (the ONNX file and the run directory), a `predict --stream` replay and the float side of
`verify --mode quantized`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from onnx_helpers import SEPARABLE_MIX, cli, learning_smoke

pytestmark = [pytest.mark.torch]

KEYS = ("seizure_events", "detected", "non_seizure_events", "events_with_false_alarm", "false_alarms")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 4-epoch tiny PyTorch run with validateDatapoints on, its ONNX export and its test events as a CSV."""
    import torch

    from deepepi.core.config import from_dict
    from deepepi.data.synth import synthesize
    from deepepi.export.onnx_file import export_run
    from deepepi.train.run import train

    root = tmp_path_factory.mktemp("routes")
    csv = synthesize(root / "data", users=2, events=30, seed=5, mix=SEPARABLE_MIX).csv_path
    raw = learning_smoke(epochs=4).to_dict()
    raw["dataProcessing"].update(validateDatapoints=True, validationProp=0.25, accSdThreshold=2.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(from_dict(raw, source="routes", warn=False), data=csv, framework="pytorch", out=root / "run",
              quiet=True)
    finally:
        torch.set_num_threads(threads)
    onnx_path = export_run(root / "run").path
    test_ids = json.loads((root / "run" / "metrics.json").read_text())["test_events"]
    frame = pd.read_csv(csv)
    test_csv = root / "test.csv"
    frame[frame["eventId"].isin(test_ids)].to_csv(test_csv, index=False)
    return root / "run", onnx_path, test_csv


def _stream_figures(rows: pd.DataFrame, threshold: float) -> dict[str, dict[str, int]]:
    """Event figures from a replay's rows: app = ALARM states, raw = ungated p > threshold; false alarms
    are alarm episodes (scoring.events.episode_starts over the rows' dataTime, as every command counts)."""
    from deepepi.scoring.events import episode_starts

    out = {}
    for logic, alarm in (("app", rows["alarm"] == 1),
                         ("raw", (rows["p_seizure"] > threshold) & (rows["buffer_full"] == 1))):
        start = episode_starts(alarm.to_numpy(), rows["eventId"].to_numpy(), rows["dataTime"].to_numpy())
        per = rows.assign(s=start).groupby("eventId").agg(label=("label", "first"), s=("s", "sum"))
        seizure = per["label"] == 1
        out[logic] = {"seizure_events": int(seizure.sum()), "detected": int((per["s"][seizure] > 0).sum()),
                      "non_seizure_events": int((~seizure).sum()),
                      "events_with_false_alarm": int((per["s"][~seizure] > 0).sum()),
                      "false_alarms": int(per["s"][~seizure].sum())}
    return out


def test_four_routes_give_the_same_event_figures(trained, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from deepepi.evaluate.runner import Options, evaluate
    from deepepi.verify.runner import verify

    run, onnx_path, test_csv = trained
    test = json.loads((run / "metrics.json").read_text())["test"]
    decision = test["decision"]
    assert decision["acc_sd_threshold_pct"] == 2.0 and decision["sources"]["acc_sd_threshold"] == "the run's config.json"
    assert decision["threshold"] == json.loads((run / "threshold.json").read_text())["decision_threshold"]
    want = {logic: {k: test["alarm_events"][logic][k] for k in KEYS} for logic in ("raw", "app")}
    assert want["app"]["seizure_events"] > 0 and want["app"]["non_seizure_events"] > 0
    assert want["raw"]["detected"] > 0 and want["app"]["detected"] > 0  # the figures measure something

    opts = Options(resamples=5)
    for model in (onnx_path, run):  # the ONNX file (its metadata carries the Decision) and the run directory
        m = evaluate([model], [test_csv], options=opts).results["models"][0]
        assert {k: v for k, v in m["decision"].items() if k != "sources"} == \
            {k: v for k, v in decision.items() if k != "sources"}, model
        for logic in ("raw", "app"):
            got = m["logic"][logic]["event"]
            assert {k: got[k] for k in KEYS} == want[logic], (model, logic)
            assert got["fp_per_24h"] == pytest.approx(test["alarm_events"][logic]["fp_per_24h"])
            assert got["latency_s"]["median"] == pytest.approx(test["alarm_events"][logic]["latency_s"]["median"],
                                                               nan_ok=True)

    out = tmp_path / "stream.csv"
    code, text, err = cli(capsys, "predict", onnx_path, "--data", test_csv, "--stream", "-o", out)
    assert code == 0, err
    assert f"decision: threshold {decision['threshold']:g} (model metadata" in text
    assert _stream_figures(pd.read_csv(out), decision["threshold"]) == want

    report = verify(onnx_path, onnx_path, data=test_csv, config=run / "config.json", mode="quantized")
    float_side = next(c for c in report.checks if c.name == "quantised accuracy drop").figures["a"]
    assert float_side["decision"]["threshold"] == decision["threshold"]
    for logic in ("raw", "app"):
        assert {k: float_side["event"][logic][k] for k in KEYS} == want[logic], logic
    assert float_side["window"]["tp"] == test["window"]["tp"] and float_side["window"]["fp"] == test["window"]["fp"]
    assert report.passed  # a file against itself, firing on both classes: the gate passes
