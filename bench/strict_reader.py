"""Benchmark: the cost of the strict CSV reader contract inside load_csv.

``csvio._scan_cells`` (cell count of every row, boolean cells) reads the whole file once more, with
numpy over raw bytes. This times load_csv with and without that pass on a tiled synthetic CSV and
reports medians and their ratio (same process, same file, alternating runs).

    python bench/strict_reader.py [--rows 40000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from deepepi.data import csvio
from deepepi.data.synth import synthesize


def build_csv(folder: Path, rows: int) -> Path:
    """Repeat the rows of a small synthetic dataset under new event ids until ``rows`` rows."""
    lines = synthesize(folder / "synth", users=2, events=6, seed=0).csv_path.read_text().splitlines()
    header, body = lines[0], lines[1:]
    out = folder / "tiled.csv"
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(header + "\n")
        written, copy = 0, 0
        while written < rows:
            for line in body[: rows - written]:
                event, rest = line.split(",", 1)
                fh.write(f"{int(event) + 100_000 * copy},{rest}\n")
            written += min(len(body), rows - written)
            copy += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build_csv(Path(tmp), args.rows)
        strict, loose, scan = [], [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            csvio.load_csv(path)
            strict.append(time.perf_counter() - t)
            with mock.patch.object(csvio, "_scan_cells", lambda *a: None):
                t = time.perf_counter()
                csvio.load_csv(path)
                loose.append(time.perf_counter() - t)
            t = time.perf_counter()
            csvio._scan_cells(path, csvio._read_header(path))
            scan.append(time.perf_counter() - t)
        size = path.stat().st_size / 2**20
    s, l, c = (statistics.median(x) for x in (strict, loose, scan))
    print(f"{args.rows} rows, {size:.0f} MiB; median of {args.repeats}: load_csv {s:.3f} s strict, "
          f"{l:.3f} s without the scan; scan alone {c:.3f} s; strict/loose {s / l:.2f}")


if __name__ == "__main__":
    main()
