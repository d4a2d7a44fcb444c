"""Benchmark: cross-family generalisation on the built-in generator (one seizure family held out per run).

For each seizure morphology family F of deepepi.data.synth (tonic-clonic, short-tonic-clonic,
clonic, hypermotor): the dataset's events are split by event (the config's testProp and
randomSeed); a model is trained with the config on the training events **minus every seizure of
family F** (its own inner test split set to 10 %); it is then scored on every seizure event of family F (none was seen in training) against
the test split's non-seizure events. An event's score is the maximum seizure probability over its
windows; the figure is the event sensitivity at the lowest threshold whose event false-alarm
ratio is at most 5 % (``--max-far``), with the false-alarm ratio and threshold reached, plus the
sensitivity of the model's own argmax (p > 0.5). The threshold is read off the test negatives,
i.e. it is an ROC operating point, not a deployment threshold chosen on validation data.

    python bench/generalisation.py [--config configs/nnConfig_deep_pytorch.json] [--epochs 4]
                                   [--events 400] [--users 8] [--seed 1] [--families ...]
                                   [--out artifacts/bench-generalisation]

Prints a markdown table and writes ``results.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from deepepi.core import io
from deepepi.core.config import REPO_CONFIGS, from_dict, load_config
from deepepi.data.csvio import WINDOW_COLUMNS, load_csv
from deepepi.data.split import events_table, split_events
from deepepi.data.synth import FAMILIES, FILES, event_families, synthesize
from deepepi.data.windows import windows_from_config
from deepepi.runtimes import open_model
from deepepi.scoring.metrics import event_max, sensitivity_at_far
from deepepi.train.run import train

INNER_TEST_PROP = 0.1


def _subset_csv(src: Path, dst: Path, event_ids: set[int]) -> Path:
    """The rows of ``event_ids``, every column kept as text (the file stays a real flattened CSV)."""
    table = pd.read_csv(src, dtype=str, keep_default_na=False)
    keep = table["eventId"].astype(np.int64).isin(event_ids)
    io.write_text(dst, table[keep].to_csv(index=False, lineterminator="\n"))
    return dst


def run_family(family: str, *, csv: Path, out: Path, cfg_path: Path, epochs: int,
               train_ids: set[int], test_ids: set[int], labels: dict[int, int], fam: dict[int, str],
               max_far: float) -> dict:
    held_out = {e for e, f in fam.items() if f == family}
    train_csv = _subset_csv(csv, out / family / "train.csv", train_ids - held_out)
    raw = load_config(cfg_path).to_dict()
    raw["modelConfig"]["epochs"] = epochs
    raw["dataProcessing"]["testProp"] = INNER_TEST_PROP  # the run's own test split only costs training data
    cfg = from_dict(raw, source=str(cfg_path), warn=False)
    t0 = time.perf_counter()
    result = train(cfg, data=train_csv, out=out / family / "run", quiet=True)
    seconds = time.perf_counter() - t0
    negatives = {e for e in test_ids if labels[e] == 0}
    rows = load_csv(csv)
    rows = rows[rows["eventId"].isin(held_out | negatives)]
    windows = windows_from_config(rows, cfg, raw=True)
    p1 = open_model(result.run_dir).predict_proba(windows.X)[:, 1]
    ids, best = event_max(p1, windows.event_id)
    is_pos = np.isin(ids, list(held_out))
    sens, far, threshold = sensitivity_at_far(best[is_pos], best[~is_pos], max_far)
    return {"family": family, "held_out_seizures": int(is_pos.sum()), "test_negatives": int((~is_pos).sum()),
            "sensitivity": sens, "far": far, "threshold": threshold,
            "argmax_sensitivity": float(np.mean(best[is_pos] > 0.5)),
            "argmax_far": float(np.mean(best[~is_pos] > 0.5)),
            "best_epoch": result.best_epoch, "gate_met": result.metrics["gate_met"],
            "train_seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO_CONFIGS / "nnConfig_deep_pytorch.json")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--events", type=int, default=400)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    ap.add_argument("--max-far", type=float, default=0.05)
    ap.add_argument("--out", type=Path, default=Path("artifacts/bench-generalisation"))
    args = ap.parse_args()

    data = synthesize(args.out / "data", users=args.users, events=args.events, seed=args.seed)
    fam = event_families(data.csv_path.parent / FILES["Seizure"])
    events = events_table(load_csv(data.csv_path, columns=WINDOW_COLUMNS))
    labels = dict(zip(events["eventId"].tolist(), events["label"].tolist()))
    cfg = load_config(args.config)
    train_ids, test_ids = split_events(events, test_prop=float(cfg.processing["testProp"]), seed=cfg.seed)
    results = [run_family(f, csv=data.csv_path, out=args.out, cfg_path=args.config, epochs=args.epochs,
                          train_ids=set(train_ids.tolist()), test_ids=set(test_ids.tolist()), labels=labels,
                          fam=fam, max_far=args.max_far) for f in args.families]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    io.write_json(args.out / "results.json", {"when": stamp, "machine": platform.processor() or platform.machine(),
                                               "args": {k: str(v) for k, v in vars(args).items()},
                                               "results": results})
    print(f"{stamp}; config {args.config.name}, {args.epochs} epochs, {args.events} events, seed {args.seed}")
    print(f"| held-out family | seizures | negatives | sensitivity at FA <= {args.max_far:g} | FA reached | "
          "threshold | argmax sensitivity / FA | best epoch (gate met) | train s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['family']} | {r['held_out_seizures']} | {r['test_negatives']} | {r['sensitivity']:.3f} | "
              f"{r['far']:.3f} | {r['threshold']:.3f} | {r['argmax_sensitivity']:.3f} / {r['argmax_far']:.3f} | "
              f"{r['best_epoch']} ({r['gate_met']}) | {r['train_seconds']} |")


if __name__ == "__main__":
    main()
