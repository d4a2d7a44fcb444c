"""One way to turn a report's figures into strict JSON (``json.dumps(..., allow_nan=False)``).

Reports hold numpy scalars and arrays and, from broken models or empty classes, NaN and infinity,
none of which strict JSON takes. Both reports clean through ``json_safe``; they differ only in what a
non-finite number becomes, so that is an explicit argument: evaluate writes ``null`` (a figure that is
undefined), verify writes the text ``"nan"`` / ``"inf"`` (a figure a broken model really produced).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

NonFinite = Literal["null", "text"]


def json_safe(obj: Any, *, non_finite: NonFinite) -> Any:
    """JSON-safe copy: dict keys as str, tuples as lists, numpy scalars/arrays as Python values,
    and NaN/inf as None (``non_finite="null"``) or as ``str(value)`` (``non_finite="text"``)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v, non_finite=non_finite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, non_finite=non_finite) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist(), non_finite=non_finite)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if non_finite == "null" else str(obj)
    return obj
