"""Docs and doctor against the real click command tree: does `deepepi <words> --opt` exist?"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click

_SEPARATORS = re.compile(r"[\s\[\](){}|=,`\\]+")
_OPTION = re.compile(r"^--?[A-Za-z][\w-]*$")
_INVOCATION = re.compile(r"`(deepepi(?:\s[^`]*)?)`")
_CODE_LINE = re.compile(r"^\s*(?:\$\s+)?(deepepi(?:\s.*)?)$")


def root() -> click.Group:
    from deepepi.cli import _register, cli

    _register()
    return cli


def _options(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names.update(param.opts)
        names.update(param.secondary_opts)
    return names


def invocation_problems(text: str) -> list[str]:
    """Unknown commands or options in one `deepepi ...` invocation as written in a document."""
    tokens = [t for t in _SEPARATORS.split(text) if t]
    assert tokens and tokens[0] == "deepepi", text
    node: click.Command = root()
    path = ["deepepi"]
    for token in tokens[1:]:
        if token.startswith("-"):
            if _OPTION.match(token) and token not in _options(node):
                return [f"`{text}`: {' '.join(path)} has no option {token}"]
        elif isinstance(node, click.Group):
            sub = node.commands.get(token)
            if sub is None:
                return [f"`{text}`: {' '.join(path)} has no command {token!r}"]
            node, path = sub, path + [token]
    return []


def invocations(markdown: str) -> list[str]:
    """Every `deepepi ...` in backticks, and every line of a fenced code block that starts with deepepi."""
    found = _INVOCATION.findall(markdown)
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced and (m := _CODE_LINE.match(line)):
            found.append(m.group(1).split("#")[0].strip())
    return found


CHECKOUT = Path(__file__).resolve().parents[2]


def checkout_env(*, prepend: str | None = None, **extra: str) -> dict[str, str]:
    """This environment for a child: this checkout's deepepi first (after ``prepend``), no
    TF_CPP_MIN_LOG_LEVEL (so the CLI's own quieting is what is tested), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    paths = [p for p in (prepend, str(CHECKOUT), env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def run_deepepi(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter (start-up output and exit codes as a user sees them)."""
    code = "import sys; from deepepi.cli import main; sys.argv[0] = 'deepepi'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=checkout_env() if env is None else env, cwd=cwd, timeout=timeout)
