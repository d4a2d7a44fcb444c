"""Click option types for numbers: parsed, then held to deepepi.core.config.number_rule (finite, in range).

click's FloatRange lets ``nan`` through every bound (nan < 0 is false); these types refuse nan and
inf with the same wording as a bad config value.
"""

from __future__ import annotations

from typing import Any

import click

from deepepi.core.config import MAX_SEED, number_rule


class Number(click.ParamType):
    """A finite number (or integer) within optional bounds."""

    def __init__(self, lo: float | None = None, hi: float | None = None, *, integer: bool = False,
                 lo_open: bool = False, hi_open: bool = False) -> None:
        self.integer = integer
        self.name = "integer" if integer else "number"
        self.expected, self.check = number_rule(lo, hi, integer=integer, lo_open=lo_open, hi_open=hi_open)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        parsed = value
        if isinstance(value, str):
            try:
                parsed = int(value, 10) if self.integer else float(value)
            except ValueError:
                self.fail(f"{value!r} is not {'an integer' if self.integer else 'a number'}", param, ctx)
        if not self.check(parsed):
            self.fail(f"got {value}, expected {self.expected}", param, ctx)
        return parsed

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "N" if self.integer else "X"


SEED = Number(0, MAX_SEED, integer=True)
POSITIVE_INT = Number(1, integer=True)


class RateMargin(click.ParamType):
    """``RATE=X``: a trained-mode margin, RATE one of deepepi.verify.stats.RATES, X a number in [0, 1]."""

    name = "margin"
    _value = Number(0, 1)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from deepepi.verify.stats import RATES

        if isinstance(value, tuple):
            return value
        rate, sep, number = str(value).partition("=")
        if not sep or rate not in RATES:
            self.fail(f"{value!r}: expected RATE=X with RATE one of {', '.join(RATES)}", param, ctx)
        return rate, self._value.convert(number, param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "RATE=X"
