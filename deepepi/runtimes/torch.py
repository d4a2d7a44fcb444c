"""Native PyTorch adapter: a ``model.pt`` checkpoint (loaded with ``weights_only=True``).

The checkpoint carries its spec and resolved config, so a ``.pt`` file needs nothing beside it;
a ``threshold.json`` beside it (a run directory) supplies ``decision_threshold``.
"""

from __future__ import annotations

from pathlib import Path

from deepepi.core.config import from_dict
from deepepi.core.preprocessing import from_config as preprocessing_from_config
from deepepi.runtimes.base import NativeRuntime, native_metadata


def load(path: Path, *, threads: int | None = None) -> NativeRuntime:
    import torch

    from deepepi.models import torch_checkpoint, torch_predict

    if threads is not None:
        torch.set_num_threads(threads)
    model, spec, payload = torch_checkpoint.load_checkpoint(path)
    cfg = from_dict(payload["config"], source=str(path), warn=False)
    return NativeRuntime(
        path=path, format="pytorch", window=spec.window, preprocessing=preprocessing_from_config(cfg),
        predict_g=lambda x: torch_predict.predict_proba(model, x),
        metadata=native_metadata(path, cfg, spec, "pytorch", torch.__version__),
        runtime={"runtime": "torch", "runtime_version": torch.__version__,
                 "intra_op_threads": torch.get_num_threads()})
