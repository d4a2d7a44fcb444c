"""Keep native libraries' console chatter (TFLite converter, ExecuTorch, XNNPACK) out of the user's view.

The TFLite converter and the ExecuTorch runtime print from C++ straight to file descriptors 1 and 2,
which ``contextlib.redirect_stdout`` cannot catch. ``captured_output`` points both descriptors at a
temporary file for the duration of a block; the text is kept so a failure can quote its last line.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from typing import Iterator, TextIO


@dataclass
class Captured:
    """What a quiet block printed (filled in when the block ends)."""

    text: str = ""

    def last_line(self) -> str:
        lines = [line for line in self.text.splitlines() if line.strip()]
        return lines[-1] if lines else ""


@contextlib.contextmanager
def captured_output() -> Iterator[Captured]:
    """Run a block with stdout/stderr (Python and C level) and Python warnings captured, not shown."""
    captured = Captured()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with _fd_text(1) as out, _fd_text(2) as err, \
                    contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")


def _fd_text(fd: int) -> TextIO:
    """A text stream on descriptor ``fd`` that leaves it open when closed: Python-level prints go
    to the redirected descriptor even where sys.stdout was replaced (pytest's capture)."""
    return open(fd, "w", closefd=False, buffering=1)
