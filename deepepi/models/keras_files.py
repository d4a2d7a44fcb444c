"""Keras model files: save a `.keras` file atomically, load one with safe_mode=True, and read a
reference-trained file's layers as plain values.

Imported lazily (needs TensorFlow).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from deepepi.core.errors import ModelError
from deepepi.core.io import atomic_path
from deepepi.models.reference import KerasLayer
from deepepi.models.weights import check_finite_weights


def save_keras_model(path: str | Path, model: keras.Model) -> None:
    """Write a `.keras` file atomically (the temporary name keeps the suffix Keras insists on)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"Keras models are saved as '.keras', got {path.name!r}", source=str(path))
    with atomic_path(path) as tmp:
        model.save(tmp)


def load_keras_model(path: str | Path) -> keras.Model:
    """Load a `.keras` (or legacy `.h5`) file with safe_mode=True (no lambdas, no custom code; the
    only custom layer, SpecCnn's spectrogram, is registered by importing its module)."""
    from deepepi.models.speccnn import keras as keras_speccnn

    path = Path(path)
    if not path.is_file():
        raise ModelError("Keras model file not found", source=str(path))
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):  # Keras calls this "File not found"
        raise ModelError("not a loadable .keras model (not a zip archive: truncated, or another kind of file)",
                         source=str(path))
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises ValueError/OSError/zip errors alike for unusable files
        raise ModelError(f"not a loadable .keras model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                         source=str(path)) from None
    check_finite_weights({w.path: keras.ops.convert_to_numpy(w) for w in model.weights}, source=str(path))
    return model


SETTINGS = ("strides", "kernel_size", "padding", "activation", "epsilon")


def read_reference(path: str | Path) -> tuple[list[KerasLayer], tuple[int | None, ...],
                                              Callable[[np.ndarray], np.ndarray]]:
    """A reference-trained .keras/.h5 file (loaded with safe_mode): its layers in build order as plain
    values, its input shape, and a function x_g [n, window] -> the file's own outputs (for a self-check)."""
    model = load_keras_model(path)
    layers = [KerasLayer(layer.name, type(layer).__name__,
                         [np.asarray(w, dtype=np.float32) for w in layer.get_weights()],
                         {k: v for k, v in layer.get_config().items() if k in SETTINGS})
              for layer in model.layers]
    shape = tuple(model.input_shape)

    def outputs(x_g: np.ndarray) -> np.ndarray:
        x = x_g[..., None] if len(shape) == 3 else x_g
        return keras.ops.convert_to_numpy(model(x, training=False)).astype(np.float32)

    return layers, shape, outputs
