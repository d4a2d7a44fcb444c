"""Console output during training: one tqdm bar per epoch and one summary line per epoch."""

from __future__ import annotations

import sys
from typing import Any

from deepepi.scoring.metrics import fmt


LOSS_EVERY = 25  # steps between loss updates on the bar: reading a GPU loss waits for the device


class EpochBar:
    """A progress bar over one epoch's optimisation steps; a no-op when quiet.

    The bar counts every step, but the loss it shows is refreshed only when ``wants_loss()`` (every
    ``LOSS_EVERY`` steps and the last), so a trainer on a GPU reads the loss back that rarely instead
    of synchronising with the device on every step.
    """

    def __init__(self, epoch: int, epochs: int, steps: int, *, quiet: bool) -> None:
        self._bar = None
        self._done, self._steps = 0, steps
        if not quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", unit="step",
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


def summary_line(record: dict[str, Any], epochs: int, seconds: float, best: bool) -> str:
    """`epoch 3/20 loss 0.4100 acc 0.830 sens 0.770 far 0.120 | val_loss ... | lr 1.00e-03 | 4.2 s *best`"""
    r = record
    return (f"epoch {r['epoch']}/{epochs} loss {r['loss']:.4f} acc {fmt(r['accuracy'])} "
            f"sens {fmt(r['sensitivity'])} far {fmt(r['far'])} | val_loss {r['val_loss']:.4f} "
            f"val_acc {fmt(r['val_accuracy'])} val_sens {fmt(r['val_sensitivity'])} "
            f"val_far {fmt(r['val_far'])} | lr {r['lr']:.2e} | {seconds:.1f} s" + (" *best" if best else ""))
