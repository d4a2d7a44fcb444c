"""PyTorch data-parallel training under torchrun: one process per device, DistributedDataParallel.

``torchrun --nproc_per_node N -m deepepi train ...`` starts N copies of the trainer. Every rank
prepares the same data and walks the same seeded batch stream (``batches.BatchStream``); each global
batch of ``batchSize`` samples is split into N contiguous index slices, one per rank, so the global
batch (hence the learning-rate semantics) does not change with N.

Equivalence with one process on the same global batch:
- the loss each rank backpropagates is its slice's *sum* of cross-entropies divided by
  ``global_n / N``; DDP averages gradients over the N ranks, so the update is that of the global
  batch's mean loss, also when the slices differ in size (a partial last batch);
- BatchNorm uses the *global* batch statistics: ``SyncKerasBatchNorm1d`` all-reduces the per-channel
  sums (mean first, then the squared deviations, as one process computes them) through the
  autograd-aware ``torch.distributed.nn`` all-reduce, and updates the running statistics with the
  biased variance as ``KerasBatchNorm1d`` does. Per-rank statistics would make the result depend on N.
Dropout masks are drawn per rank, so runs with dropout on are equivalent in distribution only.

Backends: nccl when CUDA is present (one GPU per rank, ``cuda:LOCAL_RANK``), gloo on CPU. Only rank 0
writes files and prints (``job.is_writer``); every rank reads the resume checkpoint. Several nodes
need a run directory on a shared file system.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from deepepi.models.torch_bn import KerasBatchNorm1d
from deepepi.train.job import world_size

# The autograd-aware all-reduce is deprecated in favour of functional collectives, which have no
# differentiable all-reduce yet; its gradient (an all-reduce of the gradients) is what BatchNorm needs.
warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_reduce is deprecated",
                        category=FutureWarning)


class SyncKerasBatchNorm1d(KerasBatchNorm1d):
    """KerasBatchNorm1d with training statistics over the whole global batch (all ranks).

    Parameters and buffers are KerasBatchNorm1d's, so the state_dict (and every saved file) is unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.track_running_stats):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0, 2] if x.dim() == 3 else [0]
        shape = [1, -1, 1] if x.dim() == 3 else [1, -1]
        local_n = x.numel() // x.shape[1]
        n = all_reduce(torch.tensor(float(local_n), device=x.device, dtype=x.dtype))
        mean = all_reduce(x.sum(dim=dims)) / n
        centred = x - mean.reshape(shape)
        var = all_reduce(centred.square().sum(dim=dims)) / n  # biased, as F.batch_norm normalises
        out = centred * torch.rsqrt(var + self.eps).reshape(shape)
        out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.lerp_(mean.detach(), factor)
            self.running_var.lerp_(var.detach(), factor)
        return out


def convert_batch_norm(model: nn.Module) -> nn.Module:
    """Swap every KerasBatchNorm1d for SyncKerasBatchNorm1d in place (same parameters and buffers)."""
    for module in model.modules():
        if type(module) is KerasBatchNorm1d:
            module.__class__ = SyncKerasBatchNorm1d
    return model


@dataclass(frozen=True)
class Group:
    """This process's place in the process group (rank 0 of 1 when not under torchrun)."""

    rank: int
    world: int
    device: torch.device

    @property
    def active(self) -> bool:
        return self.world > 1

    def shard(self, n: int) -> tuple[int, int]:
        """[lo, hi): this rank's contiguous slice of a global batch of ``n`` samples."""
        return n * self.rank // self.world, n * (self.rank + 1) // self.world

    def loss_denominator(self, n: int) -> float:
        """Divide a slice's summed loss by this, and DDP's gradient mean gives the global batch mean."""
        return n / self.world

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64), e.g. an epoch's loss sum and confusion counts."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP over the model with global-batch BatchNorm; the model itself when not distributed.

        No buffer broadcast before each forward: synchronised BatchNorm keeps the running statistics
        equal on every rank (they are broadcast once, at construction).
        """
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        convert_batch_norm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)

    def close(self, *, wait: bool = False) -> None:
        """Leave the group. ``wait`` (every rank finished normally) meets the others at a barrier first,
        which gives gloo's threads time, with the GIL free, to release the last backward's all-reduces:
        freeing the group while one still does can deadlock at exit. After an error no rank waits."""
        if self.active and dist.is_initialized():
            if wait:
                dist.barrier()
            dist.destroy_process_group()


def join(cuda: bool) -> Group:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU), or a group of one without torchrun."""
    world = world_size()
    if world <= 1:
        return Group(0, 1, torch.device("cuda" if cuda else "cpu"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    return Group(dist.get_rank(), dist.get_world_size(), device)

