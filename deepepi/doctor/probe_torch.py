"""What PyTorch sees: its build (CUDA/ROCm), the GPUs it can use. Run by `deepepi doctor` in a child.

A child process, because importing a framework with a broken CUDA install can abort the
interpreter; doctor must still finish and say so. Prints one JSON object on stdout.
"""

from __future__ import annotations

import json
from typing import Any


def probe() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    gpus = []
    for i in range(torch.cuda.device_count() if cuda else 0):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": props.name, "capability": f"{props.major}.{props.minor}",
                     "memory_gib": round(props.total_memory / 2**30, 1)})
    mps = getattr(torch.backends, "mps", None)
    return {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "rocm_build": getattr(torch.version, "hip", None),
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "cuda_available": cuda,
        "gpus": gpus,
        "bf16_on_gpu": bool(cuda and torch.cuda.is_bf16_supported()),
        "mps_available": bool(mps is not None and mps.is_available()),
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    print(json.dumps(probe()))
