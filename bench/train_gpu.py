"""Benchmark: the PyTorch trainer's throughput on the device present (GPU when there is one, else CPU).

Runs from a source checkout with only torch, numpy, pandas, scipy and scikit-learn installed (tqdm,
when present, for the progress-bar rows): it drives ``deepepi.train.torch_trainer.TorchTrainer``
directly on random windows, without the CLI, data preparation or imbalanced-learn.

Reports, as markdown tables:
1. samples/s per precision x batch x compile (median of the timed epochs after one warm-up epoch)
   and the warm-up epoch's extra seconds (torch.compile's compilation, cudnn autotuning), separately;
2. one epoch over ``--epoch-windows`` windows (default 500k) with the fastest setting of table 1,
   progress bar off and on, and (CUDA) ``deterministic: true``;
3. DDP scaling: samples/s at the same global batch with 1 .. N processes (N = the GPUs present;
   on CPU two gloo processes, which shows the path works, not how it scales).

    PYTHONPATH=. python bench/train_gpu.py [--smoke] [--batches 512 4096] [--precisions fp32 bf16]
                                           [--compile off on] [--steps 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deepepi.core.config import load_config


def _job(run_dir: Path, n: int, *, batch: int, precision: str, compile_: bool, deterministic: bool = False,
         quiet: bool = True) -> Any:
    """A Job over ``n`` random windows (train = val = test), the default architecture."""
    from deepepi.data.windows import Windows
    from deepepi.models import registry
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.runs.layout import RunLog
    from deepepi.data.dataset import Datasets
    from deepepi.train.run import Job, is_writer

    cfg = load_config(None).with_overrides(batchSize=batch, framework="pytorch", modelType="pytorch",
                                           precision=precision, compile=compile_, deterministic=deterministic)
    rng = np.random.default_rng(0)
    x = (1.0 + 0.1 * rng.standard_normal((n, cfg.window))).astype(np.float32)
    ids = np.arange(n, dtype=np.int64)
    w = Windows(X=x, y=(rng.random(n) < 0.3).astype(np.int64), event_id=ids, user_id=np.zeros(n, dtype=np.int64),
                end_time=ids.astype(np.float64))
    data = Datasets(train=w, val=w, test=w, val_source="train events", notes=[], augmentation=pd.DataFrame())
    return Job(cfg=cfg, spec=ArchSpec.from_config(cfg), build=registry.resolve(cfg.model["modelClass"], "pytorch").build,
               data=data, run_dir=run_dir, log=RunLog(run_dir / "train.log", quiet=True), resume=False, quiet=quiet,
               writer=is_writer())


def _epochs(trainer: Any, repeats: int) -> tuple[float, list[float]]:
    """Seconds of the warm-up epoch, then of each timed epoch (the device drained after each)."""
    times = []
    for epoch in range(1, repeats + 2):
        t0 = time.perf_counter()
        trainer.train_epoch(epoch)
        if trainer.cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times[0], times[1:]


def grid(args: argparse.Namespace, cuda: bool, run_dir: Path) -> list[dict[str, Any]]:
    from deepepi.train.torch_trainer import TorchTrainer

    rows = []
    for precision in args.precisions:
        if precision != "fp32" and not cuda:
            continue  # autocast precisions apply on CUDA only
        for batch in args.batches:
            for compile_ in args.compile:
                n = batch * args.steps
                trainer = TorchTrainer(_job(run_dir, n, batch=batch, precision=precision, compile_=compile_ == "on"))
                warm, timed = _epochs(trainer, args.repeats)
                steady = statistics.median(timed)
                rows.append({"precision": precision, "batch": batch, "compile": compile_,
                             "samples_s": n / steady, "warmup_extra_s": warm - steady})
                print(f"  {precision} batch {batch} compile {compile_}: {n / steady:,.0f} samples/s", flush=True)
    return rows


def epoch_500k(args: argparse.Namespace, best: dict[str, Any], cuda: bool, run_dir: Path) -> list[dict[str, Any]]:
    from deepepi.train.torch_trainer import TorchTrainer

    variants = [("bar off", {}), ("bar on", {"quiet": False})]
    if cuda:
        variants.append(("bar off, deterministic", {"deterministic": True}))
    rows = []
    for name, extra in variants:
        if not extra.get("quiet", True):
            try:
                import tqdm  # noqa: F401
            except ImportError:
                rows.append({"variant": name, "epoch_s": None, "note": "tqdm not installed"})
                continue
        trainer = TorchTrainer(_job(run_dir, args.epoch_windows, batch=best["batch"], precision=best["precision"],
                                    compile_=best["compile"] == "on", **extra))
        _, timed = _epochs(trainer, 1)
        rows.append({"variant": name, "epoch_s": timed[0], "samples_s": args.epoch_windows / timed[0]})
    return rows


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_rank(rank: int, world: int, port: int, args: argparse.Namespace, best: dict[str, Any], queue: Any) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from deepepi.train.torch_trainer import TorchTrainer

    n = best["batch"] * args.steps
    with tempfile.TemporaryDirectory() as tmp:
        trainer = TorchTrainer(_job(Path(tmp), n, batch=best["batch"], precision=best["precision"],
                                    compile_=best["compile"] == "on"))
        try:
            _, timed = _epochs(trainer, args.repeats)
        finally:
            trainer.group.close()
    if rank == 0:
        queue.put(n / statistics.median(timed))


def ddp_scaling(args: argparse.Namespace, best: dict[str, Any], cuda: bool) -> list[dict[str, Any]]:
    import torch.multiprocessing as mp

    most = torch.cuda.device_count() if cuda else 2
    rows: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    for world in range(1, most + 1):
        queue = ctx.Queue()
        mp.spawn(_ddp_rank, args=(world, _free_port(), args, best, queue), nprocs=world, join=True)
        rate = queue.get()
        rows.append({"processes": world, "samples_s": rate, "speedup": rate / rows[0]["samples_s"] if rows else 1.0})
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    fmt = {"samples_s": "{:,.0f}", "warmup_extra_s": "{:.2f}", "epoch_s": "{:.2f}", "speedup": "{:.2f}x"}
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join("n/a" if r.get(k) is None else fmt.get(k, "{}").format(r[k])
                                       for k in keys) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs (any machine)")
    p.add_argument("--batches", type=int, nargs="+", default=[512, 4096])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "fp16"])
    p.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off", "on"])
    p.add_argument("--steps", type=int, default=50, help="steps per timed epoch")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epoch-windows", type=int, default=500_000)
    p.add_argument("--no-ddp", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.batches, args.compile, args.steps, args.repeats, args.epoch_windows = [64], ["off"], 3, 1, 512
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} logical cores)"
    print(f"# train_gpu: {device}, torch {torch.__version__}, python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = grid(args, cuda, Path(tmp))
        print("\n## samples/s per precision, batch, compile\n\n" + _table(rows), flush=True)
        best = max(rows, key=lambda r: r["samples_s"])
        print(f"\n## one epoch of {args.epoch_windows:,} windows ({best['precision']}, batch {best['batch']}, "
              f"compile {best['compile']})\n\n" + _table(epoch_500k(args, best, cuda, Path(tmp))), flush=True)
    if not args.no_ddp:
        print("\n## DDP scaling (same global batch)\n\n" + _table(ddp_scaling(args, best, cuda)), flush=True)


if __name__ == "__main__":
    main()
