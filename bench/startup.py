"""Benchmark: CLI start-up time, `deepepi doctor` time, and the native log lines left on stderr.

Each command runs in a fresh interpreter, as a user starts it, with TF_CPP_MIN_LOG_LEVEL removed
from the environment so that only deepepi's own quieting acts. Reported:
- median wall time and median user CPU time of `python -c pass`, `deepepi --help` and
  `deepepi config show` (``--repeats`` runs each, interleaved so that a busy machine slows all three
  alike), and each command's wall time as a multiple of `python -c pass`'s;
- median wall time of `deepepi --help`, `deepepi config show` (``--repeats`` runs each) and
  `deepepi doctor --json` (``--doctor-repeats`` runs; its two framework probes run in parallel),
  beside `python -c "import tensorflow"` and `import torch` timed the same way, which bound it;
- for commands that load TensorFlow (model summary, a one-epoch smoke training, the same as a
  2-fold k-fold whose folds run in child processes, the training's ONNX export),
  the number of stderr lines and of TensorFlow/absl C++ lines, quiet and with `--verbose`.
Prints markdown tables; ``--startup-only`` stops after the first (no framework is loaded).

    python bench/startup.py [--repeats 5] [--doctor-repeats 3] [--startup-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deepepi.core.quiet import split_native_lines

CLI = [sys.executable, "-c", "import sys; from deepepi.cli import main; sys.argv[0] = 'deepepi'; main()"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=_env(), cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"deepepi {' '.join(args)} failed:\n{result.stderr}")
    return elapsed, result


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, user CPU seconds) of one child process; the CPU time is the child's own,
    read from the rusage of waited-for children before and after."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    t0 = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=_env(), cwd=ROOT)
    wall = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr}")
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before


def startup_table(repeats: int) -> None:
    """Start-up against a bare interpreter, measured in the same run (interleaved)."""
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "deepepi --help": [*CLI, "--help"],
                "deepepi config show": [*CLI, "config", "show"]}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            samples[name].append(timed(argv))
    base = statistics.median(wall for wall, _ in samples["python -c pass"])
    print(f"| command ({repeats} runs) | median wall (s) | median user CPU (s) | wall / `python -c pass` |")
    print("|---|---:|---:|---:|")
    for name, runs in samples.items():
        wall = statistics.median(w for w, _ in runs)
        user = statistics.median(u for _, u in runs)
        print(f"| `{name}` | {wall:.3f} | {user:.3f} | {wall / base:.2f} |")


def median_time(args: tuple[str, ...], repeats: int) -> float:
    return statistics.median(run(*args)[0] for _ in range(repeats))


def stderr_lines(args: tuple[str, ...]) -> tuple[int, int, int, int]:
    """(quiet lines, quiet native lines, verbose lines, verbose native lines)."""
    quiet = run(*args)[1].stderr
    loud = run("--verbose", *args)[1].stderr
    return (len(quiet.splitlines()), len(split_native_lines(quiet)[1]),
            len(loud.splitlines()), len(split_native_lines(loud)[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--doctor-repeats", type=int, default=3)
    parser.add_argument("--startup-only", action="store_true",
                        help="Print only the start-up table (python -c pass, --help, config show).")
    args = parser.parse_args()

    startup_table(args.repeats)
    if args.startup_only:
        return
    print()
    print("| command | median wall time (s) |\n|---|---:|")
    for command, repeats in ((("--help",), args.repeats), (("config", "show"), args.repeats),
                             (("doctor", "--json"), args.doctor_repeats)):
        print(f"| `deepepi {' '.join(command)}` | {median_time(command, repeats):.2f} |")
    for module in ("tensorflow", "torch"):
        times = []
        for _ in range(args.doctor_repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, check=True, env=_env())
            times.append(time.perf_counter() - t0)
        print(f"| `python -c \"import {module}\"` | {statistics.median(times):.2f} |")

    smoke = str(ROOT / "configs" / "smoke.json")
    with tempfile.TemporaryDirectory() as tmp:
        synth = Path(tmp) / "synth"
        run("data", "synth", "-o", str(synth), "--users", "4", "--events", "40", "--seed", "1")
        csv = str(synth / "allData.csv")
        commands = {
            "model summary (smoke)": ("model", "summary", "--config", smoke),
            "train, TensorFlow, 1 epoch (smoke)": ("train", "--config", smoke, "--data", csv, "--epochs", "1",
                                                   "--quiet", "--out"),
            "export --onnx of that run": ("export", "--onnx"),
            "train --kfold 2, TensorFlow, 1 epoch (smoke)": ("train", "--kfold", "2", "--config", smoke, "--data",
                                                             csv, "--epochs", "1", "--quiet", "--out"),
        }
        print("\n| command | stderr lines, quiet | of them native | stderr lines, --verbose | of them native |")
        print("|---|---:|---:|---:|---:|")
        for name, command in commands.items():
            if name.startswith("train"):
                prefix = "k" if "--kfold" in command else ""  # the export row reads the plain run in q
                quiet = run(*command, str(Path(tmp) / f"{prefix}q"))[1].stderr
                loud = run("--verbose", *command, str(Path(tmp) / f"{prefix}v"))[1].stderr
                counts = (len(quiet.splitlines()), len(split_native_lines(quiet)[1]),
                          len(loud.splitlines()), len(split_native_lines(loud)[1]))
            elif name.startswith("export"):
                counts = stderr_lines((*command, str(Path(tmp) / "q")))
            else:
                counts = stderr_lines(command)
            print(f"| {name} | " + " | ".join(map(str, counts)) + " |")


if __name__ == "__main__":
    main()
