"""One writer per output directory: an OS file lock on ``DIR/.deepepi-lock`` held for the command's life.

The lock is ``fcntl.flock`` on a file inside the directory, so the kernel releases it when the holder
dies however it dies (kill -9 included): a lock left by a dead process is stale by construction and
simply taken over. The file records the holder's pid and command, which a refused second writer
names. On a file system without flock (some network mounts) the pid alone decides: a recorded pid
that no longer runs is a stale lock and is replaced.

The lock is re-entrant within one process (the CLI takes it for ``--out`` and ``train()`` takes it
again for its run directory). Under torchrun only rank 0 writes, so the other ranks take no lock.
Releasing removes the lock file, and the directory too when the lock created it and it is empty.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Iterator

from deepepi.core import io
from deepepi.core.errors import DeepEpiError

LOCK_NAME = ".deepepi-lock"
_held: dict[str, int] = {}  # real path of the directory -> how many holders in this process


class RunLockedError(DeepEpiError):
    """Another deepepi process is writing into the same output directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> tuple[int | None, str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None, "unknown command"
    pid, _, command = text.partition(" ")
    return (int(pid) if pid.isdigit() else None), (command or "unknown command")


def _refuse(directory: Path, path: Path) -> RunLockedError:
    pid, command = _holder(path)
    who = f"pid {pid}, {command}" if pid is not None else command
    return RunLockedError(f"another deepepi is writing into this directory ({who}); wait for it to finish "
                          "or choose another output directory", source=str(directory))


def _secondary_rank() -> bool:
    """A torchrun rank other than 0: it writes nothing, so it takes no lock."""
    return os.environ.get("RANK", "0") not in ("", "0")


def _take(directory: Path, path: Path) -> int:
    """Open and lock ``path``; the open descriptor, or RunLockedError naming the holder."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refuse(directory, path) from None
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            return _take_by_pid(directory, path)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its previous holder unlinked while we waited
            return fd
        os.close(fd)


def _take_by_pid(directory: Path, path: Path) -> int:
    """No flock here: the recorded pid decides (a dead one is a stale lock, replaced)."""
    while True:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pid, _ = _holder(path)
            if pid is not None and pid != os.getpid() and _alive(pid):
                raise _refuse(directory, path) from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # stale: its process is gone


@contextlib.contextmanager
def hold(directory: str | Path, command: str) -> Iterator[None]:
    """Hold the lock of ``directory`` (created if missing) for the block; refused in one line when
    another live process holds it."""
    directory = Path(directory)
    if _secondary_rank():
        yield
        return
    key = os.path.realpath(directory)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    created = list(reversed(io.make_dirs(directory)))  # innermost first, removed again if left empty
    path = directory / LOCK_NAME
    try:
        fd = _take(directory, path)
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {' '.join(command.split())}\n".encode())
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
