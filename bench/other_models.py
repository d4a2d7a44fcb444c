"""Benchmark: DeepEpi, SpecCnn and AMBER (reference sizes) as ONNX graphs, onnxruntime, one thread.

Each model is built in PyTorch with seeded random weights and exported through the PyTorch converter
under the ONNX contract (acc milli-g [batch, 750] in); the three graphs are then timed round-robin in
one process (one call of each per round, so load from other processes falls on all alike), recording
each call's CPU time of the calling thread (with one intra-op thread onnxruntime computes in the
caller's thread). Prints a markdown table: trainable parameters, single-window CPU time (p50) and
batch throughput per CPU second.

    python bench/other_models.py [--repeats 200] [--batch 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
from ensemble import round_robin
from inference import WINDOW


def specs() -> dict[str, Any]:
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.models.amber.spec import AmberSpec
    from deepepi.models.speccnn.spec import SpecCnnSpec

    return {"DeepEpi (reference)": ArchSpec(),
            "SpecCnn (250/50/5, 3 x 32)": SpecCnnSpec(analysis_samples=250),
            "AMBER (128/128)": AmberSpec()}


def export(root: Path, name: str, spec: Any, seed: int) -> Path:
    import torch

    from converters import torch_onnx
    from converters.contract import Source
    from deepepi.models import registry
    from deepepi.core.preprocessing import Preprocessing

    torch.manual_seed(seed)
    model = registry.build(spec, "pytorch").eval()
    source = Source(name, "0" * 64, 25, 125, Preprocessing())
    return torch_onnx.export(model, spec, root / f"{spec.model}.onnx", source).path


def runners(paths: dict[str, Path], threads: int) -> dict[str, Callable[[np.ndarray], object]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    sessions = {name: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                for name, p in paths.items()}
    return {name: (lambda raw, s=s: s.run(None, {"acc": raw})) for name, s in sessions.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from converters.contract import realistic_windows

    one, batch = realistic_windows(1, WINDOW, seed=0), realistic_windows(args.batch, WINDOW, seed=1)
    models = specs()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: export(Path(tmp), name, spec, seed=i) for i, (name, spec) in enumerate(models.items())}
        runs = runners(paths, args.threads)
        latency = round_robin(runs, one, args.repeats)
        throughput = round_robin(runs, batch, args.batch_repeats, warmup=1)
    base = float(np.median(latency[next(iter(runs))][:, 1]))
    print(f"Models under the ONNX contract (window {WINDOW}), onnxruntime CPU, {args.threads} intra-op thread(s); "
          f"{platform.machine()} {os.cpu_count()} CPUs; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    print(f"| model | trainable parameters | 1-window CPU p50 (ms) | / DeepEpi | batch {args.batch} "
          f"(windows per CPU s) |")
    print("|---|---:|---:|---:|---:|")
    for name, spec in models.items():
        cpu = float(np.median(latency[name][:, 1]))
        wps = args.batch / float(np.median(throughput[name][:, 1]))
        print(f"| {name} | {spec.expected_counts().trainable:,} | {cpu * 1e3:.3f} | {cpu / base:.2f} | {wps:.0f} |")


if __name__ == "__main__":
    main()
