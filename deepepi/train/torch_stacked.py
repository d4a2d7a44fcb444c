"""Many PyTorch models of one architecture trained in one process (``--kfold K --together``).

Two engines (``default_engine``): ``interleaved`` runs each model's lone step (``TorchTrainer``'s
own epoch) in turn, bitwise the lone runs on CPU; ``batched`` (CUDA's default) is the one batched
computation described here.

``torch.func``: ``stack_module_state`` stacks the K models' parameters and buffers along a new
leading axis, and ``vmap(grad(functional_call(...)))`` gives every model the gradient of its own
mean cross-entropy on its own batch, in one call. vmap over a convolution with a batched weight
runs as one grouped convolution, so this is the grouped-convolution trick, written once for every
registered architecture (DeepEpi, SpecCNN, AMBER, and a user class) instead of once per model.

What stays per model, so that each model takes the steps it would take alone:
- its batches (the caller hands each model its own indices; a step groups the models whose batches
  have the same length, so the partial last batch of one fold's epoch is its own group);
- BatchNorm: batch statistics and running statistics are per model (the vmapped buffers);
- Adam/AdamW state, step count and learning rate (``KerasAdam``'s update, with a per-model step
  size), so schedules, ReduceLROnPlateau and early stopping stay per model; a model that is not
  in a step (stopped early, or its epoch is over) is untouched, as if frozen;
- dropout: each model draws its masks from its own ``torch.Generator``, which starts in the state
  the global generator has when the model trains alone, with the draw nn.Dropout makes on CPU
  (``empty_like(x).bernoulli_(1 - p).div_(1 - p)``), so a CPU run matches the model trained alone
  with dropout on too. (On CUDA a lone model's dropout uses the fused kernel; there the masks are
  other draws of the same distribution.)
"""

from __future__ import annotations

import copy
import time
import types
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap

from deepepi.core.errors import ConfigError, ModelError
from deepepi.models.torch_bn import _KerasRunningStats
from deepepi.models.torch_predict import predict_proba
from deepepi.models.torch_weights import export_weights
from deepepi.scoring.metrics import Counts, epoch_record, evaluate, summarise
from deepepi.train.job import FitResult
from deepepi.train.optim import AdamSettings
from deepepi.train.schedule import ThreePhase
from deepepi.train.torch_trainer import TorchTrainer


class _MaskDropout(nn.Module):
    """Stands in for nn.Dropout inside the stacked model: multiplies by its ``mask`` buffer, which the
    caller draws per model outside vmap (already divided by 1 - p, as nn.Dropout scales)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.ones(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def _bn_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    """``torch_bn._KerasRunningStats.forward`` with the running-statistics update written as
    ``copy_(lerp(...))``: the same arithmetic, but with vmap batching rules (``lerp_`` has none and
    would fall back to one call per model). Under bf16 autocast the normalisation runs in float32."""
    if x.dtype != self.running_mean.dtype:  # autocast: vmap's batch-norm rule refuses bf16 input with fp32 statistics
        x = x.to(self.running_mean.dtype)
    if not (self.training and self.track_running_stats):
        return nn.modules.batchnorm._BatchNorm.forward(self, x)
    mean, unbiased = torch.zeros_like(self.running_mean), torch.zeros_like(self.running_var)
    out = F.batch_norm(x, mean, unbiased, self.weight, self.bias, True, 1.0, self.eps)
    with torch.no_grad():
        n = x.numel() // x.shape[1]
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.copy_(torch.lerp(self.running_mean, mean, factor))
        self.running_var.copy_(torch.lerp(self.running_var, unbiased * ((n - 1) / n), factor))
    return out


def _dropout_calls(model: nn.Module, window_input: torch.Tensor) -> list[tuple[str, float, tuple[int, ...]]]:
    """(module name, p, per-sample input shape) of every nn.Dropout call with p > 0, in forward order,
    found by one training-mode forward of a copy (so no generator of the real model is touched)."""
    probe = copy.deepcopy(model)
    calls: list[tuple[str, float, tuple[int, ...]]] = []
    names = {m: name for name, m in probe.named_modules()}
    hooks = [m.register_forward_pre_hook(lambda mod, args: calls.append((names[mod], float(mod.p),
                                                                          tuple(args[0].shape[1:]))))
             for m in probe.modules() if isinstance(m, nn.Dropout) and m.p > 0]
    probe.train()
    state = torch.get_rng_state()
    with torch.no_grad():
        probe(window_input)
    torch.set_rng_state(state)
    for h in hooks:
        h.remove()
    seen = [c[0] for c in calls]
    if len(seen) != len(set(seen)):
        raise ModelError("--together: a dropout module is called more than once per forward pass; train this "
                         "model class without --together")
    return calls


class Stack:
    """K models (same class and spec) as stacked tensors, with per-model Adam state; see the module docstring.

    ``models`` are the K models as they would start training alone (weights, buffers, dtype, device);
    ``generators`` the K dropout generators; ``settings`` the Adam/AdamW settings (shared by the run).
    """

    def __init__(self, models: Sequence[nn.Module], settings: AdamSettings,
                 generators: Sequence[torch.Generator], sample_input: torch.Tensor) -> None:
        first = models[0]
        self.k = len(models)
        self.settings = settings
        self.generators = list(generators)
        self.dropouts = _dropout_calls(first, sample_input[:2])
        params, buffers = stack_module_state(list(models))
        self.params = {n: p.detach() for n, p in params.items()}
        self.buffers = {n: b.detach() for n, b in buffers.items()}
        self.m = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.steps = [0] * self.k  # Adam's t per model
        base = copy.deepcopy(first)
        for name, _, _ in self.dropouts:
            parent, _, leaf = name.rpartition(".")
            setattr(base.get_submodule(parent) if parent else base, leaf, _MaskDropout())
        for module in base.modules():
            if isinstance(module, _KerasRunningStats) and type(module).forward is _KerasRunningStats.forward:
                module.forward = types.MethodType(_bn_forward, module)
        self.base = base.to("meta").train()
        self.amp: torch.dtype | None = None
        self.device_type = sample_input.device.type

    # ----- per model state in and out ---------------------------------------------------------------
    def param_names(self) -> list[str]:
        return list(self.params)

    def write_model(self, k: int, model: nn.Module) -> None:
        """Copy model ``k``'s stacked parameters and buffers into ``model`` (same class and spec)."""
        with torch.no_grad():
            for n, t in model.named_parameters():
                t.copy_(self.params[n][k])
            for n, t in model.named_buffers():
                if n in self.buffers:
                    t.copy_(self.buffers[n][k])

    def read_model(self, k: int, model: nn.Module) -> None:
        """The reverse of ``write_model``: model ``k`` takes ``model``'s parameters and buffers."""
        with torch.no_grad():
            for n, t in model.named_parameters():
                self.params[n][k].copy_(t)
            for n, t in model.named_buffers():
                if n in self.buffers:
                    self.buffers[n][k].copy_(t)

    def adam_state(self, k: int) -> dict[str, Any]:
        """Model ``k``'s Adam state by parameter name: step and the m, v moments (clones)."""
        return {n: {"step": self.steps[k], "m": self.m[n][k].clone(), "v": self.v[n][k].clone()}
                for n in self.params if self.steps[k] > 0}

    def set_adam_state(self, k: int, state: dict[str, dict[str, Any]]) -> None:
        with torch.no_grad():
            for n, s in state.items():
                self.steps[k] = int(s["step"])
                self.m[n][k].copy_(s["m"])
                self.v[n][k].copy_(s["v"])

    # ----- one step of a group of models ------------------------------------------------------------
    def _masks(self, members: Sequence[int], batch: int, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
        out: dict[str, list[torch.Tensor]] = {f"{name}.mask": [] for name, _, _ in self.dropouts}
        for k in members:  # per model, its layers in forward order: the order a lone model draws them
            for name, p, shape in self.dropouts:
                noise = torch.empty((batch, *shape), dtype=dtype, device=device)
                out[f"{name}.mask"].append(noise.bernoulli_(1 - p, generator=self.generators[k]).div_(1 - p))
        return {n: torch.stack(v) for n, v in out.items()}

    def _loss(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
              y: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        with torch.autocast(self.device_type, dtype=self.amp, enabled=self.amp is not None):
            logits = functional_call(self.base, (params, buffers), (x,))
        scored = logits.float() if self.amp is not None else logits
        loss = F.cross_entropy(scored, y)  # each model's batch mean, as when it trains alone
        return loss, (loss.detach(), logits.detach())

    def step(self, members: Sequence[int], x: torch.Tensor, y: torch.Tensor,
             lrs: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step of models ``members`` on ``x`` [S, B, ...], ``y`` [S, B] (S = len(members),
        one batch per model, all of length B), learning rate ``lrs[i]`` for ``members[i]``.
        Returns (loss [S], logits [S, B, classes]), detached; models not in ``members`` do not change."""
        everyone = list(members) == list(range(self.k))
        idx = None if everyone else torch.tensor(list(members), device=x.device)

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t if idx is None else t.index_select(0, idx)

        params = {n: pick(p) for n, p in self.params.items()}
        buffers = {n: pick(b) for n, b in self.buffers.items()}  # a copy when a subset: written back below
        masks = self._masks(members, x.shape[1], x.dtype, x.device)
        grads, (loss, logits) = vmap(grad(self._loss, has_aux=True), randomness="error")(
            params, {**buffers, **masks}, x, y)
        if idx is not None:
            for n, b in buffers.items():
                self.buffers[n].index_copy_(0, idx, b)
        self._adam(members, idx, params, grads, lrs)
        return loss, logits

    @torch.no_grad()
    def _adam(self, members: Sequence[int], idx: torch.Tensor | None, params: dict[str, torch.Tensor],
              grads: dict[str, torch.Tensor], lrs: Sequence[float]) -> None:
        """``torch_optim.KerasAdam.step`` for each member, its step size and learning rate a vector."""
        s = self.settings
        dtype = next(iter(params.values())).dtype
        f = np.float64 if dtype == torch.float64 else np.float32
        beta1, beta2 = f(np.float32(s.beta_1)), f(np.float32(s.beta_2))
        alphas, lr_f = [], []
        for k, lr in zip(members, lrs):
            self.steps[k] += 1
            t, lr_k = f(self.steps[k]), f(lr)
            alphas.append(float(lr_k * np.sqrt(f(1) - beta2 ** t) / (f(1) - beta1 ** t)))
            lr_f.append(float(lr_k))
        device = next(iter(params.values())).device
        alpha = torch.tensor(alphas, dtype=dtype, device=device)
        lr_t = torch.tensor(lr_f, dtype=dtype, device=device)
        wd = float(f(np.float32(s.weight_decay))) if s.weight_decay else None
        for n, p in params.items():
            shape = (-1,) + (1,) * (p.dim() - 1)
            g = grads[n]
            m = self.m[n] if idx is None else self.m[n].index_select(0, idx)
            v = self.v[n] if idx is None else self.v[n].index_select(0, idx)
            if idx is None:  # in place, as KerasAdam does
                if wd:
                    p.sub_(p * wd * lr_t.view(shape))
                m.add_((g - m) * (1 - s.beta_1))
                v.add_((g * g - v) * (1 - s.beta_2))
                p.sub_((m * alpha.view(shape)) / (v.sqrt() + s.epsilon))
            else:
                if wd:
                    p = p - p * wd * lr_t.view(shape)
                m = m + (g - m) * (1 - s.beta_1)
                v = v + (g * g - v) * (1 - s.beta_2)
                p = p - (m * alpha.view(shape)) / (v.sqrt() + s.epsilon)
                self.params[n].index_copy_(0, idx, p)
                self.m[n].index_copy_(0, idx, m)
                self.v[n].index_copy_(0, idx, v)


def groups(batches: dict[int, np.ndarray]) -> list[list[int]]:
    """Models whose batches have the same length step together: {model: indices} -> lists of models,
    longest batches first (usually one group: only an epoch's partial last batch differs)."""
    by_len: dict[int, list[int]] = {}
    for k in sorted(batches):
        by_len.setdefault(len(batches[k]), []).append(k)
    return [by_len[n] for n in sorted(by_len, reverse=True)]


def train_steps_together(models: Sequence[nn.Module], m: dict[str, Any], xs: Sequence[np.ndarray],
                         ys: Sequence[np.ndarray], streams: Sequence[Any], start: int, stop: int) -> Stack:
    """Exactness use (CPU): train ``models`` together, model k on ``streams[k]``'s global steps
    start .. stop - 1 over ``xs[k]``, ``ys[k]`` (what ``torch_lockstep.train_steps`` does to each alone,
    dropout off or with the models' generators at the global generator's state); the models receive
    the result. Each model has its own sequence of steps; step i of every model runs in one batched call."""
    schedule = ThreePhase.from_model_config(m) if m["useLrSchedule"] else None
    settings = AdamSettings.from_model_config(m)
    gens = []
    for _ in models:
        g = torch.Generator()
        g.set_state(torch.get_rng_state())
        gens.append(g)
    x0 = torch.from_numpy(xs[0][:2])
    stack = Stack(models, settings, gens, x0)
    per_model = [list(s.steps(start, stop)) for s in streams]
    for i in range(max(len(b) for b in per_model)):
        now = {k: b[i] for k, b in enumerate(per_model) if i < len(b)}
        for members in groups(now):
            x = torch.stack([torch.from_numpy(xs[k][now[k]]) for k in members])
            y = torch.stack([torch.from_numpy(ys[k][now[k]]) for k in members])
            lr = [schedule(stack.steps[k]) if schedule else settings.lr for k in members]
            stack.step(members, x, y, lr)
    for k, model in enumerate(models):
        stack.write_model(k, model)
    return stack


# ----- the k-fold runs: one TorchTrainer per model for its bookkeeping, one Stack for the steps ------
def _same_training(jobs: Sequence[Any]) -> None:
    """The models of one stack differ in their data and seed only: same spec and modelConfig."""
    first = jobs[0]
    for job in jobs[1:]:
        if job.spec.to_dict() != first.spec.to_dict() or job.cfg.model != first.cfg.model:
            raise ModelError(f"--together: {job.run_dir} trains another architecture or modelConfig than "
                             f"{first.run_dir}; runs trained together differ only in data and seed")


def _generator(device: torch.device) -> torch.Generator:
    """A generator in the state a lone run's dropout would draw from next (the global one, now)."""
    g = torch.Generator(device=device)
    g.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return g


def _stopped(early: Any) -> bool:
    """Whether a (resumed) model had stopped early: its last update returned True."""
    return 0 < early.wait and early.wait >= early.patience


class _Member:
    """One model of the stack with its lone trainer (``torch_trainer.TorchTrainer``), whose model,
    optimiser, schedulers, early stopping, checkpoint writer and evaluation it keeps using."""

    def __init__(self, trainer: Any, generator: torch.Generator, done: int) -> None:
        self.trainer, self.generator, self.done = trainer, generator, done
        self.stopped = _stopped(trainer.early)

    @property
    def job(self) -> Any:
        return self.trainer.job

    def lr(self) -> float:
        """The learning rate of this model's next step (as ``torch_trainer.Stepper`` sets it)."""
        tr = self.trainer
        if tr.schedule:
            tr.optimizer.param_groups[0]["lr"] = tr.schedule(tr.stepper.step)
        return float(tr.optimizer.param_groups[0]["lr"])

    def sync_out(self, stack: Stack, k: int) -> None:
        """Stack -> the lone trainer's model and optimiser state (for evaluation and its checkpoint)."""
        tr = self.trainer
        stack.write_model(k, tr.model)
        adam = stack.adam_state(k)
        for name, p in tr.model.named_parameters():
            if name in adam:
                tr.optimizer.state[p] = adam[name]

    def sync_in(self, stack: Stack, k: int) -> None:
        """The lone trainer's (resumed) model and optimiser state -> stack."""
        tr = self.trainer
        stack.read_model(k, tr.model)
        stack.set_adam_state(k, {name: tr.optimizer.state[p] for name, p in tr.model.named_parameters()
                                 if p in tr.optimizer.state})

    def swap_in(self) -> None:
        """Make this model's generator the global one (what its lone trainer draws from and saves)."""
        device = self.generator.device
        if device.type == "cuda":
            torch.cuda.set_rng_state(self.generator.get_state(), device)
        else:
            torch.set_rng_state(self.generator.get_state())

    def swap_out(self) -> None:
        """Keep the global generator's state as this model's (after its lone trainer drew from it)."""
        device = self.generator.device
        self.generator.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())

    def save_resume(self, epoch: int) -> None:
        """The lone trainer's checkpoint, with this model's dropout generator as the global state it saves."""
        self.swap_in()
        self.trainer.save_resume(epoch)


ENGINES = ("batched", "interleaved")


def default_engine(device: torch.device) -> str:
    """``batched`` (one vmapped step for all models) on CUDA, where one small model leaves the GPU
    idle; ``interleaved`` (each model's own lone step in turn, in this one process) on CPU, where a
    batched step is no faster (the convolutions already fill the cores: bench/train_many.py) and
    float32 rounding of the grouped kernels would make the runs differ from lone runs."""
    return "batched" if device.type == "cuda" else "interleaved"


def fit_together(jobs: Sequence[Any], *, threads: int | None = None, engine: str | None = None) -> list[Any]:
    """Train the runs of ``jobs`` (``job.Job``, one per fold or seed) in this process; each gets the
    ``FitResult`` and run files its lone ``torch_trainer.fit`` would give. Evaluation periods advance
    together; within one, each model takes its own plan's steps (``engine``: all models' step i as
    one batched call, or each model's lone step in turn; ``default_engine`` by device), and is
    evaluated, selected, checked for early stopping and checkpointed (``resume/state.pt``, the lone
    trainer's format, so a fold can also be resumed alone) when its period ends."""
    if threads is not None:
        torch.set_num_threads(threads)
    _same_training(jobs)
    m = jobs[0].cfg.model
    if m["precision"] == "fp16" and torch.cuda.is_available():
        raise ConfigError("--together trains in fp32 or bf16 (fp16 needs a loss scaler per model)",
                          source="modelConfig.precision")
    members: list[_Member] = []
    for job in jobs:
        tr = TorchTrainer(job)  # seeds the global generator with the job's seed and builds the model
        tr.forward = tr.model  # no torch.compile: the stack runs the steps, the model only evaluates
        start = tr.load_resume() if job.resume else 0
        if start == 0 and job.writer:
            job.save_init_weights(export_weights(tr.model, job.spec))
            tr.save_resume(0)
        job.log.info(f"trained together with {len(jobs) - 1} other run(s) in one process (--together)"
                     + ("; modelConfig.compile is not applied" if m["compile"] else ""))
        members.append(_Member(tr, _generator(tr.device), start))
    first = members[0].trainer
    engine = engine or default_engine(first.device)
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    stack = None
    if engine == "batched":
        stack = Stack([mb.trainer.model for mb in members], first.adam, [mb.generator for mb in members],
                      first.x_train[:2])
        stack.amp = first.stepper.amp
        for k, mb in enumerate(members):
            mb.sync_in(stack, k)
    for mb in members:
        mb.job.log.info(f"together: {engine} steps ({'one vmapped step for all runs' if stack else 'each run its own step in turn'})")
    periods = max(mb.job.epochs for mb in members)
    for period in range(min(mb.done for mb in members), periods):
        active = [k for k, mb in enumerate(members)
                  if not mb.stopped and mb.done == period and period < mb.job.epochs]
        if not active:
            continue
        t0 = time.perf_counter()
        if stack is not None:
            figures = _train_period(stack, members, active, period)
        else:
            figures = {}
            for k in active:
                members[k].swap_in()
                figures[k] = members[k].trainer.train_epoch(period + 1)  # the lone trainer's own epoch
                members[k].swap_out()
        seconds = time.perf_counter() - t0
        for k in active:
            mb, tr = members[k], members[k].trainer
            if stack is not None:
                mb.sync_out(stack, k)
            val_logits = tr.logits(tr.x_val)
            val = evaluate(mb.job.data.val.y, val_logits)
            record = epoch_record(period + 1, figures[k], val, tr.optimizer.param_groups[0]["lr"])
            if mb.job.record(record, seconds, val_logits):
                tr.best_state = {n: v.detach().cpu().clone() for n, v in tr.model.state_dict().items()}
            if tr.plateau:
                tr.plateau.step(record["val_loss"])
            mb.stopped = tr.early.update(record["val_loss"])
            mb.save_resume(period + 1)
            mb.done = period + 1
            if mb.stopped:
                mb.job.log.info(f"early stopping after epoch {period + 1} (val_loss has not improved for "
                                f"{tr.early.patience} epochs)")
    results = []
    for k, mb in enumerate(members):
        tr, job = mb.trainer, mb.job
        if tr.best_state is not None:
            tr.model.load_state_dict(tr.best_state)
        saved = tr._write_model()
        results.append(FitResult(test_logits=tr.logits(tr._tensor(job.data.test.X)), stopped_early=mb.stopped,
                                 val_proba=predict_proba(saved, job.data.val.X)))
        tr.group.close(wait=True)
    return results


def _train_period(stack: Stack, members: Sequence[_Member], active: Sequence[int],
                  period: int) -> dict[int, dict[str, Any]]:
    """Evaluation period ``period`` (0-based) of the ``active`` models: every model its own plan's
    batches, step i of all of them batched; returns each model's train figures (as
    ``TorchTrainer.train_epoch`` reports them)."""
    batches = {k: members[k].job.plan.batches(period) for k in active}
    orders = {k: torch.from_numpy(np.concatenate(b)).to(members[k].trainer.device) for k, b in batches.items()}
    offsets = dict.fromkeys(active, 0)
    device = members[active[0]].trainer.device
    loss_sum = {k: torch.zeros((), dtype=torch.float64, device=device) for k in active}
    preds: dict[int, list[torch.Tensor]] = {k: [] for k in active}
    labels: dict[int, list[torch.Tensor]] = {k: [] for k in active}
    for i in range(max(len(b) for b in batches.values())):
        now = {k: batches[k][i] for k in active if i < len(batches[k])}
        for group in groups(now):
            xs, ys = [], []
            for k in group:
                tr = members[k].trainer
                idx = orders[k][offsets[k]:offsets[k] + len(now[k])]
                offsets[k] += len(now[k])
                xs.append(tr.x_train[idx])
                ys.append(tr.y_train[idx])
            lrs = [members[k].lr() for k in group]
            loss, logits = stack.step(group, torch.stack(xs), torch.stack(ys), lrs)
            for j, k in enumerate(group):
                members[k].trainer.stepper.step += 1
                loss_sum[k] += loss[j].double() * len(now[k])
                preds[k].append(logits[j].argmax(dim=-1))
                labels[k].append(ys[j])
    out = {}
    for k in active:
        counts = Counts.from_labels(torch.cat(labels[k]).cpu().numpy(), torch.cat(preds[k]).cpu().numpy())
        out[k] = summarise(float(loss_sum[k]) / offsets[k], counts)
    return out
