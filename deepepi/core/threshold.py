"""One reading of a decision threshold, wherever it is recorded (threshold.json, ONNX metadata,
the app sidecar): a real number in [0, 1], else the caller's typed error naming the source."""

from __future__ import annotations

import math
from typing import Any

from deepepi.core.errors import DeepEpiError


def parse_threshold(raw: Any, *, field: str, source: str | None, error: type[DeepEpiError],
                    from_text: bool = False) -> float:
    """``raw`` as a float in [0, 1]: a JSON number, or (``from_text``, metadata values) a numeric
    string; bools, NaN and anything else are refused."""
    if isinstance(raw, bool):
        value = math.nan
    elif isinstance(raw, float):
        value = raw
    elif isinstance(raw, int):
        value = float(raw) if abs(raw) <= 1 else math.inf  # a huge JSON integer overflows float()
    elif not (from_text and isinstance(raw, str)):
        value = math.nan
    else:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
    if not 0.0 <= value <= 1.0:
        raise error(f"{field} must be a number in [0, 1], got {raw!r}", source=source)
    return value
