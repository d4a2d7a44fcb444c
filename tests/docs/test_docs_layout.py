"""The README's layout tree names every module of every package, and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tree() -> dict[str, set[str]]:
    """{package path: module names} from the README's Development code block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Development", 1)[1].split("```", 2)[1]
    tree: dict[str, set[str]] = {}
    parent, current = "", None
    for line in block.splitlines():
        top = re.match(r"^(\w+)/\s", line + " ")
        sub = re.match(r"^  (\w+)/\s+(.*)$", line)
        if top:
            parent, current = top.group(1), None
            rest = line[len(top.group(0)):]
            if parent == "converters":
                current = "converters"
                tree[current] = set(re.findall(r"[a-z_0-9]+", rest))
            continue
        if sub:
            current = f"{parent}/{sub.group(1)}"
            tree[current] = set(re.findall(r"[a-z_0-9]+", sub.group(2).split(";")[0]))
            for folder in re.findall(r"(\w+)/", sub.group(2)):
                tree[f"{current}/{folder}"] = {"spec", "keras", "torch"}
        elif current and line.startswith("    "):
            names, _, folders = line.partition(";")
            tree[current] |= set(re.findall(r"[a-z_0-9]+", names))
            for folder in re.findall(r"(\w+)/", folders):
                tree[f"{current}/{folder}"] = {"spec", "keras", "torch"}
    return tree


def _modules(package: Path) -> set[str]:
    return {p.stem for p in package.glob("*.py") if p.stem != "__init__"}


def test_every_library_package_is_in_the_tree_with_its_modules() -> None:
    tree = _tree()
    packages = [p.parent for p in sorted((ROOT / "deepepi").rglob("__init__.py"))
                if p.parent != ROOT / "deepepi"] + [ROOT / "converters"]
    missing = []
    for package in packages:
        key = str(package.relative_to(ROOT))
        if key == "deepepi/cli":
            assert key in tree, "README layout tree lacks deepepi/cli/"
            continue
        if key not in tree:
            missing.append(f"{key}/ (package)")
            continue
        listed = tree[key]
        modules = _modules(package)
        missing += [f"{key}/{m}.py" for m in sorted(modules - listed)]
        missing += [f"{key}/{m} (listed, no such module)" for m in sorted(listed - modules)]
    assert not missing, "README layout tree and code differ: " + ", ".join(missing)
