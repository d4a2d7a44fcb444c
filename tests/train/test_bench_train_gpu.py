"""bench/train_gpu.py runs from source without imbalanced-learn, click, matplotlib or TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.torch, pytest.mark.slow]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "train_gpu.py"
BLOCKED = ("imblearn", "click", "matplotlib", "tensorflow", "keras", "onnx", "onnxruntime", "timescoring")
# A None entry in sys.modules: `import` fails and importlib.util.find_spec says "not installed".
RUN = f"""
import runpy, sys
sys.modules.update(dict.fromkeys({BLOCKED!r}))
sys.argv = [{str(BENCH)!r}, '--smoke', '--no-ddp']
runpy.run_path({str(BENCH)!r}, run_name='__main__')
"""


def test_smoke_run_without_the_optional_packages(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| fp32 | 64 | off |")]
    assert len(rows) == 1 and float(rows[0].split("|")[4].replace(",", "")) > 0
    assert "| bar off |" in done.stdout
