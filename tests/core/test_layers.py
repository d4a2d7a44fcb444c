"""The import-layer contract (setup.cfg [importlinter]) holds for the tree, and it does catch a violation:
a copy of the packages with an upward and a sibling import planted fails `lint-imports`, naming both."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
# import-linter has no `python -m` entry; its console script calls this function.
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
PLANTED = {  # file -> the import appended to it, as lint-imports names it
    "deepepi/core/errors.py": ("import deepepi.cli", "deepepi.core.errors -> deepepi.cli"),  # upward
    "deepepi/train/plan.py": ("import deepepi.evaluate", "deepepi.train.plan -> deepepi.evaluate"),  # sibling
}


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("deepepi", "converters"):
        shutil.copytree(CHECKOUT / package, dest / package, ignore=ignore)
    shutil.copy(CHECKOUT / "setup.cfg", dest / "setup.cfg")
    return dest


def _lint(root: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH first: the copy, not an installed deepepi, is what import-linter analyses.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_planted_upward_and_sibling_imports_fail_the_contract(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    for relative, (line, _) in PLANTED.items():
        with open(root / relative, "a", encoding="utf-8") as f:
            f.write(f"\n{line}  # planted by tests/core/test_layers.py\n")
    result = _lint(root)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    for _, named in PLANTED.values():
        assert named in out, out


def test_the_tree_keeps_its_layers() -> None:
    result = _lint(CHECKOUT)
    assert result.returncode == 0, result.stdout + result.stderr
