"""Benchmark: a 5-member Harrell-Davis ensemble graph against one model, onnxruntime, one thread.

Five DeepEpi models (reference spec, window 750, seeded random weights) are exported through the
PyTorch converter, then merged by ``deepepi ensemble``'s builder. Measured in one process with one
intra-op thread: single-window latency (ms) of one member, of a 1-member ensemble (the
in-graph weight computation and sort on top of one model), of the 5-member ensemble, and of the five
members run one after another; batch throughput (windows/s) for each. The graphs are timed
round-robin (one call of each per round), so load from other processes falls on all of them alike,
and each call's CPU time of the calling thread is recorded too: with one intra-op thread
onnxruntime computes in the caller's thread, so that figure is the work done, unaffected by other
processes taking the cores. Prints a markdown table.

    python bench/ensemble.py [--members 5] [--repeats 300] [--batch 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from inference import WINDOW


def export_members(root: Path, n: int) -> list[Path]:
    import torch

    from converters import torch_onnx
    from converters.contract import Source
    from deepepi.models.deepepi_cnn import torch as deepepi_torch
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.core.preprocessing import Preprocessing

    spec, paths = ArchSpec(), []
    for i in range(n):
        torch.manual_seed(i)
        model = deepepi_torch.DeepEpiCnn(spec).eval()
        paths.append(torch_onnx.export(model, spec, root / f"member{i}.onnx",
                                       Source(f"member{i}", "0" * 64, 25, 125, Preprocessing())).path)
    return paths


def runners(root: Path, members: list[Path], threads: int) -> dict[str, Callable[[np.ndarray], object]]:
    import onnx
    import onnxruntime as ort

    from converters.ensemble import Member, export

    export([Member(members[0], onnx.load(members[0]))], root / "ens1.onnx")
    export([Member(p, onnx.load(p)) for p in members], root / "ensN.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    ort.set_default_logger_severity(3)

    def session(path: Path) -> ort.InferenceSession:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    single, ens1, ens_n = session(members[0]), session(root / "ens1.onnx"), session(root / "ensN.onnx")
    each = [session(p) for p in members]
    n = len(members)
    return {"one model": lambda raw: single.run(None, {"acc": raw}),
            "1-member ensemble": lambda raw: ens1.run(None, {"acc": raw}),
            f"{n}-member ensemble": lambda raw: ens_n.run(None, {"acc": raw}),
            f"{n} models, one after another": lambda raw: [s.run(None, {"acc": raw}) for s in each]}


def round_robin(runs: dict[str, Callable[[np.ndarray], object]], raw: np.ndarray, rounds: int,
                warmup: int = 5) -> dict[str, np.ndarray]:
    """[rounds, 2] wall and calling-thread CPU seconds per call of each runner, one call of each per
    round, after untimed warm-up rounds."""
    out = {name: np.empty((rounds, 2)) for name in runs}
    for r in range(-warmup, rounds):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.thread_time()
            run(raw)
            if r >= 0:
                out[name][r] = time.perf_counter() - wall, time.thread_time() - cpu
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from converters.contract import realistic_windows

    one, batch = realistic_windows(1, WINDOW, seed=0), realistic_windows(args.batch, WINDOW, seed=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = runners(root, export_members(root, args.members), args.threads)
        latency = round_robin(runs, one, args.repeats)
        throughput = round_robin(runs, batch, args.batch_repeats, warmup=1)
        for name in runs:
            wall, cpu = latency[name][:, 0], latency[name][:, 1]
            rows.append((name, np.median(cpu) * 1e3, np.median(wall) * 1e3, np.percentile(wall, 99) * 1e3,
                         args.batch / np.median(throughput[name][:, 1])))
    base = rows[0][1]
    print(f"Harrell-Davis ensemble, DeepEpi window {WINDOW}, onnxruntime CPU, {args.threads} intra-op "
          f"thread(s); {platform.machine()} {os.cpu_count()} CPUs; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    print(f"| graph | 1-window CPU p50 (ms) | / one model | 1-window wall p50 (ms) | wall p99 (ms) "
          f"| batch {args.batch} (windows per CPU s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, cpu, p50, p99, wps in rows:
        print(f"| {name} | {cpu:.3f} | {cpu / base:.2f} | {p50:.2f} | {p99:.2f} | {wps:.0f} |")


if __name__ == "__main__":
    main()
