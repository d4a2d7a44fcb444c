"""Shared checks of the hostile-input suite (tests/cli/test_hostile_*.py).

Every case runs the real `deepepi` entry point (in-process, so hundreds of cases stay fast) and
asserts the promise of README: exit code as documented, one `deepepi: error:` line on stderr
(warnings aside), no traceback, the inputs byte-identical afterwards, no half-written output and
no temporary file left behind.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest

from deepepi.cli import main
from deepepi.core.io import TEMP_PREFIX


def run(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """Run `deepepi ARGS` in-process: (exit code, stdout, stderr). Any exception other than the
    CLI's own SystemExit propagates and fails the test: that would be a traceback for a user."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip() and not line.startswith("deepepi: warning:")]


def assert_refused(result: tuple[int, str, str], *fragments: str, code: int = 2) -> str:
    """Exit ``code``, exactly one `deepepi: error:` line holding every fragment, no traceback."""
    rc, out, err = result
    assert "Traceback" not in out + err
    lines = error_lines(err)
    assert rc == code, (rc, err)
    assert len(lines) == 1 and lines[0].startswith("deepepi: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def fingerprint(*paths: Path) -> dict[Path, str]:
    """sha256 of each input file, to prove a command left it untouched."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def assert_untouched(before: dict[Path, str]) -> None:
    assert fingerprint(*before) == before


def assert_no_leftovers(folder: Path, *absent: Path) -> None:
    """No deepepi temp file in ``folder`` and none of the ``absent`` outputs was created."""
    temps = [p.name for p in folder.rglob(f"{TEMP_PREFIX}*")]
    assert temps == [], temps
    for path in absent:
        assert not path.exists(), path
