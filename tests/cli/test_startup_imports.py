"""A quiet, fast start: `deepepi --help` and `deepepi config show` import no framework and no onnx.

The import list comes from ``python -X importtime`` (every module the interpreter loaded, one line
each on stderr), so a framework pulled in indirectly (a converter's module-level `import onnx`) is
caught as surely as a direct one. Timing is measured by bench/startup.py, not here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli_tree import checkout_env

# Top-level packages that must not load for help or for printing a config.
HEAVY = {"onnx", "onnxruntime", "tf2onnx", "torch", "tensorflow", "keras", "tf_keras", "executorch",
         "ai_edge_litert"}
# Data and plotting libraries `--help` has no use for (config show may read numpy: the JSON depth check).
HELP_FREE = HEAVY | {"numpy", "pandas", "scipy", "sklearn", "matplotlib"}


def imported_modules(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Top-level package names `python -X importtime -m deepepi ARGS` loaded, and the finished run."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "deepepi", *args], capture_output=True,
                            text=True, env=checkout_env(), timeout=120)
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name.split(".")[0])
    return names, result


# Proves nothing where the frameworks are absent (a missing package is never imported): tox's cross env.
@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("args,forbidden", [(("--help",), HELP_FREE), (("config", "show"), HEAVY)],
                         ids=["help", "config-show"])
def test_start_up_imports_no_framework(args: tuple[str, ...], forbidden: set[str]) -> None:
    names, result = imported_modules(*args)
    assert result.returncode == 0, result.stderr
    assert "deepepi.cli" in result.stderr, "no import list: -X importtime did not run"
    assert sorted(names & forbidden) == []
