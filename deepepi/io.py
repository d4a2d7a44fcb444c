"""Atomic file writing: every artefact goes to a temporary file in the target folder, then is renamed.

A crash, Ctrl-C or failed check therefore never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

from deepepi.errors import DeepEpiError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
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
    """Open an input text file; a missing file, a directory or an OS refusal is ``error`` naming it."""
    try:
        return open(path, encoding=encoding, newline=newline)
    except FileNotFoundError:
        raise error(f"{kind} file not found", source=str(path)) from None
    except IsADirectoryError:
        raise error(f"expected a {kind} file, got a directory", source=str(path)) from None
    except OSError as exc:
        raise error(f"cannot read {kind}: {exc.strerror}", source=str(path)) from None


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
