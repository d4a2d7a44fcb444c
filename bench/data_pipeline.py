"""Benchmark: load_csv + make_windows on an OSDB-sized CSV (500,000 datapoint rows, all 510 columns).

The CSV is built by tiling synthetic events under new event ids, into a temporary folder. The
load + windowing runs in a child process so that its peak RSS (RUSAGE_CHILDREN) is that of the
pipeline alone. Targets: at most 60 s, and peak RSS at most 2.5x the final float32 X array.

    python bench/data_pipeline.py [--rows 500000] [--json result.json]
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

TARGET_SECONDS = 60.0
TARGET_RSS_RATIO = 2.5


def build_csv(path: Path, rows: int, seed: int = 0) -> int:
    """Write ``rows`` datapoint rows by repeating synthetic events with fresh event ids."""
    from deepepi.data.synth import synthesize

    source = synthesize(path.parent / "source", users=8, events=60, seed=seed).csv_path
    header, *lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    event_ids = [line[:line.index(",")] for line in lines]
    tails = [line[line.index(","):] for line in lines]
    written, copy = 0, 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(header)
        while written < rows:
            n = min(rows - written, len(lines))
            offset = copy * 1_000_000
            fh.writelines(f"{int(e) + offset}{t}" for e, t in zip(event_ids[:n], tails[:n]))
            written += n
            copy += 1
    return written


def measure(csv_path: str) -> None:
    """Child process: time load + windowing, print one JSON line."""
    from deepepi.data.csvio import load_csv
    from deepepi.data.windows import make_windows

    t0 = time.perf_counter()
    df = load_csv(csv_path)
    t1 = time.perf_counter()
    windows = make_windows(df)
    t2 = time.perf_counter()
    print(json.dumps({"rows": len(df), "windows": len(windows), "x_nbytes": int(windows.X.nbytes),
                      "load_s": round(t1 - t0, 2), "windows_s": round(t2 - t1, 2)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="datapoint rows in the CSV")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return 0
    with tempfile.TemporaryDirectory(prefix="deepepi-bench-") as tmp:
        csv_path = Path(tmp) / "bench.csv"
        t0 = time.perf_counter()
        rows = build_csv(csv_path, args.rows)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        child = subprocess.run([sys.executable, __file__, "--measure", str(csv_path)],
                               capture_output=True, text=True, check=True)
        total_s = time.perf_counter() - t0
        csv_bytes = csv_path.stat().st_size
    result = json.loads(child.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB
    result.update({"csv_rows": rows, "csv_mib": round(csv_bytes / 2**20, 1), "build_s": round(build_s, 1),
                   "child_total_s": round(total_s, 2), "peak_rss_mib": round(peak / 2**20, 1),
                   "x_mib": round(result["x_nbytes"] / 2**20, 1),
                   "rss_ratio": round(peak / result["x_nbytes"], 2),
                   "machine": f"{platform.machine()} ({platform.processor() or 'cpu'}), "
                              f"{len(os.sched_getaffinity(0))} cores",
                   "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
    ok = total_s <= TARGET_SECONDS and result["rss_ratio"] <= TARGET_RSS_RATIO
    result["targets"] = f"<= {TARGET_SECONDS:.0f} s and RSS <= {TARGET_RSS_RATIO}x X: {'met' if ok else 'MISSED'}"
    print(json.dumps(result, indent=2))
    if args.json:
        from deepepi.core.io import write_json

        write_json(args.json, result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
