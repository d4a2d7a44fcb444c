"""Benchmark: training samples/s of the default DeepEpi architecture on CPU, per framework and batch size.

For each framework and batch size, the trainer's own step is timed against the naive loop the
reference used, in the same process on the same random windows:
- PyTorch: ours = deepepi.train.torch_trainer (index slicing of a resident tensor by the shared batch stream)
  vs TensorDataset + DataLoader(shuffle=True, default collate).
- TensorFlow: ours = model.fit on deepepi.train.keras_trainer's tf.data pipeline (shared batch stream, prefetch)
  vs model.fit on the numpy arrays (the reference's call).
Each figure is the median of ``--repeats`` timed epochs after one warm-up epoch, the two loops
timed in turns. Prints a markdown table.

    python bench/train_throughput.py [--frameworks pytorch tensorflow] [--batches 64 512]
                                     [--samples 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from deepepi.core.config import load_config


def _windows(n: int, window: int, seed: int = 0):  # noqa: ANN202 - deepepi.data.windows.Windows
    from deepepi.data.windows import Windows

    rng = np.random.default_rng(seed)
    x = (1.0 + 0.1 * rng.standard_normal((n, window))).astype(np.float32)
    y = (rng.random(n) < 0.3).astype(np.int64)
    ids = np.arange(n, dtype=np.int64)
    return Windows(X=x, y=y, event_id=ids, user_id=np.zeros(n, dtype=np.int64), end_time=ids.astype(np.float64))


def _compare(ours: Callable[[], int], naive: Callable[[], int], repeats: int) -> tuple[list[float], list[float]]:
    """Samples/s of each timed epoch of each loop; one warm-up epoch each, then timed epochs taken
    in turns so that both loops see the same machine load."""
    ours()
    naive()
    rates: dict[Callable[[], int], list[float]] = {ours: [], naive: []}
    for _ in range(repeats):
        for run_epoch in (ours, naive):
            t0 = time.perf_counter()
            samples = run_epoch()
            rates[run_epoch].append(samples / (time.perf_counter() - t0))
    return rates[ours], rates[naive]


def _job(framework: str, batch: int, n: int, run_dir: Path):  # noqa: ANN202 - deepepi.train.run.Job
    from deepepi.models import registry
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.runs.layout import RunLog
    import pandas as pd

    from deepepi.data.dataset import Datasets
    from deepepi.train.run import Job

    cfg = load_config(None).with_overrides(batchSize=batch, framework=framework, modelType=framework)
    w = _windows(n, cfg.window)
    data = Datasets(train=w, val=w, test=w, notes=[], augmentation=pd.DataFrame())
    build = registry.resolve(cfg.model["modelClass"], framework).build
    return Job(cfg=cfg, spec=ArchSpec.from_config(cfg), build=build, data=data, run_dir=run_dir,
               log=RunLog(run_dir / "train.log", quiet=True), resume=False, quiet=True)


def bench_torch(batch: int, n: int, repeats: int, run_dir: Path) -> tuple[list[float], list[float]]:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    from deepepi.train.torch_trainer import TorchTrainer

    job = _job("pytorch", batch, n, run_dir)
    trainer = TorchTrainer(job)
    epoch = iter(range(1, 10_000))

    def ours() -> int:
        trainer.train_epoch(next(epoch))
        return len(trainer.y_train)

    model = job.build(job.spec)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    w = job.data.train
    loader = DataLoader(TensorDataset(torch.from_numpy(w.X), torch.from_numpy(w.y)), batch_size=batch,
                        shuffle=True, drop_last=True)

    def naive() -> int:
        seen = 0
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            seen += len(yb)
        return seen

    return _compare(ours, naive, repeats)


def bench_keras(batch: int, n: int, repeats: int, run_dir: Path) -> tuple[list[float], list[float]]:
    from deepepi.train.batches import BatchStream
    from deepepi.train.keras_trainer import compile_model, input_pipeline

    job = _job("tensorflow", batch, n, run_dir)
    w, m = job.data.train, job.cfg.model
    ours_model, naive_model = job.build(job.spec), job.build(job.spec)
    compile_model(ours_model, m)
    compile_model(naive_model, m)
    stream = BatchStream(len(w.y), batch, job.cfg.seed)
    dataset = input_pipeline(w.X, w.y, stream, 0, stream.steps_per_epoch)

    def ours() -> int:
        ours_model.fit(dataset, epochs=1, shuffle=False, verbose=0)
        return len(w.y)

    def naive() -> int:
        naive_model.fit(w.X, w.y, batch_size=batch, epochs=1, shuffle=True, verbose=0)
        return len(w.y)

    return _compare(ours, naive, repeats)


BENCHES = {"pytorch": ("torch", bench_torch), "tensorflow": ("tensorflow", bench_keras)}


def _span(rates: list[float]) -> str:
    return f"{min(rates):.0f}-{max(rates):.0f}"


def _versions(frameworks: list[str]) -> str:
    out = [f"python {platform.python_version()}"]
    if "pytorch" in frameworks:
        import torch

        out.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    if "tensorflow" in frameworks:
        import tensorflow as tf

        out.append(f"tensorflow {tf.__version__}")
    return ", ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frameworks", nargs="+", choices=sorted(BENCHES), default=["pytorch", "tensorflow"])
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 512])
    parser.add_argument("--samples", type=int, default=1024, help="samples per epoch (at least 4 batches)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a CPU benchmark, even on a machine with a GPU
    frameworks = [f for f in args.frameworks if importlib.util.find_spec(BENCHES[f][0]) is not None]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fw in frameworks:
            for batch in args.batches:
                n = max(args.samples, 4 * batch)
                ours_runs, naive_runs = BENCHES[fw][1](batch, n, args.repeats, Path(tmp))
                ours, naive = statistics.median(ours_runs), statistics.median(naive_runs)
                rows.append(f"| {fw} | {batch} | {n} | {ours:.0f} ({_span(ours_runs)}) | {naive:.0f} "
                            f"({_span(naive_runs)}) | {ours / naive:.2f} |")
                print(rows[-1], file=sys.stderr, flush=True)
    print(f"Training throughput, default DeepEpi architecture (window 750), CPU; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores; "
          f"{_versions(frameworks)}; median of {args.repeats} epochs after 1 warm-up.\n")
    print("| framework | batch | samples/epoch | ours, samples/s (min-max) | naive, samples/s (min-max) "
          "| ours / naive |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
