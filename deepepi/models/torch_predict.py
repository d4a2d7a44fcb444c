"""Inference for any architecture's PyTorch model: softmax probabilities for windows in g.

Imported lazily (needs PyTorch).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from deepepi.models.base import model_input


def predict_proba(model: nn.Module, x_g: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities float32 [n, num_classes] for windows in g, in eval mode, without grads."""
    x = model_input(x_g, model.spec.window)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                xb = torch.from_numpy(x[start:start + batch_size]).to(device)
                outs.append(torch.softmax(model(xb), dim=-1).cpu().numpy())
    finally:
        model.train(was_training)
    if not outs:
        return np.zeros((0, model.spec.num_classes), dtype=np.float32)
    return np.concatenate(outs).astype(np.float32, copy=False)
