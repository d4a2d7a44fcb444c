"""tox's environments split the suite by marker: every combination of framework markers lands in exactly one
environment, and that environment installs (and requires) what the markers name."""

from __future__ import annotations

import configparser
import itertools
import re
from pathlib import Path

import pytest

TOX_INI = Path(__file__).resolve().parents[2] / "tox.ini"
FRAMEWORKS = ("torch", "tf", "litert", "executorch")
COMBINATIONS = [c for n in range(len(FRAMEWORKS) + 1) for c in itertools.combinations(FRAMEWORKS, n)]
_SELECTION = re.compile(r'^\s*(?:(\w+):\s*)?pytest\b.*\s-m\s+"([^"]+)"', re.MULTILINE)


def _config() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(TOX_INI, encoding="utf-8")
    return config


def _selections() -> dict[str, str]:
    """Environment -> its pytest -m expression."""
    config = _config()
    found: dict[str, str] = {}
    for section in config.sections():
        if section == "testenv" or section.startswith("testenv:"):
            for factor, expression in _SELECTION.findall(config[section].get("commands", "")):
                found[factor or section.removeprefix("testenv:")] = expression
    return found


def _required(env: str) -> set[str]:
    """The frameworks whose absence fails (not skips) a test in this environment (tests/conftest.py)."""
    lines = re.findall(rf"^\s*{env}: DEEPEPI_REQUIRE = (.*)$", _config()["testenv"]["setenv"], re.MULTILINE)
    return {name.strip() for line in lines for name in line.split(",")}


def _matches(expression: str, markers: set[str]) -> bool:
    # A -m expression is a Python boolean expression over marker names (and, or, not, parentheses).
    names = {name: name in markers for name in (*FRAMEWORKS, "slow")}
    return bool(eval(expression, {"__builtins__": {}}, names))  # noqa: S307 - our own tox.ini


def test_every_listed_environment_selects_tests_and_core_checks_the_layers_first() -> None:
    config = _config()
    envlist = [e.strip() for e in config["tox"]["envlist"].split(",")]
    assert sorted(_selections()) == sorted(envlist)
    core = [line.strip() for line in config["testenv:core"]["commands"].splitlines() if line.strip()]
    assert core[0].startswith("lint-imports") and core[1].startswith("pytest"), core


@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: "-".join(c) or "unmarked")
def test_each_marker_combination_runs_in_exactly_one_environment(combination: tuple[str, ...]) -> None:
    markers = set(combination)
    for slow in (False, True):
        marked = markers | ({"slow"} if slow else set())
        chosen = [env for env, expression in _selections().items() if _matches(expression, marked)]
        assert len(chosen) == 1, (sorted(marked), chosen)
        assert markers <= _required(chosen[0]), (chosen[0], sorted(markers))
