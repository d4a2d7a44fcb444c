"""The verification report: a printed PASS/FAIL table, a JSON file holding every figure, an exit code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deepepi.core.io import write_json
from deepepi.core.jsonsafe import json_safe
from deepepi.scoring.decision import describe
from deepepi.verify.checks import FAIL, Check


@dataclass
class Report:
    """Everything one `deepepi verify` run found; ``exit_code`` is 0 when no check failed, else 1."""

    model_a: str
    model_b: str
    mode: str
    settings: dict[str, Any]
    inputs: dict[str, Any]
    providers: dict[str, list[str]]
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({"model_a": self.model_a, "model_b": self.model_b, "mode": self.mode,
                          "passed": self.passed, "settings": self.settings, "inputs": self.inputs,
                          "providers": self.providers,
                          "checks": [asdict(check) for check in self.checks]})

    def table(self) -> str:
        """Fixed-width table, one row per check, then the verdict."""
        width = max(len(c.name) for c in self.checks) if self.checks else 5
        rows = [f"{'check':<{width}}  result  detail", "-" * (width + 16)]
        decision = self.settings.get("decision")
        if decision:  # quantized mode: the Decision every decision-level row used, and its sources
            rows.insert(0, describe(decision))
        rows += [f"{c.name:<{width}}  {c.status:<6}  {c.detail}" for c in self.checks]
        failed = [c.name for c in self.checks if c.status == FAIL]
        rows.append("verdict: " + ("PASS" if not failed else "FAIL (" + ", ".join(failed) + ")"))
        return "\n".join(rows)

    def write(self, path: str | Path) -> None:
        write_json(path, self.to_dict())


def _jsonable(value: Any) -> Any:
    """Strict JSON: non-finite floats (a broken model's output) become the strings 'nan'/'inf'."""
    return json_safe(value, non_finite="text")
