"""docs/MIGRATING.md and README.md against the code: commands, options and config keys they name exist.

The guide's tables are parsed: `honoured key` and `honoured differently` rows must be schema keys,
`ignored key` rows must be keys that config loading reports as ignored; every schema key and every
key of the reference configs must appear; every `deepepi ...` invocation must resolve in the click
command tree with options that command has; the performance table may quote only figures that
docs/PERFORMANCE.md holds. So the guide cannot drift from the code without a test failing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli_tree import CHECKOUT, invocation_problems, invocations
from deepepi.core.config import SCHEMA, SECTIONS, TOP_LEVEL, from_dict

GUIDE = CHECKOUT / "docs" / "MIGRATING.md"
README = CHECKOUT / "README.md"
PERFORMANCE = CHECKOUT / "docs" / "PERFORMANCE.md"
# shared/ lies beside the checkout (or beside the folder of worktrees holding it).
REFERENCE = next((p for p in (CHECKOUT.parent / "shared" / "reference" / "osd-configs",
                              CHECKOUT.parent.parent / "shared" / "reference" / "osd-configs") if p.exists()),
                 CHECKOUT.parent / "shared" / "reference" / "osd-configs")
KEY_TABLES = ("honoured key", "honoured differently", "ignored key")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_KEY = re.compile(r"`([A-Za-z_]\w*(?:\.(?:\w+|\*))?)`")
_SECTION_KEY = re.compile(r"`((?:" + "|".join(SECTIONS) + r")\.(?:\w+|\*))`")


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Tables keyed by their first header cell; each row a list of cells."""
    found: dict[str, list[list[str]]] = {}
    lines = markdown.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and re.match(r"^\|[\s:|-]+\|$", lines[i + 1]) and (i == 0 or not lines[i - 1].startswith("|")):
            header = [c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]]
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in _CELL_SPLIT.split(row.strip())[1:-1]])
            found[header[0]] = rows
    return found


def _in_schema(key: str) -> bool:
    section, _, name = key.partition(".")
    if not name:
        return section in TOP_LEVEL
    return section in SCHEMA and name in SCHEMA[section]


def _reported_ignored(key: str) -> bool:
    section, _, name = key.partition(".")
    if name == "*":
        return section in SECTIONS and not SCHEMA[section]
    raw = {section: {name: 0}} if name else {section: 0}
    return key in from_dict(raw, source="guide", warn=False).ignored_keys


def _table_keys(kind: str) -> list[str]:
    rows = tables(GUIDE.read_text(encoding="utf-8"))[kind]
    return [key for row in rows for key in _KEY.findall(row[0])]


@pytest.mark.parametrize("kind", KEY_TABLES[:2])
def test_honoured_keys_are_schema_keys(kind: str) -> None:
    keys = _table_keys(kind)
    assert keys
    unknown = [k for k in keys if not _in_schema(k)]
    assert not unknown, f"docs/MIGRATING.md '{kind}' names keys deepepi does not act on: {unknown}"


def test_ignored_keys_are_reported_as_ignored() -> None:
    keys = _table_keys("ignored key")
    assert keys
    wrong = [k for k in keys if _in_schema(k) or not _reported_ignored(k)]
    assert not wrong, (f"deepepi now acts on {wrong}: move them from the 'ignored key' table of "
                       "docs/MIGRATING.md to 'honoured key' or 'honoured differently'")


def test_every_dotted_key_in_the_guide_is_known() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    ignored = set(_table_keys("ignored key"))
    unknown = sorted({k for k in _SECTION_KEY.findall(text) if not _in_schema(k) and k not in ignored})
    assert not unknown, f"docs/MIGRATING.md names config keys that do not exist: {unknown}"


def test_every_schema_key_is_in_the_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    named = set(_SECTION_KEY.findall(text)) | set(_table_keys("honoured key"))
    missing = [f"{s}.{k}" for s in SECTIONS for k in SCHEMA[s] if f"{s}.{k}" not in named]
    missing += [k for k in TOP_LEVEL if k not in named]
    assert not missing, f"document these config keys in docs/MIGRATING.md: {missing}"


@pytest.mark.skipif(not REFERENCE.exists(), reason="reference config files not present beside the checkout")
@pytest.mark.parametrize("name", ["nnConfig_deep.json", "nnConfig_deep_pytorch.json"])
def test_every_reference_config_key_is_in_a_key_table(name: str) -> None:
    raw = json.loads((REFERENCE / name).read_text(encoding="utf-8"))
    listed = {k for kind in KEY_TABLES for k in _table_keys(kind)}

    def comment(key: str) -> bool:
        return key.startswith("_") or key.endswith("_desc")

    keys = [k for k, v in raw.items() if not isinstance(v, dict) and not comment(k)]
    keys += [f"{s}.{k}" for s, v in raw.items() if isinstance(v, dict) for k in v if not comment(k)]
    missing = [k for k in keys if k not in listed and f"{k.split('.')[0]}.*" not in listed]
    assert not missing, f"add {name}'s keys {missing} to a key table of docs/MIGRATING.md"


@pytest.mark.parametrize("doc", [GUIDE, README], ids=lambda p: p.name)
def test_every_command_and_option_named_exists(doc: Path) -> None:
    named = invocations(doc.read_text(encoding="utf-8"))
    assert len(named) >= 10
    problems = [p for text in named for p in invocation_problems(text)]
    assert not problems, "\n".join(problems)


def test_invocation_check_catches_unknown_commands_and_options() -> None:
    assert invocation_problems("deepepi train --config C --epochs 3") == []
    assert invocation_problems("deepepi --verbose doctor --json") == []
    assert invocation_problems("deepepi trian --config C") == ["`deepepi trian --config C`: deepepi has no command 'trian'"]
    assert invocation_problems("deepepi model summary -x C") == ["`deepepi model summary -x C`: deepepi model summary has no option -x"]


def test_guide_links_resolve() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
             for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    anchors = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert anchors and anchors <= slugs, sorted(anchors - slugs)
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        assert (GUIDE.parent / target).exists(), target


def test_performance_table_quotes_only_measured_figures() -> None:
    rows = tables(GUIDE.read_text(encoding="utf-8"))["figure (from docs/PERFORMANCE.md)"]
    measured = PERFORMANCE.read_text(encoding="utf-8")
    figures = [f for row in rows for cell in row[1:] for f in re.findall(r"\d[\d,]*\.?\d*", cell)]
    assert len(figures) >= 10
    missing = [f for f in figures if f not in measured]
    assert not missing, f"figures in docs/MIGRATING.md that docs/PERFORMANCE.md does not hold: {missing}"
