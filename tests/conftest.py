"""Framework gating: tests marked `torch` / `tf` / `litert` / `executorch` run where that package is
installed.

tox sets DEEPEPI_REQUIRE (e.g. "torch,tf,litert,executorch"); a test needing a required framework that is missing is
then a failure, not a skip, so an environment can never pass by silently skipping its own tests.

Shared fixtures: `csv_path`, the one synthetic data set that most data, training and evaluation tests read.

The tests live in tests/<package>/, one folder per library package; their shared helpers (onnx_helpers,
cli_tree, hostile, evaluate_fixture, and the scripts fault_runner and ddp_grad_worker) live in tests/helpers/,
which this file puts on sys.path so that every folder imports them by bare name (`from onnx_helpers import cli`).
Test file names are unique across the tree: pytest imports each test folder's files as top-level modules.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

HELPERS = Path(__file__).resolve().parent / "helpers"
if str(HELPERS) not in sys.path:
    sys.path.insert(0, str(HELPERS))

# The same examples on every run: a verdict must not depend on which inputs a run happened to draw.
settings.register_profile("deepepi", derandomize=True)
settings.load_profile("deepepi")


@pytest.fixture(scope="session")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small synthetic data set many tests train or evaluate on (3 users, 40 events, seed 0), written once
    per session; read-only to its users. A module that needs other data defines its own `csv_path`."""
    from deepepi.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("data"), users=3, events=40, seed=0).csv_path


_MODULES = {"torch": "torch", "tf": "tensorflow", "litert": "ai_edge_litert", "executorch": "executorch"}


def _required() -> set[str]:
    return {f.strip() for f in os.environ.get("DEEPEPI_REQUIRE", "").split(",") if f.strip()}


def _available(framework: str) -> bool:
    return importlib.util.find_spec(_MODULES[framework]) is not None


def pytest_configure(config: pytest.Config) -> None:
    unknown = _required() - set(_MODULES)
    if unknown:
        raise pytest.UsageError(f"DEEPEPI_REQUIRE names unknown frameworks: {sorted(unknown)}")


def _missing_required(item: pytest.Item) -> list[str]:
    required = _required()
    return [f for f in _MODULES if item.get_closest_marker(f) is not None
            and not _available(f) and f in required]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = _required()
    for item in items:
        for framework in _MODULES:
            if item.get_closest_marker(framework) is None or _available(framework) or framework in required:
                continue
            item.add_marker(pytest.mark.skip(reason=f"{_MODULES[framework]} not installed"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    missing = _missing_required(item)
    if missing:
        names = ", ".join(_MODULES[f] for f in missing)
        pytest.fail(f"{names} is required in this environment (DEEPEPI_REQUIRE) but not installed",
                    pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.testscollected == 0 and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
