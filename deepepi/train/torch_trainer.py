"""PyTorch trainer: an explicit loop over a resident tensor, batches by index slicing.

Each evaluation period's batches come from the shared training plan (``plan.Plan``:
``batches.BatchStream`` or ``BalancedStream``, epoch or step mode, the same the Keras trainer uses)
and index the on-device training tensor (no Dataset, no per-sample collate).
Adam or AdamW with Keras's update rule (``torch_optim.KerasAdam``); ReduceLROnPlateau or the shared
three-phase schedule (per step); early stopping; the best epoch per ``selection``. CUDA is used
when present, with optional bf16/fp16 autocast (GradScaler for fp16) and torch.compile.

Determinism: on CPU the same seed gives the same history.json (torch.use_deterministic_algorithms).
On CUDA speed is the default (cudnn.benchmark on, non-deterministic kernels allowed);
``deterministic: true`` selects deterministic kernels and turns cudnn.benchmark off.
Under torchrun, ``torch_ddp`` shards each global batch over the ranks (DistributedDataParallel).
The shown loss is read back from the device only every ``progress.LOSS_EVERY`` steps and each
epoch's batch indices are copied to the device once, so a step never waits for the GPU.
A resume checkpoint (model, optimiser, scheduler, RNG states, history, selection) is written
atomically after every epoch and loaded with weights_only=True, so a resumed run continues
exactly where the last completed epoch ended.

Plateau patience: Keras reduces after ``lrPatience`` epochs without improvement, torch's
scheduler after ``patience + 1``, so torch gets ``max(lrPatience - 1, 0)``.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.utils.deterministic
import torch.nn.functional as F

from deepepi.core.errors import ConfigError
from deepepi.core.io import atomic_path
from deepepi.models.torch_checkpoint import save_checkpoint
from deepepi.models.torch_predict import predict_proba
from deepepi.models.torch_weights import export_weights, import_weights
from deepepi.models.weights import save_weights
from deepepi.runs import layout as art
from deepepi.train import torch_ddp
from deepepi.scoring.metrics import Counts, epoch_record, evaluate, summarise
from deepepi.train.optim import AdamSettings
from deepepi.train.progress import EpochBar, Pace
from deepepi.train.job import FitResult, Job
from deepepi.train.schedule import ThreePhase
from deepepi.train.selection import EarlyStop, Selector
from deepepi.train.torch_optim import KerasAdam

STATE_FILE = "state.pt"
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
PLATEAU_DELTA = 1e-4  # Keras ReduceLROnPlateau's default min_delta, applied the same (absolute) way


class Stepper:
    """One optimisation step (LR per schedule, forward, mean cross-entropy, backward, update).

    Shared by the trainer's epochs and by lockstep runs (``torch_lockstep.train_steps``), so both take the same step.
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer, *,
                 schedule: ThreePhase | None = None, amp: torch.dtype | None = None,
                 scaler: torch.amp.GradScaler | None = None) -> None:
        self.forward, self.optimizer, self.schedule = forward, optimizer, schedule
        self.amp, self.scaler = amp, scaler
        self.step = 0  # optimisation steps taken (the schedule's 0-based index of the next one)

    def autocast(self) -> Any:
        return torch.autocast("cuda", dtype=self.amp, enabled=self.amp is not None)

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor,
                 denominator: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (loss, logits), both detached. The loss is the batch mean, or with ``denominator``
        the summed loss divided by it (a data-parallel rank's share of the global batch mean)."""
        if self.schedule:
            for group in self.optimizer.param_groups:
                group["lr"] = self.schedule(self.step)
        with self.autocast():
            logits = self.forward(xb)
        scored = logits.float() if self.amp is not None else logits  # autocast logits are scored in fp32
        if denominator is None:
            loss = F.cross_entropy(scored, yb)  # mean over the batch, as Keras's default reduction
        else:
            loss = F.cross_entropy(scored, yb, reduction="sum") / denominator
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.step += 1
        return loss.detach(), logits.detach()


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class TorchTrainer:
    """One training run: model, optimiser, schedulers and data resident on the device."""

    def __init__(self, job: Job) -> None:
        self.job = job
        m = job.cfg.model
        self.group = torch_ddp.join(torch.cuda.is_available())
        self.device = self.group.device
        self.cuda = self.device.type == "cuda"
        deterministic = bool(m["deterministic"]) or not self.cuda
        if self.cuda:
            if deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = not deterministic
        torch.use_deterministic_algorithms(deterministic, warn_only=self.cuda)
        # Deterministic mode also fills every new tensor with NaN (a debugging aid that catches reads
        # of uninitialised memory); no kernel here reads one, and the fills cost 10 % of a CPU step.
        torch.utils.deterministic.fill_uninitialized_memory = False
        _seed_all(job.cfg.seed)
        self.model = job.build(job.spec)
        if job.init_weights is not None:
            import_weights(self.model, job.spec, job.init_weights)
        self.model.to(self.device)
        if self.group.active and int(m["batchSize"]) < self.group.world:
            raise ConfigError(f"{m['batchSize']} is smaller than the {self.group.world} torchrun processes",
                              source="modelConfig.batchSize")
        net = self.group.wrap(self.model)  # DDP under torchrun, else the model itself
        self.forward = torch.compile(net) if m["compile"] else net
        self.adam = AdamSettings.from_model_config(m)
        self.optimizer = KerasAdam(self.model.parameters(), self.adam)
        self.schedule = ThreePhase.from_model_config(m) if m["useLrSchedule"] else None
        amp = AMP_DTYPES.get(m["precision"]) if self.cuda else None
        self.stepper = Stepper(self.forward, self.optimizer, schedule=self.schedule, amp=amp,
                               scaler=torch.amp.GradScaler("cuda") if amp is torch.float16 else None)
        self.plateau = None if self.schedule else torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=float(m["lrFactor"]), patience=max(int(m["lrPatience"]) - 1, 0),
            threshold=PLATEAU_DELTA, threshold_mode="abs", min_lr=float(m["lrMin"]))
        self.early = EarlyStop(int(m["earlyStoppingPatience"]))
        self.best_state: dict[str, torch.Tensor] | None = None
        self.pace: Pace | None = None  # set by run(); epochs driven from outside (bench/train_gpu.py) take no estimate
        d = job.data
        self.x_train, self.y_train = self._tensor(d.train.X), self._tensor(d.train.y)
        self.x_val = self._tensor(d.val.X)
        self.batch_size = int(m["batchSize"])
        if m["precision"] != "fp32" and not self.cuda:
            job.log.info(f"precision {m['precision']} applies on CUDA only; training in fp32 on CPU")
        if self.group.active:
            job.log.info(f"torchrun: {self.group.world} processes ({'nccl' if self.cuda else 'gloo'}), global batch "
                         f"{self.batch_size} split between them, BatchNorm over the global batch")
        job.log.info(f"device {self.device}, {self.adam.name} (Keras update rule), "
                     + ("three-phase LR schedule (ReduceLROnPlateau off)" if self.schedule
                        else "ReduceLROnPlateau"))

    def _tensor(self, arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)

    # ----- resume ---------------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        state = {"epoch": epoch, "step": self.stepper.step,
                 "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                 "optimizer": self.optimizer.state_dict(),
                 "plateau": self.plateau.state_dict() if self.plateau else None,
                 "scaler": self.stepper.scaler.state_dict() if self.stepper.scaler else None,
                 "early": self.early.state(), "selector": self.job.selector.state(),
                 "history": self.job.history, "best_state": self.best_state,
                 "torch_rng": torch.get_rng_state()}
        if self.cuda:
            state["cuda_rng"] = torch.cuda.get_rng_state()
        return state

    def save_resume(self, epoch: int) -> None:
        if not self.job.writer:
            return
        with atomic_path(self.job.resume_dir / STATE_FILE) as tmp:
            torch.save(self._state(epoch), tmp)

    def load_resume(self) -> int:
        path = self.job.resume_dir / STATE_FILE
        if not path.exists():
            self.job.log.info("no completed epoch to resume from; starting at epoch 1")
            return 0
        s = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(s["model"])
        self.optimizer.load_state_dict(s["optimizer"])
        if self.plateau and s["plateau"]:
            self.plateau.load_state_dict(s["plateau"])
        if self.stepper.scaler and s["scaler"]:
            self.stepper.scaler.load_state_dict(s["scaler"])
        self.early = EarlyStop(**s["early"])
        self.job.selector = Selector.from_state(s["selector"])
        self.job.history[:] = s["history"]
        self.best_state = s["best_state"]
        self.stepper.step = int(s["step"])
        torch.set_rng_state(s["torch_rng"])
        if self.cuda and "cuda_rng" in s:
            torch.cuda.set_rng_state(s["cuda_rng"])
        self.job.log.info(f"resumed after epoch {s['epoch']}")
        return int(s["epoch"])

    # ----- one epoch -----------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One evaluation period of the plan (a pass, or evalEverySteps steps in step mode); train
        figures come from its running (train-mode) predictions."""
        self.model.train()
        batches = self.job.plan.batches(epoch - 1)
        bar = EpochBar(epoch, self.job.epochs, len(batches), quiet=self.job.quiet or not self.job.writer,
                       unit=self.job.plan.unit)
        order = torch.from_numpy(np.concatenate(batches)).to(self.device)  # one copy per epoch, not per step
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        preds, labels = [], []
        start = 0
        for batch in batches:
            lo, hi = self.group.shard(len(batch))
            idx = order[start + lo:start + hi]
            start += len(batch)
            xb, yb = self.x_train[idx], self.y_train[idx]
            share = self.group.loss_denominator(len(batch))  # the batch size with one process
            loss, logits = self.stepper(xb, yb, share if self.group.active else None)
            loss_sum += loss.double() * share
            preds.append(logits.argmax(dim=-1))
            labels.append(yb)
            bar.step(float(loss) if bar.wants_loss() else None)
            if self.pace is not None:
                self.pace.step()
        bar.close()
        counts = Counts.from_labels(torch.cat(labels).cpu().numpy(), torch.cat(preds).cpu().numpy())
        total, *summed = self.group.sum([float(loss_sum), *counts.to_dict().values()])
        counts = Counts(*(int(round(c)) for c in summed))
        return summarise(total / start, counts)

    def logits(self, x: torch.Tensor) -> np.ndarray:
        """Eval-mode logits as float32 numpy, in batches."""
        self.model.eval()
        outs, step = [], max(self.batch_size, 512)
        with torch.no_grad(), self.stepper.autocast():
            for i in range(0, len(x), step):
                outs.append(self.forward(x[i:i + step]).float().cpu())
        return torch.cat(outs).numpy()

    def run(self) -> FitResult:
        job = self.job
        start = self.load_resume() if job.resume else 0
        if start == 0 and job.writer:
            job.save_init_weights(export_weights(self.model, job.spec))
            self.save_resume(0)
        self.pace = Pace(job.plan, start, job.log.info, sync=torch.cuda.synchronize if self.cuda else None)
        stopped = False
        for epoch in range(start + 1, job.epochs + 1):
            t0 = time.perf_counter()
            train = self.train_epoch(epoch)
            val_logits = self.logits(self.x_val)
            val = evaluate(job.data.val.y, val_logits)
            record = epoch_record(epoch, train, val, self.optimizer.param_groups[0]["lr"])
            seconds = time.perf_counter() - t0
            if job.record(record, seconds, val_logits):
                self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            if self.plateau:
                self.plateau.step(record["val_loss"])
            stopped = self.early.update(record["val_loss"])
            self.save_resume(epoch)
            if stopped:
                job.log.info(f"early stopping after epoch {epoch} (val_loss has not improved for "
                             f"{self.early.patience} epochs)")
                break
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        if not job.writer:
            empty = np.empty((0, 2), dtype=np.float32)
            return FitResult(test_logits=empty, stopped_early=stopped, val_proba=empty)
        saved = self._write_model()
        return FitResult(test_logits=self.logits(self._tensor(job.data.test.X)), stopped_early=stopped,
                         val_proba=predict_proba(saved, job.data.val.X))

    def _write_model(self) -> torch.nn.Module:
        """Write model.pt and weights.npz from a CPU copy of the model; returns that copy (eval mode)."""
        job = self.job
        cpu_model = job.build(job.spec)
        cpu_model.load_state_dict({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
        cpu_model.eval()
        save_checkpoint(job.run_dir / art.MODEL_FILES["pytorch"], cpu_model, job.spec, job.cfg.to_dict(),
                        extra={"best_epoch": job.selector.best_epoch})
        save_weights(job.run_dir / art.WEIGHTS, export_weights(cpu_model, job.spec), job.spec)
        return cpu_model


def fit(job: Job) -> FitResult:
    """Train per ``job`` and write model.pt + weights.npz; returns the test split's logits and the
    validation split's probabilities from the saved model (rank 0 only under torchrun)."""
    trainer = TorchTrainer(job)
    try:
        result = trainer.run()
    except BaseException:
        trainer.group.close()
        raise
    trainer.group.close(wait=True)
    return result
