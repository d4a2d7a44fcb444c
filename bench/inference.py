"""Benchmark: DeepEpi inference through onnxruntime against native Keras and PyTorch, and verify time.

One DeepEpi model (architecture ``--preset``, default the shipped reference pattern; window 750,
seeded random weights) is built in both frameworks
with identical weights and exported through the real converters. Measured in one process:
- single-window latency p50/p99 (ms) with ``--threads`` intra-op threads (default 1) for each of
  onnxruntime (both exports), Keras ``model.predict``, Keras direct ``model(x, training=False)``
  (eager, and inside a tf.function), Keras ``predict_on_batch`` and PyTorch eager;
- batch throughput (windows/s) at ``--batch`` windows per call, same thread setting;
- `deepepi verify` wall time on ``--verify-windows`` random windows (default 10,000; onnxruntime's
  default threads), the same-weights comparison of the two exports.
Prints a markdown table (and writes JSON with --json).

    python bench/inference.py [--preset reference-tensorflow|reference-pytorch|seed] [--repeats 200]
        [--batch 256] [--threads 1] [--verify-windows 10000]
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

WINDOW = 750


def timings(fn: Callable[[], object], repeats: int, warmup: int = 10) -> tuple[np.ndarray, float]:
    """Wall seconds per call of ``fn`` after ``warmup`` untimed calls, and the process CPU time
    over wall time (how many cores the runtime really kept busy, whatever its thread setting)."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    cpu_start = time.process_time()
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out, (time.process_time() - cpu_start) / out.sum()


def build_models(threads: int, root: Path, preset: str) -> dict[str, Callable[[np.ndarray], object]]:
    """The runners under test, each taking raw milli-g windows; exports written under ``root``."""
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import torch

    from converters import keras_onnx, torch_onnx
    from converters.contract import Source
    from deepepi.models import keras_weights
    from deepepi.models.deepepi_cnn import keras as deepepi_keras
    from deepepi.models import torch_weights
    from deepepi.models.deepepi_cnn import torch as deepepi_torch
    from deepepi.models.deepepi_cnn.spec import PRESETS, ArchSpec
    from deepepi.core.preprocessing import Preprocessing

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    torch.set_num_threads(threads)
    spec, pre = ArchSpec(**PRESETS[preset].fields()), Preprocessing()
    rng = np.random.default_rng(0)
    keras_model = deepepi_keras.build_keras_model(spec)
    weights = {k: (rng.uniform(0.5, 1.5, s) if k.endswith(("gamma", "moving_variance"))
                   else rng.normal(0, 0.1, s)).astype(np.float32) for k, s in spec.weight_shapes().items()}
    keras_weights.import_weights(keras_model, spec, weights)
    torch_model = deepepi_torch.DeepEpiCnn(spec).eval()
    torch_weights.import_weights(torch_model, spec, weights)
    source = Source("bench", "0" * 64, 25, 125, pre)
    keras_onnx.export(keras_model, spec, root / "tf.onnx", source)
    torch_onnx.export(torch_model, spec, root / "torch.onnx", source)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    sessions = {name: ort.InferenceSession(str(root / f"{name}.onnx"), options,
                                           providers=["CPUExecutionProvider"])
                for name in ("tf", "torch")}

    def torch_eager(raw: np.ndarray) -> object:
        with torch.no_grad():
            return torch.softmax(torch_model(torch.from_numpy(pre.apply(raw))), dim=-1)

    graph_call = tf.function(lambda x: keras.ops.softmax(keras_model(x, training=False)))
    return {
        "onnxruntime (tf2onnx export)": lambda raw: sessions["tf"].run(None, {"acc": raw}),
        "onnxruntime (torch.onnx export)": lambda raw: sessions["torch"].run(None, {"acc": raw}),
        "Keras model.predict": lambda raw: keras_model.predict(pre.apply(raw), verbose=0,
                                                               batch_size=len(raw)),
        "Keras model(x) direct (eager)": lambda raw: keras.ops.softmax(keras_model(pre.apply(raw),
                                                                                   training=False)),
        "Keras predict_on_batch": lambda raw: keras_model.predict_on_batch(pre.apply(raw)),
        "Keras model(x) in tf.function": lambda raw: graph_call(tf.constant(pre.apply(raw))),
        "PyTorch eager": torch_eager,
    }


def verify_seconds(root: Path, windows: int) -> float:
    from deepepi.verify.runner import verify

    start = time.perf_counter()
    report = verify(root / "tf.onnx", root / "torch.onnx", random_n=windows, seed=1)
    seconds = time.perf_counter() - start
    if not report.passed:
        raise SystemExit("verify failed on same-weights exports:\n" + report.table())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed single-window calls per runner")
    parser.add_argument("--batch", type=int, default=256, help="windows per call for throughput")
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for every runtime")
    parser.add_argument("--verify-windows", type=int, default=10_000)
    parser.add_argument("--preset", default="reference-tensorflow",
                        choices=["reference-tensorflow", "reference-pytorch", "seed"])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from converters.contract import realistic_windows
    from deepepi.core.io import write_json

    single = realistic_windows(1, WINDOW, seed=0)
    batch = realistic_windows(args.batch, WINDOW, seed=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, runner in build_models(args.threads, root, args.preset).items():
            lat, _ = timings(lambda: runner(single), args.repeats)
            thr, cores = timings(lambda: runner(batch), args.batch_repeats, warmup=2)
            rows.append({"runtime": name, "p50_ms": float(np.percentile(lat, 50) * 1e3),
                         "p99_ms": float(np.percentile(lat, 99) * 1e3),
                         "windows_per_s": float(args.batch / np.median(thr)), "cores_busy": cores})
        verify_s = verify_seconds(root, args.verify_windows)

    print(f"DeepEpi inference, preset {args.preset}, window {WINDOW}, {args.threads} intra-op thread(s); "
          f"{platform.machine()} {os.cpu_count()} CPUs; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    print(f"| runtime | 1-window p50 (ms) | 1-window p99 (ms) | batch {args.batch} (windows/s) "
          f"| cores busy (batch) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['runtime']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['windows_per_s']:.0f} "
              f"| {r['cores_busy']:.1f} |")
    print(f"\n`deepepi verify` (same-weights, CPU provider) on {args.verify_windows} windows: "
          f"{verify_s:.1f} s")
    if args.json:
        write_json(args.json, {"preset": args.preset, "rows": rows, "verify_seconds": verify_s,
                               "verify_windows": args.verify_windows, "threads": args.threads,
                               "batch": args.batch})


if __name__ == "__main__":
    main()
