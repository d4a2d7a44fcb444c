"""Console output during training: one tqdm bar per evaluation period, one summary line per period,
and the duration estimate (``Pace``) measured from the run's own first steps."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Callable

from deepepi.scoring.metrics import fmt

if TYPE_CHECKING:
    from deepepi.train.plan import Plan


LOSS_EVERY = 25  # steps between loss updates on the bar: reading a GPU loss waits for the device


class EpochBar:
    """A progress bar over one epoch's optimisation steps; a no-op when quiet.

    The bar counts every step, but the loss it shows is refreshed only when ``wants_loss()`` (every
    ``LOSS_EVERY`` steps and the last), so a trainer on a GPU reads the loss back that rarely instead
    of synchronising with the device on every step.
    """

    def __init__(self, epoch: int, epochs: int, steps: int, *, quiet: bool, unit: str = "epoch") -> None:
        self._bar = None
        self._done, self._steps = 0, steps
        if not quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=steps, desc=f"{unit} {epoch}/{epochs}", unit="step",
                             leave=False, file=sys.stderr, dynamic_ncols=True)

    def wants_loss(self) -> bool:
        """Whether the coming ``step`` will show a loss (so the caller should read it back)."""
        return self._bar is not None and ((self._done + 1) % LOSS_EVERY == 0 or self._done + 1 == self._steps)

    def step(self, loss: float | None = None) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
            if loss is not None:
                self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def summary_line(record: dict[str, Any], epochs: int, seconds: float, best: bool, *, label: str | None = None) -> str:
    """`epoch 3/20 loss 0.4100 acc 0.830 sens 0.770 far 0.120 | val_loss ... | lr 1.00e-03 | 4.2 s *best`;
    ``label`` replaces `epoch 3/20` (step mode: `evaluation 3/20 (steps 10,001-15,000)`, ``Plan.label``)."""
    r = record
    head = label if label is not None else f"epoch {r['epoch']}/{epochs}"
    return (f"{head} loss {r['loss']:.4f} acc {fmt(r['accuracy'])} "
            f"sens {fmt(r['sensitivity'])} far {fmt(r['far'])} | val_loss {r['val_loss']:.4f} "
            f"val_acc {fmt(r['val_accuracy'])} val_sens {fmt(r['val_sensitivity'])} "
            f"val_far {fmt(r['val_far'])}{_rule_words(r)} | lr {r['lr']:.2e} | {seconds:.1f} s"
            + (" *best" if best else ""))


def _rule_words(r: dict[str, Any]) -> str:
    """The alarm_rule selection's validation-event figures, when the record carries them."""
    if "val_event_sensitivity" not in r:
        return ""
    met = "budget met" if r.get("val_budget_met") else "over budget"
    return (f" | events: sens {fmt(r['val_event_sensitivity'])} false alarms {r.get('val_false_alarms')} "
            f"at {r['val_event_threshold']:.2f} ({met}) auc {fmt(r.get('val_event_auc'))}")


def duration(seconds: float) -> str:
    """A wall time for people: `8.2 s`, `42 s`, `3 min 10 s`, `2 h 05 min`, `3 d 4 h`."""
    s = max(float(seconds), 0.0)
    if s < 10:
        return f"{s:.1f} s"
    whole = int(round(s))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    minutes = whole // 60
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    hours = minutes // 60
    return f"{hours // 24} d {hours % 24} h"


def write_line(write: Callable[[str], None], line: str) -> None:
    """Print ``line`` through ``write`` (e.g. ``RunLog.info``) without tearing an open progress bar."""
    from tqdm import tqdm

    with tqdm.external_write_mode():
        write(line)


class Pace:
    """The run's duration estimate, from its own optimisation steps (timing only: no extra step is taken,
    so history, metrics and weights are those of a run without it).

    The first step of this process is a warm-up (graph tracing, first allocations) and not timed;
    the next ``sample`` steps (5, fewer when the first evaluation period is shorter) give the step
    time, and the line `plan: estimated 3 min 10 s of training for 376 steps (5 steps at 0.38 s;
    validation not included)` goes out before the first period ends. At the first step after the
    first evaluation, the period's steady step time plus what the evaluation and its checkpoint took
    give `estimate after evaluation 1: 2 min 40 s left for 3 more evaluations (564 steps)`.
    ``sync`` (e.g. torch.cuda.synchronize) is called at those few timing points only, so a step
    launched asynchronously on a GPU counts when it has finished.
    """

    SAMPLE = 5

    def __init__(self, plan: "Plan", done: int, write: Callable[[str], None], *,
                 sync: Callable[[], None] | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.plan, self.done, self.write = plan, done, write
        self.sync, self.clock = sync, clock
        first, stop = plan.bounds(done) if done < plan.periods else (plan.total_steps, plan.total_steps)
        self.first_steps = stop - first  # steps of this process's first evaluation period
        self.remaining = plan.total_steps - first
        self.warmup = 1 if self.first_steps >= 2 else 0
        self.sample = min(self.SAMPLE, self.first_steps - self.warmup)
        self.count = 0
        self.t_warm = self.t_first = self.t_last = self._now() if self.warmup == 0 else 0.0
        self.rate: float | None = None

    def _now(self) -> float:
        if self.sync is not None:
            self.sync()
        return self.clock()

    def step(self) -> None:
        """Call after every optimisation step (cheap: a counter, and a clock read at a few steps)."""
        self.count += 1
        n = self.count
        if n > self.first_steps + 1 or self.sample < 1:
            return
        if n == 1:
            self.t_first = self._now()
        if n == self.warmup:
            self.t_warm = self.t_first
        if n == self.warmup + self.sample:
            self.rate = (self._now() - self.t_warm) / self.sample
            self._say(f"plan: estimated {duration(self.rate * self.remaining)} of training for "
                      f"{self.remaining:,} steps ({self.sample} step{'s' if self.sample != 1 else ''} at "
                      f"{self.rate:.3g} s; validation not included)")
        if n == self.first_steps:
            self.t_last = self._now()
        elif n == self.first_steps + 1:
            self._after_first_evaluation(self._now())

    def _after_first_evaluation(self, now: float) -> None:
        rate = self.rate or 0.0
        if self.first_steps > 1:
            rate = (self.t_last - self.t_first) / (self.first_steps - 1)  # steady: the warm-up step left out
        evaluation = max(now - self.t_last - rate, 0.0)  # validation, record and checkpoint
        periods = range(self.done + 1, self.plan.periods)
        steps = sum(b - a for a, b in map(self.plan.bounds, periods))
        left = rate * steps + evaluation * len(periods)
        unit = self.plan.unit
        self._say(f"estimate after {unit} {self.done + 1}: {duration(left)} left for {len(periods)} more "
                  f"{unit}{'s' if len(periods) != 1 else ''} ({steps:,} steps)")

    def _say(self, line: str) -> None:
        write_line(self.write, line)
