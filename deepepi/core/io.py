"""Atomic file writing, all-or-nothing write sets, path identity, and guarded input reading.

Every artefact goes to a temporary file in the target folder, then is renamed, so a crash, Ctrl-C
or failed check never leaves a half-written file under the final name. Temporary files are named
``.deepepi-tmp-<pid>-<random>-<final name>``; a process killed before its rename (kill -9) leaves
one behind, and the next write into that folder removes every such file whose process is gone.

A command's files together are all-or-nothing too: while a ``WriteSet`` is open (``begin_writes``;
the CLI opens one around every command), each rename records the file it created or the old file it
replaced (kept as a hard link under a temporary name), and a failure rolls every one of them back.
A write that fails because the disk is full or the file-size limit is reached is one
``OutputPathError`` naming the final file.
"""

from __future__ import annotations

import contextlib
import errno
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
        try:
            yield path
        except OSError as exc:  # /dev/full: "No space left on device", named
            if exc.errno not in _FULL:
                raise
            raise OutputPathError(f"cannot write: {_FULL[exc.errno]}", source=str(path)) from None
        return
    make_dirs(path.parent)
    folder = path.parent.resolve()
    if folder not in _cleaned:
        remove_stale_temps(folder)
        _cleaned.add(folder)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=f"-{path.name}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; artefacts get normal permissions
    try:
        try:
            yield tmp_path
            note_replace(path)
            os.replace(tmp_path, path)
        except DeepEpiError:
            raise
        except Exception as exc:  # noqa: BLE001 - only write failures are re-raised as one line
            reason = write_failure(exc) or _probe(tmp_path)
            if reason is None:
                raise
            raise OutputPathError(f"cannot write: {reason}", source=str(path)) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_FULL = {errno.EFBIG: "File too large", errno.ENOSPC: "No space left on device",
         errno.EDQUOT: "Disk quota exceeded"}


def _probe(tmp: Path) -> str | None:
    """Whether writing more to ``tmp`` fails for want of room: some writers (torch.save's zip
    stream) report a refused write only as an unrelated-looking RuntimeError. Not probed where a
    file-size limit is set and SIGXFSZ would kill the process instead of failing the write."""
    try:
        import resource
        import signal
    except ImportError:  # not POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY and signal.getsignal(signal.SIGXFSZ) != signal.SIG_IGN:
        return None
    try:
        with open(tmp, "ab") as fh:
            fh.write(b"\0" * (1 << 16))
            fh.flush()
    except OSError as exc:
        return _FULL.get(exc.errno)
    return None


def write_failure(exc: BaseException) -> str | None:
    """The reason when ``exc`` is a failed write (disk full, file-size limit, quota), else None.
    torch.save and zip writers report such a failure as RuntimeError text, not an errno."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return _FULL[seen.errno]
        text = str(seen)
        for reason in _FULL.values():
            if reason in text:
                return reason
        if isinstance(seen, RuntimeError) and "write failed" in text:
            return "write failed (disk full or file-size limit)"
        seen = seen.__cause__ or seen.__context__
    return None


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


def real_path(path: str | Path) -> str:
    """``path`` with every link resolved as far as it resolves; never raises (a symlink loop stays as is)."""
    return os.path.realpath(os.path.abspath(path))


def is_symlink_loop(path: str | Path) -> bool:
    """True when ``path`` (or a folder on its way) is a symlink that never reaches a file."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name one file (same path after resolving links, or same inode).
    Symlink loops compare by their unresolved path, never raise."""
    if real_path(a) == real_path(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def contains(directory: str | Path, path: str | Path) -> bool:
    """True when ``path`` lies inside ``directory`` (after resolving links) or is that directory."""
    folder, inner = real_path(directory), real_path(path)
    try:
        return os.path.commonpath([folder, inner]) == folder
    except ValueError:
        return False


def refuse_overwrite(output: str | Path, inputs: Iterable[str | Path], *, option: str = "output") -> None:
    """Raise OutputPathError when ``output`` resolves to one of ``inputs``: a writer never destroys its input."""
    for inp in inputs:
        if inp is not None and same_file(output, inp):
            raise OutputPathError(f"{option} {output} is the input file {inp}; choose another path",
                                  source=str(output))


def make_dirs(path: str | Path) -> list[Path]:
    """``mkdir -p``; returns the folders it created (recorded in the open WriteSet, which removes
    them again if they are left empty by a rollback)."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    if _active is not None:
        _active.dirs.extend(reversed(missing))
    return list(reversed(missing))


def remove_tree(path: str | Path) -> None:
    """Remove a file or folder; inside an open WriteSet it is only moved aside (restored on rollback)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if _active is None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        return
    aside = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-aside-{len(_active.backups)}-{path.name}")
    os.replace(path, aside)
    _active.backups.append((path, aside))


class WriteSet:
    """The files and folders one command wrote: committed together or rolled back together."""

    def __init__(self) -> None:
        self.created: list[Path] = []                 # final names that did not exist before
        self.backups: list[tuple[Path, Path]] = []    # (final name, the old content kept aside)
        self.dirs: list[Path] = []                    # folders created, outermost first
        self._seen: set[str] = set()

    def before_replace(self, path: Path) -> None:
        """Called just before a temporary file or folder is renamed onto ``path``."""
        key = os.path.abspath(path)
        if key in self._seen or path.parent.name.startswith(TEMP_PREFIX):
            return  # inside a staging folder (core.atomic_dir): it appears or goes as a whole
        self._seen.add(key)
        if path.is_file() and not path.is_symlink():
            aside = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-old-{len(self.backups)}-{path.name}")
            try:
                os.link(path, aside)
            except OSError:
                shutil.copy2(path, aside)
            self.backups.append((path, aside))
        else:
            self.created.append(path)

    def written(self) -> list[Path]:
        return [*self.created, *(final for final, _ in self.backups)]

    def commit(self) -> None:
        """Keep what was written; drop the old copies."""
        for _, aside in self.backups:
            _remove(aside)
        self._reset()

    def rollback(self) -> list[Path]:
        """Remove every file written, restore every file replaced or removed, remove the folders
        created (when empty); returns the paths the command had written."""
        written = self.written()
        for path in reversed(self.created):
            _remove(path)
        for final, aside in reversed(self.backups):
            with contextlib.suppress(OSError):
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)
                os.replace(aside, final)
        for folder in reversed(self.dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._reset()
        return written

    def _reset(self) -> None:
        self.created, self.backups, self.dirs, self._seen = [], [], [], set()


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


_active: WriteSet | None = None


def note_replace(path: str | Path) -> None:
    """Record in the open WriteSet (if any) that something is about to be renamed onto ``path``."""
    if _active is not None:
        _active.before_replace(Path(path))


def begin_writes() -> WriteSet | None:
    """Open this process's WriteSet; None when one is already open (the outer owner finishes it)."""
    global _active
    if _active is not None:
        return None
    _active = WriteSet()
    return _active


def end_writes(writes: WriteSet | None, *, keep: bool) -> list[Path]:
    """Close the WriteSet ``begin_writes`` returned: commit (``keep``) or roll back; what was undone."""
    global _active
    if writes is None:
        return []
    try:
        if keep:
            writes.commit()
            return []
        return writes.rollback()
    finally:
        _active = None


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
