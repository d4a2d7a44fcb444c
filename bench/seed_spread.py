"""Benchmark: how far two training seeds of one framework land apart (the trained-mode margins).

For each framework, trains the pipeline's runs (configs/nnConfig_deep.json with its dropout, 4 epochs,
best-epoch selection, each in its own process as `deepepi pipeline` does) on the built-in dataset
with one fixed event split (the pipeline's: randomSeed 42) and several seeds (each seed draws the
initial weights, the batch order and the augmentation). Each selected model is scored on the test
windows; every pair of seeds of one framework gives |A - B| of window TPR, window FPR, event TPR and
event FPR. `deepepi verify --mode trained` takes its margins (deepepi.verify.stats.SEED_MARGINS)
from the largest of these, and `deepepi pipeline` those measured at its training length
(deepepi.workflows.pipeline.SPREAD_MARGINS).

    python bench/seed_spread.py [--seeds 1 2 3 4] [--frameworks tensorflow pytorch] [--epochs 4] [--out DIR]
                                [--no-dropout]

The pipeline trains with the config's dropout (denseDropout 0.025; its proof feeds both frameworks
shared masks); --no-dropout turns it off, as the pipeline did before the proof, to measure what that
changes. (--dropout, the old switch for the now default, is still accepted.)
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np


def pipeline_split(csv: Path) -> Any:
    """The train/validation/test events of the pipeline's runs (its config and seed)."""
    from deepepi.core.config import load_config
    from deepepi.workflows.pipeline import CONFIG
    from deepepi.data.dataset import EventSplit, prepare

    import pandas as pd

    cfg = load_config(CONFIG)
    data = prepare(cfg, csv)
    real = set(pd.read_csv(csv, usecols=["eventId"])["eventId"].astype(int))  # augmented copies get new ids
    ids = (tuple(sorted(int(e) for e in np.unique(part.event_id) if int(e) in real))
           for part in (data.train, data.val, data.test))
    return EventSplit(*ids, note=f"the pipeline's split (seed {cfg.seed})", val_source="pipeline's validation events")


def test_rates(run_dir: Path, csv: Path, split: Any) -> dict[str, float]:
    """Window and event TPR/FPR of a run's selected model on the split's test windows."""
    from deepepi.core.config import load_config
    from deepepi.runtimes import open_model
    from deepepi.data.dataset import prepare
    from deepepi.verify.stats import RATES, EventTable

    test = prepare(load_config(run_dir / "config.json"), csv, split).test
    pred = np.argmax(open_model(run_dir).predict_g(test.X), axis=1)
    rates = EventTable.build(pred, pred, test.y, test.event_id).rates(np.ones(len(np.unique(test.event_id))))
    return {r: float(rates[r][0, 0]) for r in RATES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4])
    parser.add_argument("--frameworks", nargs="+", choices=["tensorflow", "pytorch"],
                        default=["tensorflow", "pytorch"])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (the pipeline's default: 4)")
    parser.add_argument("--out", type=Path, default=Path("artifacts/seed_spread"))
    parser.add_argument("--dropout", dest="dropout", action="store_true", default=True,
                        help="keep the config's dropout (the default, as the pipeline trains)")
    parser.add_argument("--no-dropout", dest="dropout", action="store_false", help="train with dropout off")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    from deepepi.data.synth import default_dataset
    from deepepi.workflows.pipeline import train_in_child
    from deepepi.verify.stats import RATES

    csv = default_dataset()
    split = pipeline_split(csv)
    runs, pairs = [], []
    for fw in args.frameworks:
        rates = {}
        for seed in args.seeds:
            t0 = time.perf_counter()
            run_dir = train_in_child(fw, csv, args.out / f"{fw}-{seed}", args.epochs, seed=seed, split=split,
                                     dropout=args.dropout)
            rates[seed] = test_rates(run_dir, csv, split)
            runs.append(f"| {fw} | {seed} | " + " | ".join(f"{rates[seed][r]:.3f}" for r in RATES)
                        + f" | {time.perf_counter() - t0:.0f} |")
            print(runs[-1], file=sys.stderr, flush=True)
        mean = {r: float(np.mean([rates[seed][r] for seed in args.seeds])) for r in RATES}
        runs.append(f"| {fw} | mean | " + " | ".join(f"{mean[r]:.3f}" for r in RATES) + " | |")
        for a, b in itertools.combinations(args.seeds, 2):
            pairs.append((fw, a, b, [abs(rates[a][r] - rates[b][r]) for r in RATES]))
    print(f"seed spread: default DeepEpi architecture, dropout {'on' if args.dropout else 'off'}, "
          f"{args.epochs} epochs, built-in dataset, the pipeline's split; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores\n")
    print("| framework | seed | window TPR | window FPR | event TPR | event FPR | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(runs))
    print("\n| framework | seeds | window TPR | window FPR | event TPR | event FPR |")
    print("|---|---|---:|---:|---:|---:|")
    for fw, a, b, diffs in pairs:
        print(f"| {fw} | {a}, {b} | " + " | ".join(f"{d:.3f}" for d in diffs) + " |")
    largest = np.max([d for *_, d in pairs], axis=0)
    print("| largest | | " + " | ".join(f"{d:.3f}" for d in largest) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
