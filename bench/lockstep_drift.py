"""Benchmark: how far Keras and PyTorch drift apart in lockstep.

For each seed, Keras and PyTorch start from Keras's seeded weights and train the
default architecture (configs/nnConfig_deep.json, dropout off) on the built-in dataset's training
windows with the same batch stream; after each checkpoint step count the script records the max abs
weight difference (BatchNorm moving statistics included), the max abs softmax difference and the
argmax agreement on the held-out test windows.

How far two seeds of one framework land apart: bench/seed_spread.py.

    python bench/lockstep_drift.py [--steps 1 10 100 1000] [--seeds 0 1 2 3 4] [--held-out 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from typing import Any


def _data() -> tuple[Any, dict[str, Any], Any]:
    from deepepi.core.config import REPO_CONFIGS, load_config
    from deepepi.data.synth import default_dataset
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.data.dataset import prepare
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", type=int, default=[1, 10, 100, 1000])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--held-out", type=int, default=2000, help="test windows scored for the output figures")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    table = drift_table(sorted(args.steps), args.seeds, args.held_out, args.dtype)
    print(f"lockstep drift ({args.dtype}); default DeepEpi architecture, dropout off, built-in dataset; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
