"""What a framework trainer receives and returns: the ``Job`` (config, spec, data, run directory, epoch
recording) and the ``FitResult``; also this process's place among torchrun's ranks.

The trainers (``keras_trainer``, ``torch_trainer``) import this module, never ``run``, which loads them
by name: the job description sits below both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deepepi.core.config import Config
from deepepi.data.dataset import Datasets
from deepepi.runs import layout as art
from deepepi.scoring.metrics import seizure_probability
from deepepi.train.plan import Plan
from deepepi.train.progress import summary_line
from deepepi.train.selection import Selector
from deepepi.train.threshold import epoch_figures


def world_size() -> int:
    """Processes in this training run: torchrun's WORLD_SIZE, 1 when started without it."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_writer() -> bool:
    """Whether this process writes the run directory and prints: rank 0 (or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Job:
    """Everything a framework trainer needs; ``record`` is called once per finished epoch."""

    cfg: Config
    spec: Any  # deepepi.models.deepepi_cnn.spec.ArchSpec
    build: Callable[[Any], Any]  # the registry's builder for modelConfig.modelClass in this framework
    data: Datasets
    run_dir: Path
    log: art.RunLog
    resume: bool
    quiet: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    selector: Selector = field(default_factory=Selector)
    init_weights: dict[str, np.ndarray] | None = None  # neutral weights to start from (--init-weights)
    writer: bool = True  # False on torchrun ranks other than 0: they write and print nothing

    @cached_property
    def plan(self) -> Plan:
        """Batch stream and evaluation periods (epoch mode, or step mode with useLrSchedule)."""
        return Plan.from_config(self.cfg.model, self.data.train.y, self.cfg.seed)

    @property
    def epochs(self) -> int:
        """Evaluation periods of the run: epochs, or evaluations in step mode (history's ``epoch``)."""
        return self.plan.periods

    @property
    def resume_dir(self) -> Path:
        return self.run_dir / art.RESUME_DIR

    def save_init_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Keep the weights this run starts from, so the other framework can start from them too."""
        from deepepi.models.weights import save_weights

        save_weights(self.run_dir / art.INIT_WEIGHTS, weights, self.spec)

    def record(self, record: dict[str, Any], seconds: float, val_logits: np.ndarray | None = None) -> bool:
        """Keep one epoch's history entry, select, print the summary and log the epoch's wall time
        (train.log only, kept out of history.json); True when it is the new best. ``val_logits`` (the
        validation split's, this epoch) feed the event-level selection when the config asks for it."""
        if self.selector.needs_events:
            if val_logits is None:
                raise RuntimeError(f"modelSelectionMetric {self.selector.metric} needs this trainer's validation logits")
            record.update(epoch_figures(seizure_probability(val_logits), self.data.val, self.cfg))
        best = self.selector.update(record)
        self.history.append(record)
        if self.writer:
            art.write_history(self.run_dir, self.history)
        self.log.summary(summary_line(record, self.epochs, seconds, best, label=self.plan.label(record["epoch"])))
        self.log.note(f"epoch {record['epoch']} wall time {seconds:.2f} s")
        return best


@dataclass
class FitResult:
    """What a trainer returns, from the selected model as saved: the test split's logits, and the
    validation split's softmax probabilities [n, num_classes] (what the threshold rule reads)."""

    test_logits: np.ndarray
    stopped_early: bool
    val_proba: np.ndarray
