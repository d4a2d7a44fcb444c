"""A directory that appears whole or not at all: ``deepepi.core.io``'s atomic writes, for a folder
(recorded in the open WriteSet like a file, so a later failure of the command removes it again).

The folder is built under io's temporary name (``.deepepi-tmp-<pid>-<random>-<final name>``) beside
its final place and renamed there only when the block succeeds; a process killed before the rename
leaves a temporary folder that the next atomic write into that parent removes (io.remove_stale_temps).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from deepepi.core import io
from deepepi.core.errors import OutputPathError
from deepepi.core.io import TEMP_PREFIX, remove_stale_temps


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a new empty folder beside ``path``; on success it replaces ``path`` (absent, or an
    empty folder), else it is removed."""
    path = Path(path)
    io.make_dirs(path.parent)
    remove_stale_temps(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=f"-{path.name}", dir=path.parent))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)  # mkdtemp creates 0700; a run directory gets normal permissions
    try:
        try:
            yield tmp
        except OutputPathError as err:  # name the file by its final path, not the staging folder's
            raise OutputPathError(str(err).replace(str(tmp), str(path))) from None
        if path.exists():
            path.rmdir()
        io.note_replace(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
