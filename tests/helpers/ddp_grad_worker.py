"""Started by tests/train/test_train_ddp.py under torchrun: one data-parallel step's gradients -> npz.

With WORLD_SIZE 1 it computes the global batch's gradients in one process; under torchrun each rank
takes its slice (``torch_ddp.Group.shard``) and DistributedDataParallel averages. ``--local-bn``
keeps per-rank BatchNorm statistics (the negative control the test expects to differ).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from deepepi.models.deepepi_cnn.spec import ArchSpec
from deepepi.models.deepepi_cnn.torch import DeepEpiCnn
from deepepi.train import torch_ddp

SPEC = ArchSpec(window=96, filters=(4, 6, 6), strides=(1, 2, 1), kernel_size=5, dense_widths=(8, 4),
                dense_dropout=0.0)  # dropout masks are drawn per rank
BATCH = 33  # odd: the two ranks' slices differ in size (16 and 17)


def main(out: str, local_bn: bool) -> None:
    torch.use_deterministic_algorithms(True)
    group = torch_ddp.join(cuda=False)
    torch.manual_seed(0)
    model = DeepEpiCnn(SPEC)
    rng = np.random.default_rng(1)
    x = torch.from_numpy((1.0 + 0.2 * rng.standard_normal((BATCH, SPEC.window))).astype(np.float32))
    y = torch.from_numpy((rng.random(BATCH) < 0.4).astype(np.int64))
    if local_bn and group.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, forward_sync_buffers=False)
    else:
        net = group.wrap(model)
    lo, hi = group.shard(BATCH)
    loss = F.cross_entropy(net(x[lo:hi]), y[lo:hi], reduction="sum") / group.loss_denominator(BATCH)
    loss.backward()
    if group.rank == 0:
        arrays = {f"grad/{k}": p.grad.numpy() for k, p in model.named_parameters()}
        arrays.update({f"buffer/{k}": b.numpy() for k, b in model.named_buffers() if b.is_floating_point()})
        np.savez(out, **arrays)
    group.close()
    # Exit before DDP is freed: freeing its reducer right after its only backward can drop the last
    # reference to the gloo process group while a gloo thread still frees that backward's all-reduce,
    # whose context needs the GIL the destructor holds while it joins that thread (a deadlock).
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], "--local-bn" in sys.argv[2:])
