"""Keep native libraries' console chatter out of the user's view.

Two tools. (1) Quiet start-up: hide the C++ log lines TensorFlow writes to stderr while it is being
imported.

`TF_CPP_MIN_LOG_LEVEL` does not reach these lines: TensorFlow 2.16+ logs them through absl before
absl is initialised (`WARNING: All log messages before absl::InitializeLog() ...`, the oneDNN and
"Could not find cuda drivers" notices), so they appear whatever the variable says. The CLI therefore
installs an import hook that runs the first `import tensorflow` (also when Keras or tf2onnx pulls it
in) with file descriptor 2 pointed at a temporary file, then writes back every captured line that is
not a native log line. If the import raises, everything captured is written back unfiltered, so the
reason is never hidden. `deepepi --verbose` skips the hook; `deepepi doctor` shows the hidden lines.

This module imports no framework; it only wraps the loader of the modules named in NOISY_MODULES.

Running commands quietly (the CLI and the processes it starts call these): ``quiet_native_logs``
raises TF_CPP_MIN_LOG_LEVEL to 3 so that TensorFlow's C++ log lines after start-up (a failed cuInit,
tf.data's "NodeDef mentions attribute use_unbounded_threadpool") stay hidden also where the user set a
lower level; ``route_warnings`` prints each Python warning as one line, ``deepepi: warning: <message>``,
and under torchrun only on rank 0, so a job says each warning once.

(2) ``captured_output``: the TFLite converter and the ExecuTorch runtime print from C++ straight
to file descriptors 1 and 2, which ``contextlib.redirect_stdout`` cannot catch; it points both
descriptors at a temporary file for the duration of a block and keeps the text, so a failure can
quote its last line.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TextIO

NOISY_MODULES = ("tensorflow",)
QUIET_LOG_LEVEL = 3  # TF_CPP_MIN_LOG_LEVEL that hides info, warning and error lines (fatal ones still show)

# glog/absl format: severity letter, MMDD, time, thread id, file:line], e.g.
# "I0000 00:00:1795775365.024958    7826 port.cc:153] oneDNN custom operations are on. ..."
_NATIVE_LINE = re.compile(r"^[IWE]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w./-]+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# cpu_feature_guard's message runs over two lines; the second has no log prefix.
_CONTINUATIONS = ("To enable the following instructions:",)


def is_native_log_line(line: str) -> bool:
    """True for a TensorFlow/absl C++ info, warning or error line (fatal 'F' lines are never hidden)."""
    return bool(_NATIVE_LINE.match(line)) or line.strip() == _ABSL_BANNER


def split_native_lines(text: str) -> tuple[list[str], list[str]]:
    """Split captured stderr into (kept lines, native log lines), keeping each line's newline."""
    kept: list[str] = []
    native: list[str] = []
    previous_native = False
    for line in text.splitlines(keepends=True):
        if is_native_log_line(line) or (previous_native and line.startswith(_CONTINUATIONS)):
            native.append(line)
            previous_native = True
        else:
            kept.append(line)
            previous_native = False
    return kept, native


@contextmanager
def native_logs_hidden() -> Iterator[None]:
    """Run the block with fd 2 captured; write back what is not a native log line afterwards."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr file descriptor at all: nothing to hide
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = text.splitlines(keepends=True) if failed else split_native_lines(text)[0]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Delegates to the real loader; only executing the module runs with native logs hidden."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._inner
        if module.__spec__ is not None:
            module.__spec__.loader = self._inner
        with native_logs_hidden():
            self._inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, get_filename, ...
        return getattr(self._inner, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds NOISY_MODULES through the other finders and wraps their loader."""

    def __init__(self) -> None:
        self._searching = False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in NOISY_MODULES or self._searching:
            return None
        self._searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._searching = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


_FINDER = _QuietFinder()


def install() -> None:
    """Hide native start-up lines of imports that have not happened yet (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def installed() -> bool:
    """Whether the hook is on (a child process the CLI starts installs it too)."""
    return _FINDER in sys.meta_path


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def quiet_native_logs(environ: dict[str, str] | None = None) -> None:
    """Raise TF_CPP_MIN_LOG_LEVEL to QUIET_LOG_LEVEL in ``environ`` (os.environ by default), before
    TensorFlow is imported; child processes inherit it. A higher level, or a value that is not a
    number (TensorFlow's own business), is left as it is; `--verbose` does not call this."""
    env = os.environ if environ is None else environ
    current = env.get("TF_CPP_MIN_LOG_LEVEL", "").strip()
    if current == "" or (current.isdigit() and int(current) < QUIET_LOG_LEVEL):
        env["TF_CPP_MIN_LOG_LEVEL"] = str(QUIET_LOG_LEVEL)


_SHOWN: set[str] = set()  # the messages one_line_warning printed since route_warnings


def one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                     file: TextIO | None = None, line: str | None = None) -> None:
    """warnings.showwarning for the command line: the message alone, no file path or source line,
    and each message once (k-fold processes hand back warnings the parent may have shown already)."""
    text = str(message)
    if text in _SHOWN:
        return
    _SHOWN.add(text)
    print(f"deepepi: warning: {text}", file=sys.stderr)


def is_other_rank() -> bool:
    """Whether this process is a torchrun rank other than 0 (which would repeat rank 0's warnings)."""
    return os.environ.get("RANK", "0").strip() not in ("", "0")


def route_warnings() -> None:
    """Show Python warnings as one line each; silence them on torchrun ranks other than 0. Call once
    per process the CLI starts (the CLI itself, and its k-fold children through their initializer)."""
    _SHOWN.clear()
    warnings.showwarning = one_line_warning
    if is_other_rank():
        warnings.simplefilter("ignore")


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
