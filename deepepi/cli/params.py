"""What every option is held to, declared where the option is declared:

- ``Number``: parsed, then held to deepepi.core.config.number_rule (finite, in range). click's
  FloatRange lets ``nan`` through every bound (nan < 0 is false); these types refuse nan and inf with
  the same wording as a bad config value, and quote the value as typed (never rounded into range).
- Resource bounds: ``CPUS`` (``--threads``, ``--jobs``: at most this machine's CPU count) and the
  fixed ceilings below; a resource option is never left to hang the machine.
- ``requires``: the options that do something in one mode only, refused in one line naming that mode
  when given without it (``--jobs needs --kfold (k-fold training)``), checked by one shared wrapper
  before the command does any work.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import click
from click.core import ParameterSource

from deepepi.core.config import MAX_SEED, number_rule
from deepepi.core.constants import APP_ALARM_TIME_S, APP_WARN_TIME_S


class Number(click.ParamType):
    """A finite number (or integer) within optional bounds."""

    def __init__(self, lo: float | None = None, hi: float | None = None, *, integer: bool = False,
                 lo_open: bool = False, hi_open: bool = False, why: str | None = None) -> None:
        self.integer = integer
        self.name = "integer" if integer else "number"
        self.lo, self.hi = lo, hi
        self.expected, self.check = number_rule(lo, hi, integer=integer, lo_open=lo_open, hi_open=hi_open)
        if why:
            self.expected += f" ({why})"

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
SECONDS = Number(0)  # --warn-time, --alarm-time (AlarmTime >= WarnTime: scoring.decision.resolve)


def alarm_timing_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--warn-time`` and ``--alarm-time``: the app's WarnTime/AlarmTime, declared once for every
    command that takes the Decision from the command line (None: the model's, the config's, the app's)."""
    for name, key, default in (("alarm", "alarmTime", APP_ALARM_TIME_S), ("warn", "warnTime", APP_WARN_TIME_S)):
        what = "ALARM" if name == "alarm" else "WARNING"
        f = click.option(f"--{name}-time", f"{name}_time", type=SECONDS, default=None, metavar="S",
                         help=f"App {name.capitalize()}Time (s): {what} once positives have lasted longer. "
                              f"Default: the model's metadata, else the config's {key}, else {default:g}.")(f)
    return f

class Float32Quantile(Number):
    """0 < q < 1 also after rounding to float32, the type of an ensemble graph's q input (0.99999999
    would become 1, where the Harrell-Davis weights are undefined)."""

    def __init__(self) -> None:
        super().__init__(0, 1, lo_open=True, hi_open=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        q = super().convert(value, param, ctx)
        as_f32 = struct.unpack("f", struct.pack("f", q))[0]
        if not 0.0 < as_f32 < 1.0:
            self.fail(f"got {value}, which float32 (the graph's q input) rounds to {as_f32:g}; expected "
                      f"{self.expected}", param, ctx)
        return q


QUANTILE = Float32Quantile()

MACHINE_CPUS = os.cpu_count() or 1
# Threads or processes beyond the CPU count only wait for each other; 100000 of them hang the machine.
CPUS = Number(1, MACHINE_CPUS, integer=True, why=f"{MACHINE_CPUS} = this machine's CPU count")
MAX_EPOCHS = 100_000
MAX_STEPS = 100_000_000
EPOCHS = Number(1, MAX_EPOCHS, integer=True)
STEPS = Number(1, MAX_STEPS, integer=True)
MAX_FOLDS = 1000  # the data bounds it further: every fold needs a seizure event (train.kfold)
FOLDS = Number(2, MAX_FOLDS, integer=True)
MAX_TIMEOUT_S = 3600
TIMEOUT = Number(1, MAX_TIMEOUT_S)


@dataclass(frozen=True)
class Needs:
    """The mode an option does something in: ``what`` names it in the refusal, ``holds`` says whether
    the command's parameters select it."""

    what: str
    holds: Callable[[Mapping[str, Any]], bool]


def _set(value: Any) -> bool:
    return value not in (None, False, ())


def given(name: str, what: str) -> Needs:
    """The option needs parameter ``name`` given (``--calibration`` needs ``--quantize``)."""
    return Needs(what, lambda p: _set(p.get(name)))


def absent(name: str, what: str) -> Needs:
    """The option does nothing when parameter ``name`` is given (``--quiet`` under ``--kfold``)."""
    return Needs(what, lambda p: not _set(p.get(name)))


def one_of(name: str, values: tuple[Any, ...], what: str) -> Needs:
    """The option needs parameter ``name`` to be one of ``values`` (``--margin`` needs ``--mode trained``)."""
    return Needs(what, lambda p: p.get(name) in values)


def option_given(ctx: click.Context, name: str) -> bool:
    """Whether the user gave the parameter (command line or environment), whatever its value."""
    return ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)


def _flag(ctx: click.Context, name: str) -> str:
    for param in ctx.command.params:
        if param.name == name:
            return max(param.opts, key=len)
    raise KeyError(name)


def requires(needs: Mapping[str, Needs]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare per option (key: the parameter name, or ``name=value`` for one value of it) the mode it
    needs; the command refuses the option given outside that mode, before any work, in one line (exit 2).
    Place it under ``@click.command``; ``tests/cli/test_hostile_round3.py`` checks every declaration."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def checked(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            for key, need in needs.items():
                name, _, value = key.partition("=")
                if not option_given(ctx, name) or (value and str(ctx.params.get(name)) != value):
                    continue
                if not need.holds(ctx.params):
                    raise click.UsageError(f"{_flag(ctx, name)}{' ' + value if value else ''} needs "
                                           f"{need.what}; it does nothing otherwise", ctx)
            return f(*args, **kwargs)

        checked.__deepepi_requires__ = dict(needs)  # type: ignore[attr-defined]
        return checked

    return decorate


def declared_needs(command: click.Command) -> dict[str, Needs]:
    """A command's ``requires`` declarations ({} when it has none)."""
    return dict(getattr(command.callback, "__deepepi_requires__", {}))


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
