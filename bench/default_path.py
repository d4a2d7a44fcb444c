"""Benchmark: does the default path find seizures? Event figures of trained runs on their test events.

For each run directory given (e.g. the two that ``deepepi pipeline`` writes), the selected model
scores the run's own held-out test events (``metrics.json`` ``test_events``, never seen in training
or selection) of the dataset it was trained on. An event's score is the maximum seizure probability
over its windows. Reported: event sensitivity and false-alarm ratio at the model's argmax
(p > 0.5, what metrics.json counts), and the event sensitivity at the lowest threshold whose event
false-alarm ratio is at most ``--max-far`` (an ROC operating point read off the test negatives).

    python bench/default_path.py RUN_DIR [RUN_DIR ...] [--data CSV] [--max-far 0.05]

``--data`` defaults to the dataset the run recorded in its log line (the built-in dataset).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from deepepi.core.config import from_dict
from deepepi.data.csvio import WINDOW_COLUMNS, load_csv
from deepepi.data.synth import default_dataset
from deepepi.data.windows import windows_from_config
from deepepi.runtimes import open_model
from deepepi.runs import layout as art
from deepepi.scoring.metrics import event_max, sensitivity_at_far


def score_run(run_dir: Path, csv: Path, max_far: float) -> dict:
    cfg = from_dict(json.loads((run_dir / art.CONFIG).read_text()), warn=False)
    metrics = json.loads((run_dir / art.METRICS).read_text())
    rows = load_csv(csv, columns=WINDOW_COLUMNS)
    rows = rows[rows["eventId"].isin(metrics["test_events"])]
    windows = windows_from_config(rows, cfg, raw=True)
    p1 = open_model(run_dir).predict_proba(windows.X)[:, 1]
    ids, best = event_max(p1, windows.event_id)
    label = dict(zip(windows.event_id.tolist(), windows.y.tolist()))
    pos = np.array([label[i] == 1 for i in ids.tolist()])
    sens, far, threshold = sensitivity_at_far(best[pos], best[~pos], max_far)
    return {"run": str(run_dir), "framework": cfg.framework, "seizure_events": int(pos.sum()),
            "non_seizure_events": int((~pos).sum()), "best_epoch": metrics["best_epoch"],
            "gate_met": metrics["gate_met"], "argmax_sensitivity": float(np.mean(best[pos] > 0.5)),
            "argmax_far": float(np.mean(best[~pos] > 0.5)), "sensitivity": sens, "far": far,
            "threshold": threshold}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--max-far", type=float, default=0.05)
    args = ap.parse_args()
    csv = args.data or default_dataset()
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; data {csv}")
    print(f"| run | framework | seizure / other test events | argmax sensitivity / FA | "
          f"sensitivity at FA <= {args.max_far:g} (FA, threshold) | best epoch (gate met) |")
    print("|---|---|---:|---:|---:|---:|")
    for run in args.runs:
        r = score_run(run, csv, args.max_far)
        print(f"| {run.name} | {r['framework']} | {r['seizure_events']} / {r['non_seizure_events']} | "
              f"{r['argmax_sensitivity']:.3f} / {r['argmax_far']:.3f} | {r['sensitivity']:.3f} "
              f"({r['far']:.3f}, {r['threshold']:.3f}) | {r['best_epoch']} ({r['gate_met']}) |")


if __name__ == "__main__":
    main()
