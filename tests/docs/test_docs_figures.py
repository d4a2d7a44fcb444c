"""One source for figures: what README.md and docs/MIGRATING.md quote is a current figure of docs/PERFORMANCE.md.

PERFORMANCE.md keeps one current figure per measure; superseded ones live in its "History" section,
so a doc quoting a figure found only there quotes an old figure. The README's Framework Support
table must also say what the Keras trainer does with `precision` (deepepi/train/keras_scale.py).
"""

from __future__ import annotations

import re

from cli_tree import CHECKOUT

README = CHECKOUT / "README.md"
GUIDE = CHECKOUT / "docs" / "MIGRATING.md"
PERFORMANCE = CHECKOUT / "docs" / "PERFORMANCE.md"
_NUMBER = re.compile(r"\d[\d,]*\.?\d*")


def _current() -> str:
    """PERFORMANCE.md without its History section (the figures a doc may quote)."""
    text = PERFORMANCE.read_text(encoding="utf-8")
    head, _, rest = text.partition("\n## History\n")
    tail = rest.partition("\n## Appended this round\n")[2]
    return head + tail


def test_performance_keeps_history_last_before_the_appended_sections() -> None:
    headings = re.findall(r"^## (.+)$", PERFORMANCE.read_text(encoding="utf-8"), flags=re.M)
    assert "History" in headings and "Appended this round" in headings
    assert headings.index("History") == headings.index("Appended this round") - 1


def test_migrating_performance_table_quotes_current_figures() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    table = text.split("## Performance compared", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]
    figures = [f for row in rows for cell in row.split("|")[2:] for f in _NUMBER.findall(cell)]
    current = _current()
    assert len(figures) >= 10
    old = [f for f in figures if f not in current]
    assert not old, f"docs/MIGRATING.md quotes figures that are not current in docs/PERFORMANCE.md: {old}"


def test_readme_main_job_time_is_the_current_end_to_end_figure() -> None:
    readme = README.read_text(encoding="utf-8")
    seconds = re.search(r"It took (\d[\d,]*) s on", readme)
    assert seconds, "README's quickstart names the main job's time"
    section = _current().split("## End to end (the main job)", 1)[1].split("\n## ", 1)[0]
    assert f"**{seconds.group(1)} s**" in section


def test_readme_precision_row_says_what_the_keras_trainer_does() -> None:
    row = next(line for line in README.read_text(encoding="utf-8").splitlines()
               if line.startswith("| `precision`"))
    keras_cell = row.split("|")[2]
    source = (CHECKOUT / "deepepi" / "train" / "keras_scale.py").read_text(encoding="utf-8")
    for policy in re.findall(r'"(mixed_\w+)"', source):
        assert policy in keras_cell, (policy, row)
    assert "not applied" not in keras_cell
