"""Benchmark: what the reference stride pattern costs against the seed's, measured side by side.

The two presets differ only in the stride of conv layer 14 (157 vs 79 output samples), so the
reference pattern does about 6.5 % more multiply-adds. Both models are built with the same seeded
weights, exported through torch.onnx and run in onnxruntime (CPU provider, ``--threads`` intra-op
threads), alternating preset on every round so that a shared machine's load hits both alike. Each
call's process CPU time is recorded beside its wall time (CPU time is less disturbed by other jobs).
Prints a markdown table: median per-window CPU and wall time per preset and the reference/seed ratio.

    python bench/architecture_cost.py [--rounds 40] [--batch 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

PRESETS = ("reference-tensorflow", "seed")


def multiply_adds(spec) -> int:  # noqa: ANN001 - an ArchSpec
    """Analytic forward multiply-adds per window (convolutions and dense layers)."""
    total, prev = 0, spec.in_channels
    for f, n in zip(spec.filters, spec.conv_lengths()):
        total += n * f * prev * spec.kernel_size
        prev = f
    for w in (*spec.dense_widths, spec.num_classes):
        total += prev * w
        prev = w
    return total


def sessions(root: Path, threads: int) -> dict[str, tuple[object, int]]:
    import onnxruntime as ort

    from converters import torch_onnx
    from converters.contract import Source
    from deepepi.models import torch_weights
    from deepepi.models.deepepi_cnn import torch as deepepi_torch
    from deepepi.models.deepepi_cnn.spec import PRESETS as ALL, ArchSpec
    from deepepi.core.preprocessing import Preprocessing

    out = {}
    for name in PRESETS:
        spec = ArchSpec(**ALL[name].fields())
        rng = np.random.default_rng(0)
        weights = {k: (rng.uniform(0.5, 1.5, s) if k.endswith(("gamma", "moving_variance"))
                       else rng.normal(0, 0.1, s)).astype(np.float32) for k, s in spec.weight_shapes().items()}
        model = deepepi_torch.DeepEpiCnn(spec).eval()
        torch_weights.import_weights(model, spec, weights)
        torch_onnx.export(model, spec, root / f"{name}.onnx", Source("bench", "0" * 64, 25, 125, Preprocessing()))
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        out[name] = (ort.InferenceSession(str(root / f"{name}.onnx"), options,
                                          providers=["CPUExecutionProvider"]), multiply_adds(spec))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from converters.contract import realistic_windows

    x = realistic_windows(args.batch, 750, seed=1)
    cpu: dict[str, list[float]] = {p: [] for p in PRESETS}
    wall: dict[str, list[float]] = {p: [] for p in PRESETS}
    with tempfile.TemporaryDirectory() as tmp:
        runs = sessions(Path(tmp), args.threads)
        for session, _ in runs.values():
            session.run(None, {"acc": x})  # warm-up
        for r in range(args.rounds):
            for name in (PRESETS if r % 2 == 0 else PRESETS[::-1]):
                session = runs[name][0]
                c0, w0 = time.process_time(), time.perf_counter()
                session.run(None, {"acc": x})
                cpu[name].append((time.process_time() - c0) / args.batch)
                wall[name].append((time.perf_counter() - w0) / args.batch)

    print(f"DeepEpi reference vs seed stride pattern, onnxruntime CPU, {args.threads} thread(s), batch "
          f"{args.batch}, {args.rounds} alternating rounds; {platform.machine()} {os.cpu_count()} CPUs; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    print("| preset | multiply-adds / window | CPU ms / window (median) | wall ms / window (median) |")
    print("|---|---:|---:|---:|")
    for name in PRESETS:
        print(f"| {name} | {runs[name][1] / 1e6:.2f} M | {np.median(cpu[name]) * 1e3:.4f} | "
              f"{np.median(wall[name]) * 1e3:.4f} |")
    ratio_cpu = np.median(np.array(cpu[PRESETS[0]]) / np.array(cpu[PRESETS[1]]))
    ratio_wall = np.median(np.array(wall[PRESETS[0]]) / np.array(wall[PRESETS[1]]))
    print(f"\nreference / seed: multiply-adds {runs[PRESETS[0]][1] / runs[PRESETS[1]][1]:.3f}, CPU time "
          f"{ratio_cpu:.3f}, wall time {ratio_wall:.3f} (median of per-round ratios)")


if __name__ == "__main__":
    main()
