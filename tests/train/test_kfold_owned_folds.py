"""Issue 26: a k-fold run owns exactly the fold directories of its plan.

`--kfold 2` into a folder that held a 3-fold run must not leave fold-2/ beside the new summary (nor a
plain run the inner-*/ folders of an earlier nested one): a fresh run removes them, ``--resume``
refuses in one line (they may be results someone still needs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deepepi.core.errors import ConfigError
from deepepi.train.kfold import FoldTask, drop_unowned_folds


def _earlier_run(root: Path, names: list[str]) -> None:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "metrics.json").write_text("{}", encoding="utf-8")


def test_a_fresh_plan_removes_the_folds_it_does_not_own(tmp_path) -> None:  # noqa: ANN001
    _earlier_run(tmp_path, ["fold-0", "fold-1", "fold-2", "fold-0/inner-0", "fold-0/inner-1"])
    (tmp_path / "notes").mkdir()  # not a fold: left alone
    drop_unowned_folds(tmp_path, [FoldTask("fold-0", {}), FoldTask("fold-1", {})], resume=False)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_dir()) == \
        ["fold-0", "fold-1", "notes"]
    assert (tmp_path / "fold-0" / "metrics.json").is_file()  # an owned fold is the trainer's to replace


def test_a_nested_plan_keeps_its_inner_folds(tmp_path) -> None:  # noqa: ANN001
    _earlier_run(tmp_path, ["fold-0/inner-0", "fold-0/inner-1", "fold-0/inner-2", "fold-1/inner-0"])
    tasks = [FoldTask(f"fold-{i}/inner-{j}", {}) for i in range(2) for j in range(2)]
    drop_unowned_folds(tmp_path, tasks, resume=False)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("fold-*/inner-*")) == \
        ["fold-0/inner-0", "fold-0/inner-1", "fold-1/inner-0"]


def test_resume_refuses_folds_of_another_plan(tmp_path) -> None:  # noqa: ANN001
    _earlier_run(tmp_path, ["fold-0", "fold-1", "fold-2"])
    with pytest.raises(ConfigError, match=r"fold-2/ is not a fold of this plan.*run without --resume"):
        drop_unowned_folds(tmp_path, [FoldTask("fold-0", {}), FoldTask("fold-1", {})], resume=True)
    assert (tmp_path / "fold-2" / "metrics.json").is_file()
