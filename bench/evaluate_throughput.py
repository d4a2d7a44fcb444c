"""Benchmark: `deepepi evaluate` on 100,000 windows, inference included (onnxruntime CPU, 2 threads).

The default DeepEpi model (configs/nnConfig_deep.json architecture, seeded random weights) is
exported through the real PyTorch converter; the CSV tiles synthetic events under new event ids
(``bench/data_pipeline.build_csv``). The whole command (load, windowing, inference, threshold sweep,
both alarm logics, SzCORE, 1,000 bootstrap resamples, plots, report) runs in a child process, so
its wall time, CPU time and peak RSS (RUSAGE_CHILDREN) are the command's alone. Target: <= 60 s on
2 cores. The 1-minute load average before and after is recorded: on a shared machine the wall time
grows with the other jobs' load, the CPU time much less.

    python bench/evaluate_throughput.py [--windows 100000] [--threads 2] [--json result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_pipeline import build_csv  # noqa: E402 - the sibling bench script's CSV builder

TARGET_SECONDS = 60.0
WINDOWS_PER_EVENT, ROWS_PER_EVENT = 31, 36  # a synthetic 3-minute event: 36 datapoints -> 31 windows


def export_model(path: Path) -> Path:
    import torch

    from converters import torch_onnx
    from deepepi.core.config import load_config
    from deepepi.runs.resolve import source_for
    from deepepi.models.deepepi_cnn.spec import ArchSpec
    from deepepi.models.deepepi_cnn.torch import DeepEpiCnn
    from deepepi.models.torch_checkpoint import save_checkpoint

    cfg = load_config(None)
    spec = ArchSpec.from_config(cfg)
    torch.manual_seed(0)
    model = DeepEpiCnn(spec).eval()
    checkpoint = path.with_suffix(".pt")
    save_checkpoint(checkpoint, model, spec, cfg.to_dict())
    torch_onnx.export(model, spec, path, source_for(checkpoint, cfg))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = -(-args.windows // WINDOWS_PER_EVENT) * ROWS_PER_EVENT * 102 // 100  # 2% spare: skipped datapoints
    with tempfile.TemporaryDirectory(prefix="deepepi-bench-") as tmp:
        tmp_path = Path(tmp)
        model = export_model(tmp_path / "deepepi.onnx")
        csv_path = tmp_path / "bench.csv"
        build_csv(csv_path, rows)
        out = tmp_path / "eval"
        cmd = [sys.executable, "-c", "from deepepi.cli import main; main()", "evaluate", str(model),
               "--data", str(csv_path), "--threads", str(args.threads), "--alarm-logic", "app", "-o", str(out)]
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        child = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()[0]
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return 2
        results = json.loads((out / "results.json").read_text())
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = usage.ru_maxrss * 1024  # Linux reports KiB
    data, model_res = results["data"], results["models"][0]
    result = {"windows": data["windows"], "events": data["events"], "threads": args.threads,
              "wall_s": round(wall, 1), "load_and_window_s": round(data["load_seconds"], 1),
              "inference_s": round(model_res["inference_seconds"], 1),
              "windows_per_s_inference": round(data["windows"] / model_res["inference_seconds"]),
              "rest_s": round(wall - data["load_seconds"] - model_res["inference_seconds"], 1),
              "child_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
              "peak_rss_mib": round(peak / 2**20), "x_mib": round(data["windows"] * data["window"] * 4 / 2**20),
              "machine": f"{platform.machine()} ({platform.processor() or 'cpu'}), "
                         f"{len(os.sched_getaffinity(0))} cores",
              "load_average_1min": [round(load_before, 1), round(load_after, 1)],
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "target": f"<= {TARGET_SECONDS:.0f} s: {'met' if wall <= TARGET_SECONDS else 'MISSED'}"}
    print(json.dumps(result, indent=2))
    if args.json:
        from deepepi.core.io import write_json

        write_json(args.json, result)
    return 0 if wall <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
