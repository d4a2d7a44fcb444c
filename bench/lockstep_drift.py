"""Benchmark: how far Keras and PyTorch drift apart in lockstep, and how far two seeds land apart.

Drift (default): for each seed, Keras and PyTorch start from Keras's seeded weights and train the
default architecture (configs/nnConfig_deep.json, dropout off) on the built-in dataset's training
windows with the same batch stream; after each checkpoint step count the script records the max abs
weight difference (BatchNorm moving statistics included), the max abs softmax difference and the
argmax agreement on the held-out test windows. The lockstep threshold of `deepepi verify --mode
lockstep` (and of the pipeline) comes from the agreement column at the pipeline's step count.

Seed spread (--seed-pairs): per framework, two seeds trained the same number of steps (the same
split, different initial weights and batch order); |A - B| of window- and event-level TPR and FPR on
the test windows. `deepepi verify --mode trained` uses the largest of these as its margins.

    python bench/lockstep_drift.py [--steps 1 10 100 1000] [--seeds 0 1 2 3 4] [--held-out 2000]
    python bench/lockstep_drift.py --seed-pairs 1,2 3,4 --pair-steps 464 [--frameworks tensorflow pytorch]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from typing import Any

import numpy as np


def _data() -> tuple[Any, dict[str, Any], Any]:
    from deepepi.config import REPO_CONFIGS, load_config
    from deepepi.data.synth import default_dataset
    from deepepi.models.spec import ArchSpec
    from deepepi.train.dataset import prepare
    from deepepi.train.lockstep import without_dropout

    cfg = load_config(REPO_CONFIGS / "nnConfig_deep.json")
    cfg = cfg.with_overrides(**without_dropout(cfg.model))
    return ArchSpec.from_config(cfg), cfg.model, prepare(cfg, default_dataset())


def drift_table(steps: list[int], seeds: list[int], held_out: int, dtype: str) -> list[str]:
    from deepepi.train.lockstep import drift

    spec, m, data = _data()
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        for d in drift(spec, m, data.train.X, data.train.y, data.test.X[:held_out], seed=seed,
                       checkpoints=steps, dtype=dtype):
            rows.append(f"| {seed} | {d.steps} | {d.max_weight_diff:.2e} | {d.max_rel_weight_diff:.2e} | "
                        f"{d.max_prob_diff:.2e} | {d.agreement:.2%} |")
            print(rows[-1], file=sys.stderr, flush=True)
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return ["| seed | steps | max abs weight diff | max rel weight diff | max abs prob diff | argmax agreement |",
            "|---:|---:|---:|---:|---:|---:|", *rows]


def _rates(probs: np.ndarray, labels: np.ndarray, event_id: np.ndarray) -> dict[str, float]:
    from deepepi.verify.stats import RATES, EventTable

    pred = np.argmax(probs, axis=1)
    rates = EventTable.build(pred, pred, labels, event_id).rates(np.ones(len(np.unique(event_id))))
    return {r: float(rates[r][0, 0]) for r in RATES}


def seed_pairs(pairs: list[tuple[int, int]], steps: int, frameworks: list[str]) -> list[str]:
    import torch

    from deepepi.models import keras_deepepi as kd
    from deepepi.models import torch_deepepi as td
    from deepepi.train import keras_trainer, torch_trainer
    from deepepi.train.batches import BatchStream
    from deepepi.verify.stats import RATES

    spec, m, data = _data()
    x, y, test = data.train.X, data.train.y, data.test
    rows = []
    for a_seed, b_seed in pairs:
        for fw in frameworks:
            rates = []
            for seed in (a_seed, b_seed):
                start = keras_trainer.seeded_weights(spec, seed)
                stream = BatchStream(len(y), int(m["batchSize"]), seed)
                if fw == "tensorflow":
                    model = keras_trainer.lockstep_model(spec, start, m, "float32")
                    keras_trainer.train_steps(model, m, x, y, stream, 0, steps)
                    probs = kd.predict_proba(model, test.X)
                else:
                    torch.manual_seed(seed)
                    model = torch_trainer.lockstep_model(spec, start, "float32")
                    torch_trainer.train_steps(model, m, x, y, stream, 0, steps)
                    probs = td.predict_proba(model, test.X)
                rates.append(_rates(probs, test.y, test.event_id))
            diffs = " | ".join(f"{abs(rates[0][r] - rates[1][r]):.3f}" for r in RATES)
            rows.append(f"| {fw} | {a_seed}, {b_seed} | {steps} | {diffs} |")
            print(rows[-1], rates, file=sys.stderr, flush=True)
    return ["| framework | seeds | steps | window TPR | window FPR | event TPR | event FPR |",
            "|---|---|---:|---:|---:|---:|---:|", *rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 10, 100, 1000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--held-out", type=int, default=2000, help="test windows scored for the output figures")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed-pairs", nargs="*", default=None, metavar="A,B",
                        help="measure the seed spread instead of the drift")
    parser.add_argument("--pair-steps", type=int, default=464, help="steps per seed-pair model (pipeline: 4 epochs)")
    parser.add_argument("--frameworks", nargs="+", choices=["tensorflow", "pytorch"],
                        default=["tensorflow", "pytorch"], help="frameworks of the seed pairs")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if args.seed_pairs is not None:
        pairs = [tuple(int(s) for s in p.split(",")) for p in args.seed_pairs] or [(1, 2)]
        table = seed_pairs(pairs, args.pair_steps, args.frameworks)  # type: ignore[arg-type]
        what = f"seed spread, {args.pair_steps} steps"
    else:
        table = drift_table(sorted(args.steps), args.seeds, args.held_out, args.dtype)
        what = f"lockstep drift ({args.dtype})"
    print(f"{what}; default DeepEpi architecture, dropout off, built-in dataset; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
