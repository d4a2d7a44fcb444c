"""The one gate every command goes through: its inputs, its outputs, its lock, its all-or-nothing writes.

Every path parameter of every command is declared with one of three click types:

- ``InputPath``: a file (or, with ``run=True``, a run directory or a model file in one) the command
  reads. A run directory stands for the files a run is read from (config.json, the model, weights).
- ``OutputPath``: a file the command writes; ``derived`` names what it writes beside it
  (``X.json`` sidecars).
- ``OutputDir``: a folder the command writes into; ``lock=True`` holds ``core.runlock`` on it.

``GuardedCommand.invoke`` runs before the command's own code: it refuses, in one line, an output
that resolves to an input (same path, ``./`` path, symlink, hard link, a folder that holds it) or
that is a symlink loop; takes the directory locks; and opens a ``core.io`` WriteSet so that every
file the command writes is rolled back when it fails or is interrupted (a ``DeepEpiError`` with
``keeps_outputs``, e.g. an interrupted training that promises ``--resume``, keeps them).

``GuardedGroup.add_command`` accepts only guarded commands whose path parameters are all declared,
so a new command cannot be registered unguarded (the CLI would not start); the path-identity rules
themselves live in ``deepepi.core.io``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

import click

from deepepi.core import io, runlock
from deepepi.core.errors import OutputPathError

# The files a run directory is read from (deepepi.runs.layout names; kept here as plain names so the
# CLI's start-up imports nothing below core).
RUN_INPUT_FILES = ("config.json", "model.keras", "model.pt", "weights.npz", "threshold.json",
                   "init_weights.npz", "resume/run.json", "val_events.csv", "test_events.csv", "data.json")
MODEL_SUFFIXES = (".keras", ".pt", ".h5")


class InputPath(click.Path):
    """A path the command reads; ``run``: may be a run directory (or a model file inside one)."""

    role = "input"

    def __init__(self, *, run: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (str, os.PathLike)) and io.is_symlink_loop(value):
            self.fail(f"{value}: is a symlink loop, not a file", param, ctx)
        return super().convert(value, param, ctx)


class OutputPath(click.Path):
    """A file the command writes; ``derived``: suffixes of files written beside it (``X`` + suffix)."""

    role = "output"

    def __init__(self, *, derived: tuple[str, ...] = (), **kwargs: Any) -> None:
        kwargs.setdefault("dir_okay", False)
        super().__init__(**kwargs)
        self.derived = derived


class OutputDir(click.Path):
    """A folder the command writes into; ``lock``: one writer at a time (core.runlock)."""

    role = "output_dir"

    def __init__(self, *, lock: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("file_okay", False)
        super().__init__(**kwargs)
        self.lock = lock


DECLARED = (InputPath, OutputPath, OutputDir)


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (tuple, list)):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _label(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return (param.human_readable_name or param.name or "argument").upper()


def _run_files(path: str) -> list[str]:
    """A run directory (or a model file in one) stands for the files a run is read from."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent if p.suffix in MODEL_SUFFIXES else None
    if folder is None:
        return []
    return [str(folder / name) for name in RUN_INPUT_FILES if (folder / name).exists()]


def collect(ctx: click.Context) -> tuple[list[tuple[str, str]], list[tuple[str, str, bool, Any]]]:
    """(inputs, outputs) of the parsed command: (option, path) and (option, path, is_dir, type)."""
    inputs: list[tuple[str, str]] = []
    outputs: list[tuple[str, str, bool, Any]] = []
    for param in ctx.command.params:
        kind = param.type
        values = _values(ctx.params.get(param.name or ""))
        label = _label(param)
        if isinstance(kind, InputPath):
            for v in values:
                inputs.append((label, v))
                if kind.run:
                    inputs += [(label, f) for f in _run_files(v)]
        elif isinstance(kind, OutputPath):
            for v in values:
                outputs.append((label, v, False, kind))
                outputs += [(label, v + suffix, False, kind) for suffix in kind.derived]
        elif isinstance(kind, OutputDir):
            outputs += [(label, v, True, kind) for v in values]
    return inputs, outputs


def check(inputs: list[tuple[str, str]], outputs: list[tuple[str, str, bool, Any]]) -> None:
    """Refuse (one OutputPathError) an output that is an input, holds one, or is a symlink loop."""
    for option, out, is_dir, _ in outputs:
        if io.is_symlink_loop(out):
            raise OutputPathError(f"{option} {out} is a symlink loop; choose another path")
        for in_option, inp in inputs:
            if io.same_file(out, inp):
                raise OutputPathError(f"{option} {out} is the input file {inp} ({in_option}); "
                                      "choose another path")
            if (is_dir or Path(out).is_dir()) and io.contains(out, inp):
                raise OutputPathError(f"{option} {out} holds the input file {inp} ({in_option}); "
                                      "choose another path")


class GuardedCommand(click.Command):
    """A click command whose declared outputs are checked against its inputs before it runs, whose
    locked output folders are locked while it runs, and whose writes are all-or-nothing."""

    def invoke(self, ctx: click.Context) -> Any:
        inputs, outputs = collect(ctx)
        check(inputs, outputs)
        with contextlib.ExitStack() as stack:
            for _, out, is_dir, kind in outputs:
                if is_dir and kind.lock:
                    stack.enter_context(runlock.hold(out, ctx.command_path))
            with all_or_nothing():
                return super().invoke(ctx)


_last_undone: list[Path] = []


def last_undone() -> list[Path]:
    """The files the last failed command had written and were removed again (for the abort line)."""
    return list(_last_undone)


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Keep the command's writes if it returns (or exits deliberately, or its error keeps them);
    roll them all back otherwise."""
    writes = io.begin_writes()
    try:
        yield
    except click.exceptions.Exit as exc:
        io.end_writes(writes, keep=True)
        raise exc
    except BaseException as exc:
        keep = bool(getattr(exc, "keeps_outputs", False))
        _last_undone[:] = io.end_writes(writes, keep=keep)
        raise
    io.end_writes(writes, keep=True)


def undeclared(command: click.Command) -> list[str]:
    """Path parameters of ``command`` that are not declared as InputPath / OutputPath / OutputDir."""
    return [_label(p) for p in command.params
            if isinstance(p.type, click.Path) and not isinstance(p.type, DECLARED)]


class GuardedGroup(click.Group):
    """A group that registers guarded commands only, with every path parameter declared."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if isinstance(cmd, click.Group):
            if not isinstance(cmd, GuardedGroup):
                raise TypeError(f"command group {cmd.name!r} must be a GuardedGroup (deepepi.cli.guarded)")
        elif not isinstance(cmd, GuardedCommand):
            raise TypeError(f"command {cmd.name!r} must be a GuardedCommand (deepepi.cli.guarded.command)")
        else:
            missing = undeclared(cmd)
            if missing:
                raise TypeError(f"command {cmd.name!r}: path parameters {missing} must be InputPath, "
                                "OutputPath or OutputDir (deepepi.cli.guarded)")
        super().add_command(cmd, name)


GuardedGroup.command_class = GuardedCommand
GuardedGroup.group_class = GuardedGroup


def command(*args: Any, **kwargs: Any) -> Any:
    """``click.command`` making a GuardedCommand."""
    kwargs.setdefault("cls", GuardedCommand)
    return click.command(*args, **kwargs)


def group(*args: Any, **kwargs: Any) -> Any:
    """``click.group`` making a GuardedGroup."""
    kwargs.setdefault("cls", GuardedGroup)
    return click.group(*args, **kwargs)
