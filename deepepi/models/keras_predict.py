"""Inference for any architecture's Keras model: softmax probabilities for windows in g.

Imported lazily (needs TensorFlow).
"""

from __future__ import annotations

import keras
import numpy as np

from deepepi.models.base import model_input


def predict_proba(model: keras.Model, x_g: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities float32 [n, num_classes] for windows in g, in inference mode."""
    x = model_input(x_g, int(model.input_shape[-1]))
    outs = [keras.ops.convert_to_numpy(keras.ops.softmax(model.predict_on_batch(x[i:i + batch_size]), axis=-1))
            for i in range(0, len(x), batch_size)]
    if not outs:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    return np.concatenate(outs).astype(np.float32, copy=False)
