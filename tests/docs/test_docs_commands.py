"""Executable docs: every command that README.md and docs/MIGRATING.md print runs, and exits as they say.

The README's Commands table and its code blocks, and MIGRATING.md's "Commands side by side" table,
are parsed; each `deepepi ...` line is first resolved against the click command tree as printed
(every option it names must exist, optional parts included), then turned into a runnable command
line and run in-process on small built-in data: placeholders (CONFIG, CSV, RUN_DIR, MODEL, A, B,
EVENTS.json, ...) and the literal file names the guide uses (allData.csv, runs/deep-tf, ens.onnx,
...) map to fixtures built once per module (a 40-event synthetic dataset, one-epoch runs of the
smoke config in both frameworks, their ONNX exports, a LiteRT file, an ensemble, a reference-form
Keras file); optional `[...]` parts are dropped, and training gets `--epochs 1` and the tiny data.
Commands that cannot run on this machine are listed in SKIPPED with the reason, never dropped.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_tree import CHECKOUT, checkout_env, invocation_problems

README = CHECKOUT / "README.md"
GUIDE = CHECKOUT / "docs" / "MIGRATING.md"

pytestmark = [pytest.mark.torch, pytest.mark.tf, pytest.mark.litert, pytest.mark.executorch, pytest.mark.slow]

# Commands that cannot run here, by the start of their text, with the reason (reported as skips).
SKIPPED = {
    "torchrun": "needs torchrun with several processes (and GPUs for nccl); "
                "tests/test_train_ddp.py covers the data-parallel path on CPU",
}

# The exit code a document states for a command (default 0).
EXPECTED_EXIT: dict[str, int] = {}

# Commands whose verdict the tiny settings decide, with the exit codes allowed and why. The command must
# still run through and write what the docs say it writes (the file named here, in the workdir).
TINY_VERDICT = {
    "pipeline": ({0, 1}, "new-run/report.json",
                 "1 epoch on 40 events trains models that may predict one class only; trained mode fails "
                 "such a pair by design (README, 'The ONNX contract'), so the verdict may be FAIL (exit 1)"),
}

_BACKTICK = re.compile(r"`((?:deepepi|python -m deepepi|torchrun)\b[^`]*)`")


@dataclass(frozen=True)
class Documented:
    """One command as printed, and where."""

    doc: str
    text: str


# ---------------------------------------------------------------- extraction


def _table(markdown: str, heading: str) -> list[str]:
    """The table rows (as lines) of the first table after ``heading``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    rows, seen = [], False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            seen = True
            rows.append(line)
        elif seen:
            break
    return rows[2:]  # header and rule


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def _code_block_commands(markdown: str) -> list[str]:
    """`deepepi ...` in fenced code blocks: whole lines, and the part after `&&` in a compound line."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced and not line.lstrip().startswith("#"):
            for part in line.split("&&"):
                part = part.split(" #")[0].strip()
                if re.match(r"deepepi(\s|$)", part):
                    found.append(part)
    return found


def documented_commands(readme: str, guide: str) -> list[Documented]:
    """Every command line of the README's Commands table and code blocks and of the guide's command table."""
    found = [Documented("README.md", t) for row in _table(readme, "## Commands")
             for t in _BACKTICK.findall(_cells(row)[0])]
    found += [Documented("README.md", t) for t in _code_block_commands(readme)]
    found += [Documented("MIGRATING.md", t) for row in _table(guide, "## Commands side by side")
              for t in _BACKTICK.findall(_cells(row)[1])]
    return found


def static_problems(command: Documented) -> list[str]:
    """The command as printed (optional parts included) against the click tree: unknown commands or options."""
    text = re.sub(r"^python -m ", "", command.text)
    if not text.startswith("deepepi"):
        return []
    text = re.sub(r"\s\.\.\.(?=\s|$)", "", text.replace("[other train options]", ""))
    return [f"{command.doc}: {p}" for p in invocation_problems(text)]


# ---------------------------------------------------------------- materialising


class Skip(Exception):
    """A documented command that cannot run here; the message is the reason."""


def _drop_optional(text: str) -> str:
    """Remove every `[...]` group (nested ones with it)."""
    out, depth = [], 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _set_option(argv: list[str], option: str, value: str, *, replace: bool = True) -> None:
    if option in argv:
        if replace:
            argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]


def materialise(text: str, fx: dict[str, Path], workdir: Path) -> list[str]:
    """The argv (after `deepepi`) that runs ``text`` on the fixtures, with tiny settings; Skip if it cannot run."""
    for start, reason in SKIPPED.items():
        if text.startswith(start):
            raise Skip(reason)
    text = re.sub(r"^python -m deepepi", "deepepi", text)
    text = _drop_optional(text).replace("\\|", "|")
    tokens = text.split()[1:]
    command = [t for t in tokens if not t.startswith("-")][:2]
    argv: list[str] = []
    previous = ""
    for token in tokens:
        if token == "...":
            previous = token
            continue
        token = token.removesuffix("...").split("|")[0]
        if previous in ("-o", "--out", "--output") and token.isupper() or token in ("OUT.onnx",):
            token = f"new-{token.lower()}"  # an output placeholder: a fresh path in the workdir
        else:
            token = _placeholder(token, command, previous, fx)
        argv.append(token)
        previous = token
    if command[:1] == ["train"] or command[:1] == ["pipeline"]:
        _set_option(argv, "--epochs", "1")
        _set_option(argv, "--data", str(fx["csv"]), replace=False)
        _set_option(argv, "--out", "new-run", replace=False)
    if command[:1] == ["train"]:
        _set_option(argv, "--config", str(fx["cfg_tf"]), replace=False)
    _stage_literals(argv, fx, workdir)
    return argv


def _placeholder(token: str, command: list[str], previous: str, fx: dict[str, Path]) -> str:
    """A placeholder of the docs -> a fixture path or a small value."""
    if token in ("CONFIG", "C", "REF_CONFIG"):
        return str(fx["cfg_tf"])
    if token in ("CSV", "OSDB.json", "EVENTS.json"):
        return str(fx["csv"] if token == "CSV" else fx["seizures_json"])
    if token in ("RUN", "RUN_DIR", "RUN_DIR_OR_MODEL"):
        return "run-tf"  # staged as a copy: export writes into it
    if token == "MODEL":
        return str(fx["reference_keras"] if command[:1] == ["import"] else fx["onnx_tf"])
    if token == "MEMBERS":
        return f"{fx['run_tf']} {fx['run_pt']}"
    if token in ("A", "A.onnx"):
        return str(fx["onnx_tf"])
    if token in ("B", "B.onnx"):
        return str(fx["onnx_twin"])
    if token == "K":
        return "2"
    if token == "T":
        return "0.5"
    if token == "DIR":
        return "new-dir"
    return token


# Literal names the guide uses for the user's own files -> the fixture standing in for them.
_LITERALS = {
    "allData.csv": "csv", "test.csv": "csv", "val.csv": "csv",
    "osdb_3min_allSeizures.json": "seizures_json", "osdb_3min_falseAlarms.json": "false_alarms_json",
    "nnConfig_deep.json": "cfg_tf", "nnConfig_deep_pytorch.json": "cfg_pt",
    "deepEpiCnnModel.keras": "reference_keras", "model.tflite": "tflite", "ens.onnx": "ensemble",
    "runs/deep-tf": "run_tf", "runs/deep-pt": "run_pt", "runs/tf": "run_tf", "run-tf": "run_tf",
    "runs/kf/fold-0": "run_tf", "runs/kf/fold-1": "run_pt", "runs/kf/fold-2": "run_tf",
}


def _stage_literals(argv: list[str], fx: dict[str, Path], workdir: Path) -> None:
    """Copy the fixture behind every literal input name into the workdir, under that name."""
    for i, token in enumerate(list(argv)):
        if " " in token:  # MEMBERS: several paths
            argv[i:i + 1] = token.split()
            continue
        for name, key in _LITERALS.items():
            if (token == name or token.startswith(name + "/")) and not (workdir / name).exists():
                target = workdir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = fx[key]
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
                sidecar = source.with_name(source.name + ".json")  # a .tflite/.pte's app metadata
                if sidecar.exists():
                    shutil.copy2(sidecar, target.with_name(target.name + ".json"))


# ---------------------------------------------------------------- running


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """`deepepi ARGV` in this process (start-up is paid once), in ``cwd``: (exit code, stdout, stderr)."""
    from deepepi.cli import main

    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in argv])
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        os.chdir(here)
    return code, out.getvalue(), err.getvalue()


def run_problems(command: Documented, fx: dict[str, Path], workdir: Path) -> list[str]:
    """Run one documented command on the fixtures; a wrong exit code is a problem naming doc, text and output."""
    argv = materialise(command.text, fx, workdir)
    expected = EXPECTED_EXIT.get(command.text, 0)
    if command.text.startswith("python -m deepepi"):
        done = subprocess.run([sys.executable, "-m", "deepepi", *(argv or ["model", "list"])],
                              capture_output=True, text=True, env=checkout_env(), cwd=workdir, timeout=600)
        code, out, err = done.returncode, done.stdout, done.stderr
    else:
        code, out, err = run_cli(argv, workdir)
    if code == expected:
        return []
    verdict = TINY_VERDICT.get(argv[0] if argv else "")
    if verdict and code in verdict[0] and (workdir / verdict[1]).exists():
        return []
    tail = " | ".join((out + err).strip().splitlines()[-3:])
    return [f"{command.doc}: `{command.text}` ran as `deepepi {' '.join(argv)}`: exit {code}, "
            f"documented {expected}: {tail}"]


# ---------------------------------------------------------------- fixtures


def _tiny_config(path: Path, framework: str) -> Path:
    raw = json.loads((CHECKOUT / "configs" / "smoke.json").read_text(encoding="utf-8"))
    raw["modelConfig"].update(framework=framework, epochs=1)
    path.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    return path


def _must(code_out_err: tuple[int, str, str], what: str) -> None:
    code, out, err = code_out_err
    assert code == 0, f"fixture {what} failed (exit {code}): {out}{err}"


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Everything the documented commands read, built once: data, tiny configs, runs, exports."""
    from deepepi.data.synth import synthesize

    root = tmp_path_factory.mktemp("docs-fixtures")
    data = synthesize(root / "data", users=3, events=40, seed=0)
    fx = {"csv": data.csv_path, "seizures_json": data.csv_path.parent / "osdb_3min_allSeizures.json",
          "false_alarms_json": data.csv_path.parent / "osdb_3min_falseAlarms.json",
          "cfg_tf": _tiny_config(root / "tiny_tf.json", "tensorflow"),
          "cfg_pt": _tiny_config(root / "tiny_pt.json", "pytorch"),
          "run_tf": root / "run_tf", "run_pt": root / "run_pt"}
    for key, cfg in (("run_tf", "cfg_tf"), ("run_pt", "cfg_pt")):
        _must(run_cli(["train", "--config", fx[cfg], "--data", fx["csv"], "--out", fx[key], "--epochs", "1",
                       "--quiet"], root), f"train {key}")
        _must(run_cli(["export", "--onnx", fx[key]], root), f"export {key}")
    fx["onnx_tf"] = fx["run_tf"] / "model.onnx"
    fx["onnx_twin"] = root / "twin.onnx"
    _must(run_cli(["export", "--onnx", fx["run_tf"], "--framework", "pytorch", "-o", fx["onnx_twin"]], root),
          "twin export")
    fx["tflite"] = root / "model.tflite"
    _must(run_cli(["export", "--tflite", fx["run_tf"], "-o", fx["tflite"]], root), "tflite export")
    fx["ensemble"] = root / "ens.onnx"
    _must(run_cli(["ensemble", fx["run_tf"], fx["run_pt"], "-o", fx["ensemble"]], root), "ensemble")
    fx["reference_keras"] = root / "deepEpiCnnModel.keras"
    _reference_keras(fx["run_tf"], fx["reference_keras"])
    return fx


def _reference_keras(run: Path, target: Path) -> None:
    """The run's Keras model in the reference's form (softmax head, [n, 750, 1]), as a user would import it."""
    from deepepi.core.config import load_config
    from deepepi.models import keras_files
    from deepepi.models.deepepi_cnn import keras as deepepi_keras
    from deepepi.models.registry import spec_from_config

    spec = spec_from_config(load_config(run / "config.json"))
    model = keras_files.load_keras_model(run / "model.keras")
    keras_files.save_keras_model(target, deepepi_keras.softmax_model(model, spec))


# ---------------------------------------------------------------- tests

COMMANDS = documented_commands(README.read_text(encoding="utf-8"), GUIDE.read_text(encoding="utf-8"))
_RESULTS: dict[tuple[str, ...], list[str]] = {}


def test_the_docs_print_enough_commands() -> None:
    docs = {c.doc for c in COMMANDS}
    assert docs == {"README.md", "MIGRATING.md"} and len(COMMANDS) >= 30, COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.doc}:{c.text[:60]}")
def test_documented_command_runs(command: Documented, fx: dict[str, Path], tmp_path: Path) -> None:
    assert not static_problems(command), static_problems(command)
    try:
        key = tuple(materialise(command.text, fx, tmp_path))
    except Skip as reason:
        pytest.skip(f"{command.text}: {reason}")
    if key in _RESULTS and command.text not in EXPECTED_EXIT:
        problems = _RESULTS[key]  # the same command line printed twice (e.g. `deepepi pipeline`) runs once
    else:
        problems = _RESULTS[key] = run_problems(command, fx, tmp_path)
    assert not problems, "\n".join(problems)


def test_a_renamed_option_in_the_docs_is_reported() -> None:
    """A doc that still prints `--epochs` after a rename (planted here as `--epoch` in a copy) fails the check."""
    readme = README.read_text(encoding="utf-8").replace("--epochs", "--epoch")
    guide = GUIDE.read_text(encoding="utf-8")
    problems = [p for c in documented_commands(readme, guide) for p in static_problems(c)]
    assert any("has no option --epoch" in p and "deepepi train" in p for p in problems), problems
    assert any("deepepi pipeline has no option --epoch" in p for p in problems), problems


def test_a_renamed_option_in_the_code_is_reported(fx: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Rename `pipeline --epochs` in the click tree: the documented pipeline command no longer runs (exit 2)."""
    from deepepi.cli import _register, cli

    _register()
    option = next(p for p in cli.commands["pipeline"].params if "--epochs" in p.opts)
    monkeypatch.setattr(option, "opts", ["--n-epochs"])
    command = Documented("README.md", "deepepi pipeline [--out DIR] [--epochs N] [--data CSV]")
    assert any("has no option --epochs" in p for p in static_problems(command))
    problems = run_problems(command, fx, tmp_path)
    assert len(problems) == 1 and "exit 2, documented 0" in problems[0] and "--epochs" in problems[0], problems
