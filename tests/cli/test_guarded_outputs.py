"""Issue 26, deliverable 1: no command can write over what it reads.

The cases are generated from click's own definitions: every command of the real tree, every output
parameter it declares (OutputPath / OutputDir, deepepi.cli.guarded), every input parameter, and every
way of naming the same file (same path, ./ path, symlink, hard link, a symlink loop; for an output
folder also the folder that holds the input). Each must be refused in one line with exit 2 before
any work, the input's sha256 unchanged and nothing new on disk. A path parameter that is not declared
to the mechanism, or an output-like option that is not an output type, fails the test.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import click
import pytest

from cli_tree import root
from hostile import assert_refused, run
from deepepi.cli.guarded import DECLARED, GuardedCommand, GuardedGroup, InputPath, OutputDir, OutputPath, undeclared

OUTPUT_NAMES = {"output", "out", "out_dir", "report_path"}
KINDS = ["same path", "./ path", "symlink", "hard link", "symlink loop"]
DIR_KINDS = KINDS + ["folder holding it", "symlink to that folder"]


def leaves(group: click.Group, words: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            found += leaves(cmd, words + (name,))
        else:
            found.append((words + (name,), cmd))
    return found


COMMANDS = leaves(root())


def _is(param: click.Parameter, kind: type) -> bool:
    return isinstance(param.type, kind)


def cases() -> list[tuple[tuple[str, ...], str, str | None, str]]:
    """(command words, output parameter name, input parameter name or None, kind)."""
    found = []
    for words, cmd in COMMANDS:
        inputs = [p.name for p in cmd.params if _is(p, InputPath)]
        for out in (p for p in cmd.params if _is(p, (OutputPath, OutputDir))):
            kinds = DIR_KINDS if _is(out, OutputDir) else KINDS
            if not inputs:
                found.append((words, out.name, None, "symlink loop"))
            found += [(words, out.name, inp, kind) for inp in inputs for kind in kinds]
    return found


CASES = cases()


def test_every_path_parameter_is_declared_and_every_command_guarded() -> None:
    commands = [" ".join(words) for words, _ in COMMANDS]
    assert len(commands) >= 14, commands  # the tree was walked, not an empty group
    for words, cmd in COMMANDS:
        assert isinstance(cmd, GuardedCommand), words
        assert undeclared(cmd) == [], (words, undeclared(cmd))
        for param in cmd.params:
            if param.name in OUTPUT_NAMES or "-o" in getattr(param, "opts", ()):
                assert _is(param, (OutputPath, OutputDir)), (words, param.name)
    outputs = {(" ".join(w), o) for w, o, _, _ in CASES}
    assert len(outputs) >= 11, outputs  # every command that writes a file or folder
    assert len(CASES) >= 140, len(CASES)


def test_an_unguarded_command_cannot_be_registered() -> None:
    plain = click.command("rogue")(click.option("-o", type=click.Path())(lambda o: None))
    with pytest.raises(TypeError, match="GuardedCommand"):
        GuardedGroup("g").add_command(plain)
    undeclared_path = GuardedCommand("rogue2", params=[click.Option(["-o"], type=click.Path())])
    with pytest.raises(TypeError, match="InputPath, OutputPath or OutputDir"):
        GuardedGroup("g").add_command(undeclared_path)
    assert all(issubclass(t, click.Path) for t in DECLARED)


def _placeholder(param: click.Parameter, tmp: Path) -> str:
    if _is(param, InputPath):
        path = tmp / f"other_{param.name}"
        path.write_text("other input\n", encoding="utf-8")
        return str(path)
    if _is(param, OutputDir):
        return str(tmp / f"outdir_{param.name}")
    if _is(param, OutputPath):
        return str(tmp / f"out_{param.name}")
    if isinstance(param.type, click.Choice):
        return str(param.type.choices[0])
    return "1"


def _argv(words: tuple[str, ...], cmd: click.Command, values: dict[str, str], tmp: Path) -> list[str]:
    argv = list(words)
    for param in cmd.params:
        value = values.get(param.name)
        if value is None and not param.required:
            continue
        value = value if value is not None else _placeholder(param, tmp)
        if isinstance(param, click.Argument):
            argv.append(value)
        else:
            argv += [max(param.opts, key=len), value]
    return argv


def _tree(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links not followed) with its sha256 (files) or kind."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                found[rel] = "link->" + os.readlink(path)
            elif path.is_file():
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[rel] = "dir"
    return found


@pytest.mark.parametrize("words, output, inp, kind", CASES,
                         ids=[f"{' '.join(w)} {o} <- {i} ({k})" for w, o, i, k in CASES])
def test_output_naming_an_input_is_refused(tmp_path, capsys, monkeypatch, words, output, inp, kind) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    cmd = dict((w, c) for w, c in COMMANDS)[words]
    params = {p.name: p for p in cmd.params}
    values: dict[str, str] = {}
    target = None
    if inp is not None:
        if params[inp].type.run:  # a run directory: the files it is read from are the inputs
            run_dir = tmp_path / "run"
            run_dir.mkdir()
            (run_dir / "model.pt").write_bytes(b"trained weights\n")
            target = run_dir / "config.json"
            target.write_text('{"randomSeed": 1}\n', encoding="utf-8")
            values[inp] = str(run_dir)
        else:
            target = tmp_path / "input.csv"
            target.write_text("eventId,type\n1,0\n", encoding="utf-8")
            values[inp] = str(target)
    aliases = {"same path": lambda: str(target),
               "./ path": lambda: "./" + str(target.relative_to(tmp_path)),
               "folder holding it": lambda: str(target.parent)}
    if kind == "symlink":
        (tmp_path / "alias").symlink_to(target)
        alias = str(tmp_path / "alias")
    elif kind == "hard link":
        os.link(target, tmp_path / "alias")
        alias = str(tmp_path / "alias")
    elif kind == "symlink loop":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
        alias = str(tmp_path / "loop")
    elif kind == "symlink to that folder":
        (tmp_path / "alias").symlink_to(target.parent)
        alias = str(tmp_path / "alias")
    else:
        alias = aliases[kind]()
    values[output] = alias
    argv = _argv(words, cmd, values, tmp_path)
    before = _tree(tmp_path)
    line = assert_refused(run(capsys, *argv))
    assert _tree(tmp_path) == before, line  # the input unchanged (sha256), nothing new written
    if kind in ("same path", "./ path", "symlink", "hard link", "folder holding it", "symlink to that folder"):
        # refused by the guard (naming the input), or by click itself for a folder option given a file
        assert "input file" in line or ("is a file" in line and _is(params[output], OutputDir)), line
    else:
        assert "symlink loop" in line, line


INPUT_CASES = [(w, p.name) for w, c in COMMANDS for p in c.params if _is(p, InputPath)]


@pytest.mark.parametrize("words, inp", INPUT_CASES, ids=[f"{' '.join(w)} {i}" for w, i in INPUT_CASES])
def test_an_input_that_is_a_symlink_loop_is_one_line(tmp_path, capsys, monkeypatch, words, inp) -> None:  # noqa: ANN001
    """The issue's traceback (`RuntimeError: Symlink loop` from io.same_file) for a model or --data."""
    monkeypatch.chdir(tmp_path)
    cmd = dict((w, c) for w, c in COMMANDS)[words]
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    argv = _argv(words, cmd, {inp: str(tmp_path / "loop")}, tmp_path)
    before = _tree(tmp_path)
    line = assert_refused(run(capsys, *argv))
    assert "symlink loop" in line and _tree(tmp_path) == before, line


DERIVED_CASES = [(w, p.name, i.name, suffix) for w, c in COMMANDS for p in c.params if _is(p, OutputPath)
                 for suffix in p.type.derived for i in c.params if _is(i, InputPath)]


@pytest.mark.parametrize("words, output, inp, suffix", DERIVED_CASES,
                         ids=[f"{' '.join(w)} {o}{s} <- {i}" for w, o, i, s in DERIVED_CASES])
def test_a_file_written_beside_the_output_is_guarded_too(tmp_path, capsys, monkeypatch, words, output, inp,
                                                         suffix) -> None:  # noqa: ANN001
    """`export --tflite RUN -o m.tflite` also writes m.tflite.json: that name must not be an input either."""
    monkeypatch.chdir(tmp_path)
    cmd = dict((w, c) for w, c in COMMANDS)[words]
    target = tmp_path / f"model.tflite{suffix}"
    target.write_text('{"an": "input"}\n', encoding="utf-8")
    argv = _argv(words, cmd, {inp: str(target), output: str(tmp_path / "model.tflite")}, tmp_path)
    before = _tree(tmp_path)
    line = assert_refused(run(capsys, *argv))
    assert "is the input file" in line and _tree(tmp_path) == before, line
