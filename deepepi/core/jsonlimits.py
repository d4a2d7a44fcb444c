"""JSON nesting limits: a document nested deeper than its format allows is refused before decoding.

Python's ``json`` recurses once per level, so a hostile file of ``[[[[...`` raises RecursionError
(a traceback) at about a thousand levels. The depth is measured on the text instead (brackets
outside strings, counted with numpy), which is fast enough to run on every OSDB event.
"""

from __future__ import annotations

import json
import re
from typing import Any

from deepepi.core.errors import DeepEpiError

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
CONFIG_MAX_DEPTH = 8  # config sections hold objects of lists; reference configs nest 3 deep
EVENT_MAX_DEPTH = 6  # OSDB event > datapoints > datapoint > rawData is 4 deep


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text (0 for a scalar); strings are skipped."""
    import numpy as np  # here, not at the top: the CLI's start-up (`deepepi --help`) does not need numpy

    codes = np.frombuffer(_STRING.sub('""', text).encode("utf-8"), dtype=np.uint8)
    step = (np.isin(codes, (ord("["), ord("{"))).astype(np.int32)
            - np.isin(codes, (ord("]"), ord("}"))).astype(np.int32))
    return int(np.cumsum(step).max(initial=0))


def check_depth(text: str, max_depth: int, error: type[DeepEpiError], *, source: str, what: str) -> None:
    """``error`` when ``text`` nests deeper than ``max_depth``."""
    depth = nesting_depth(text)
    if depth > max_depth:
        raise error(f"{what} is nested {depth} levels deep; the format allows {max_depth}", source=source)


def loads(text: str, max_depth: int, error: type[DeepEpiError], *, source: str, what: str) -> Any:
    """``json.loads`` after the depth check; malformed JSON is ``error`` naming line and column."""
    check_depth(text, max_depth, error, source=source, what=what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=source) from None


__all__ = ["CONFIG_MAX_DEPTH", "EVENT_MAX_DEPTH", "check_depth", "loads", "nesting_depth"]
