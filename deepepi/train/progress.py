"""Console output during training: one tqdm bar per epoch and one summary line per epoch."""

from __future__ import annotations

import sys
from typing import Any

from deepepi.train.metrics import fmt


class EpochBar:
    """A progress bar over one epoch's optimisation steps; a no-op when quiet."""

    def __init__(self, epoch: int, epochs: int, steps: int, *, quiet: bool) -> None:
        self._bar = None
        if not quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", unit="step",
                             leave=False, file=sys.stderr, dynamic_ncols=True)

    def step(self, loss: float | None = None) -> None:
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
