"""Benchmark: K models trained at once (``--together``'s batched engine) against K models one after another.

For each precision x batch size x K: the aggregate training samples/s (K x batch x steps / seconds)
of ``deepepi.train.torch_stacked.Stack`` stepping K default-architecture models as one vmapped
computation, each on its own random windows, against the lone trainer's step
(``torch_trainer.Stepper``: KerasAdam, autocast on CUDA) run for one model. K sequential runs take
K times one run's time, so their aggregate rate is the one-model rate, measured once per precision
and batch in the same process (the column "sequential"). Every figure is the median of
``--repeats`` timed blocks of ``--steps`` steps after ``--warmup`` untimed steps (cudnn autotuning,
first allocations). bf16 applies on CUDA only (the trainer trains fp32 on CPU), so a CPU run
reports fp32 rows.

Runs from a source checkout with torch, numpy and pandas (no TensorFlow, click or imbalanced-learn):

    PYTHONPATH=. python bench/train_many.py [--device cpu|cuda] [--ks 1 2 5 10 20] [--batches 64 512]
                                            [--precisions fp32 bf16] [--steps 20] [--repeats 3]
    PYTHONPATH=. python bench/train_many.py --device cuda --quick    # the one-shot GPU run (minutes)
    PYTHONPATH=. python bench/train_many.py --smoke                  # a tiny model, seconds (tests)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SMOKE_MODEL = {"nLayers": 3, "filters": [4, 4, 8], "strides": [1, 2, 2], "denseWidths": [8]}


def _config(batch: int, precision: str, smoke: bool) -> Any:
    from deepepi.core.config import load_config

    extra = SMOKE_MODEL if smoke else {}
    return load_config(None).with_overrides(batchSize=batch, framework="pytorch", modelType="pytorch",
                                            precision=precision, **extra)


def _median_rate(step: Callable[[], None], samples_per_step: int, *, warmup: int, steps: int, repeats: int,
                 sync: Callable[[], None]) -> float:
    for _ in range(warmup):
        step()
    sync()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(samples_per_step * steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def _data(k: int, batch: int, window: int, device: Any) -> tuple[Any, Any]:
    """K models' batches: [K, steps_cycle, batch, window] windows in g and labels (random, fixed seed)."""
    import torch

    rng = np.random.default_rng(k)
    x = (1.0 + 0.1 * rng.standard_normal((k, 4, batch, window))).astype(np.float32)
    y = (rng.random((k, 4, batch)) < 0.3).astype(np.int64)
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def measure(device: str, precision: str, batch: int, ks: list[int], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One precision x batch: the sequential (one model) rate, then the batched rate per K."""
    import torch

    from deepepi.models import registry
    from deepepi.train.optim import AdamSettings
    from deepepi.train.torch_optim import KerasAdam
    from deepepi.train.torch_stacked import Stack
    from deepepi.train.torch_trainer import AMP_DTYPES, Stepper

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    cfg = _config(batch, precision, args.smoke)
    spec = registry.spec_from_config(cfg)
    build = registry.resolve(cfg.model["modelClass"], "pytorch").build
    settings = AdamSettings.from_model_config(cfg.model)
    amp = AMP_DTYPES.get(precision) if cuda else None
    timing = {"warmup": args.warmup, "steps": args.steps, "repeats": args.repeats, "sync": sync}

    torch.manual_seed(0)
    model = build(spec).to(dev).train()
    stepper = Stepper(model, KerasAdam(model.parameters(), settings), amp=amp)
    x1, y1 = _data(1, batch, spec.window, dev)
    turn = [0]

    def lone_step() -> None:
        i = turn[0] = (turn[0] + 1) % 4
        stepper(x1[0, i], y1[0, i])

    sequential = _median_rate(lone_step, batch, **timing)
    del model, stepper, x1, y1
    rows = []
    for k in ks:
        models = []
        for seed in range(k):
            torch.manual_seed(seed)
            models.append(build(spec).to(dev))
        gens = [torch.Generator(device=dev) for _ in range(k)]
        for seed, g in enumerate(gens):
            g.manual_seed(seed)
        xk, yk = _data(k, batch, spec.window, dev)
        stack = Stack(models, settings, gens, xk[0, 0])
        stack.amp = amp
        members, lrs = list(range(k)), [settings.lr] * k
        del models

        def stacked_step() -> None:
            i = turn[0] = (turn[0] + 1) % 4
            stack.step(members, xk[:, i], yk[:, i], lrs)

        try:
            rate = _median_rate(stacked_step, k * batch, **timing)
        except torch.cuda.OutOfMemoryError:  # the row says so; the larger K are skipped
            print(f"  {precision} batch {batch} K {k}: out of GPU memory", file=sys.stderr, flush=True)
            rows.append({"precision": precision, "batch": batch, "k": k, "together": None, "sequential": sequential,
                         "speedup": None})
            break
        rows.append({"precision": precision, "batch": batch, "k": k, "together": rate, "sequential": sequential,
                     "speedup": rate / sequential})
        print(f"  {precision} batch {batch} K {k}: together {rate:,.0f}/s, sequential {sequential:,.0f}/s "
              f"({rate / sequential:.2f}x)", file=sys.stderr, flush=True)
        del stack, xk, yk
        if cuda:
            torch.cuda.empty_cache()
    return rows


def render(rows: list[dict[str, Any]], header: str) -> str:
    lines = [header, "", "| precision | batch | K | together (samples/s) | K sequential (samples/s) | speed-up |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["together"] is None:
            lines.append(f"| {r['precision']} | {r['batch']} | {r['k']} | out of memory | {r['sequential']:,.0f} | - |")
            continue
        lines.append(f"| {r['precision']} | {r['batch']} | {r['k']} | {r['together']:,.0f} | {r['sequential']:,.0f} "
                     f"| {r['speedup']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when present")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 2, 5, 10, 20])
    p.add_argument("--batches", type=int, nargs="+", default=[64, 512])
    p.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=20, help="timed steps per block")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks (the median is reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--quick", action="store_true", help="the one-shot GPU run: 10 steps x 3 blocks, K 1 2 5 10 20")
    p.add_argument("--smoke", action="store_true", help="a tiny model, K 1 2, batch 16, 2 steps (tests)")
    args = p.parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.repeats, args.warmup = 10, 3, 3
    if args.smoke:
        args.ks, args.batches, args.steps, args.repeats, args.warmup = [1, 2], [16], 2, 1, 1
    precisions = args.precisions if device == "cuda" else ["fp32"]
    torch.backends.cudnn.benchmark = device == "cuda"
    what = (torch.cuda.get_device_name(0) if device == "cuda"
            else f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s)")
    rows = []
    for precision in precisions:
        for batch in args.batches:
            rows += measure(device, precision, batch, args.ks, args)
    best = max((r for r in rows if r["together"] is not None), key=lambda r: r["together"])
    header = (f"bench/train_many.py on {what}, torch {torch.__version__}, "
              f"{'tiny smoke model' if args.smoke else 'default DeepEpi architecture'}, "
              f"median of {args.repeats} x {args.steps} steps after {args.warmup} warm-up steps, "
              f"{datetime.now(timezone.utc):%Y-%m-%d}")
    print(render(rows, header))
    print(f"\nbest: {best['together']:,.0f} samples/s aggregate (K {best['k']}, batch {best['batch']}, "
          f"{best['precision']})")


if __name__ == "__main__":
    main()
