"""The tox gate itself: a framework test skips where the framework is optional, fails where required."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
INNER_TEST = """
import pytest

@pytest.mark.torch
def test_needs_framework():
    assert True

def test_framework_free():
    assert True
"""


def _run_inner(tmp_path: Path, required: str) -> subprocess.CompletedProcess:
    # The inner conftest is ours, with torch mapped to a module that is never installed.
    source = CONFTEST.read_text().replace('{"torch": "torch",', '{"torch": "deepepi_absent_framework",')
    assert "deepepi_absent_framework" in source
    (tmp_path / "conftest.py").write_text(source)
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    torch: needs PyTorch\n    tf: needs TensorFlow\n")
    env = {k: v for k, v in os.environ.items() if k != "DEEPEPI_REQUIRE"}
    if required:
        env["DEEPEPI_REQUIRE"] = required
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("required,code,outcome", [
    ("", 0, "1 passed, 1 skipped"),
    ("torch", 1, "1 passed, 1 error"),  # the framework test fails in setup, before its body runs
])
def test_missing_framework_skips_or_fails(tmp_path: Path, required: str, code: int, outcome: str) -> None:
    result = _run_inner(tmp_path, required)
    assert result.returncode == code, result.stdout + result.stderr
    assert outcome in result.stdout
    if required:
        assert "deepepi_absent_framework is required in this environment" in result.stdout
