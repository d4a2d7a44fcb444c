"""Atomic file writing and guarded input reading.

Every artefact goes to a temporary file in the target folder, then is renamed, so a crash, Ctrl-C
or failed check never leaves a half-written file under the final name. Temporary files are named
``.deepepi-tmp-<pid>-<random>-<final name>``; a process killed before its rename (kill -9) leaves
one behind, and the next write into that folder removes every such file whose process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterable, Iterator

from deepepi.core.errors import DeepEpiError, OutputPathError

if TYPE_CHECKING:
    import numpy as np

TEMP_PREFIX = ".deepepi-tmp-"
_TEMP_PID = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-")
_cleaned: set[Path] = set()  # folders already swept by this process


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete ``.deepepi-tmp-<pid>-*`` files in ``directory`` whose writing process no longer exists.

    Files of live processes (another deepepi writing into the same folder) are left alone.
    """
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_PID.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    A character device or a pipe (``--report /dev/null``) is written directly: renaming a file
    onto it would replace the device node itself (as root, /dev/null became a regular file). A
    block device is refused.
    """
    path = Path(path)
    mode = _mode(path)
    if stat.S_ISBLK(mode):
        raise OutputPathError("is a block device; deepepi will not write to it", source=str(path))
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent.resolve()
    if folder not in _cleaned:
        remove_stale_temps(folder)
        _cleaned.add(folder)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=f"-{path.name}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; artefacts get normal permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def open_input(path: str | Path, kind: str, error: type[DeepEpiError], *,
               encoding: str = "utf-8", newline: str | None = None) -> IO[str]:
    """Open an input text file; a missing file, a directory, a device (/dev/zero never ends) or an
    OS refusal is ``error`` naming it."""
    if stat.S_ISCHR(_mode(path)) or stat.S_ISBLK(_mode(path)):
        raise error(f"expected a {kind} file, got a device", source=str(path))
    try:
        return open(path, encoding=encoding, newline=newline)
    except FileNotFoundError:
        raise error(f"{kind} file not found", source=str(path)) from None
    except IsADirectoryError:
        raise error(f"expected a {kind} file, got a directory", source=str(path)) from None
    except OSError as exc:
        raise error(f"cannot read {kind}: {exc.strerror}", source=str(path)) from None


MAX_TEXT_BYTES = 64 << 20  # configs and run files are kilobytes; this stops /dev/zero or a FIFO


def read_text(path: str | Path, kind: str, error: type[DeepEpiError], *,
              limit: int = MAX_TEXT_BYTES) -> str:
    """Read a small UTF-8 text file whole; larger than ``limit`` (or endless) or not UTF-8 is ``error``."""
    with open_input(path, kind, error, encoding="utf-8-sig") as fh:
        try:
            text = fh.read(limit + 1)
        except UnicodeDecodeError:
            raise error("not UTF-8 text", source=str(path)) from None
        except OSError as exc:
            raise error(f"cannot read {kind}: {exc.strerror}", source=str(path)) from None
    if len(text) > limit:
        raise error(f"larger than {limit >> 20} MiB; not a {kind} file", source=str(path))
    return text


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name one file (same path after resolving links, or same inode)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwrite(output: str | Path, inputs: Iterable[str | Path], *, option: str = "output") -> None:
    """Raise OutputPathError when ``output`` resolves to one of ``inputs``: a writer never destroys its input."""
    for inp in inputs:
        if inp is not None and same_file(output, inp):
            raise OutputPathError(f"{option} {output} is the input file {inp}; choose another path",
                                  source=str(output))


def _mode(path: str | Path) -> int:
    try:
        return os.stat(path).st_mode
    except OSError:
        return 0  # open() reports what is wrong


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def save_npz(path: str | Path, arrays: dict[str, np.ndarray], *, compressed: bool = False) -> None:
    """Write arrays to ``.npz`` atomically; object arrays are refused so no pickle is ever needed."""
    import numpy as np  # here, not at the top: the CLI's start-up (`deepepi --help`) does not need numpy

    for key, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {key!r} has dtype object; npz files here never hold pickles")
    saver = np.savez_compressed if compressed else np.savez
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            saver(fh, **arrays)


def sha256_file(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
