"""SpecCnn in Keras 3, built from a SpecCnnSpec; the spectrogram is a registered layer (safe_mode loads it).

Imported lazily (needs TensorFlow). Weight export/import, counting and saving are keras_deepepi's,
which work for any spec.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from deepepi.models.speccnn.spec import SpecCnnSpec

MODEL_NAME = "spec_cnn"


@keras.saving.register_keras_serializable(package="deepepi", name="Spectrogram")
class Spectrogram(keras.layers.Layer):
    """[B, window] g -> [B, n_bins, n_spec, 1]: framing + mean removal + DFT as one strided convolution
    with a constant kernel (no weights), magnitude, values below zero_tol set to 0."""

    def __init__(self, window: int, analysis_samples: int, spec_samples: int, spec_step: int,
                 zero_tol: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = SpecCnnSpec(window=window, analysis_samples=analysis_samples, spec_samples=spec_samples,
                                spec_step=spec_step, zero_tol=zero_tol)
        self.kernel = self.spec.dft_kernel()[:, None, :]  # (spec_samples, 1, 2 * n_bins)

    def call(self, x: Any) -> Any:
        s = self.spec
        kernel = keras.ops.convert_to_tensor(self.kernel)
        if keras.backend.standardize_dtype(x.dtype) != keras.backend.standardize_dtype(kernel.dtype):
            kernel = keras.ops.cast(kernel, x.dtype)  # float64 lockstep proofs (train.prove)
        frames = keras.ops.conv(keras.ops.expand_dims(x[:, s.offset:], -1), kernel,
                                strides=s.spec_step, padding="valid")[:, :s.n_spec]  # [B, n_spec, 2 * n_bins]
        re, im = frames[..., :s.n_bins], frames[..., s.n_bins:]
        mag = keras.ops.sqrt(re * re + im * im)
        mag = keras.ops.where(mag < s.zero_tol, keras.ops.zeros_like(mag), mag)
        return keras.ops.expand_dims(keras.ops.transpose(mag, (0, 2, 1)), -1)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], self.spec.n_bins, self.spec.n_spec, 1)

    def get_config(self) -> dict[str, Any]:
        s = self.spec
        return {**super().get_config(), "window": s.window, "analysis_samples": s.analysis_samples,
                "spec_samples": s.spec_samples, "spec_step": s.spec_step, "zero_tol": s.zero_tol}


def build_keras_model(spec: SpecCnnSpec) -> keras.Model:
    """Functional model: input float32 [B, window] in g -> logits [B, num_classes] (no softmax)."""
    inputs = keras.Input(shape=(spec.window,), dtype="float32", name="input")
    x = Spectrogram(spec.window, spec.analysis_samples, spec.spec_samples, spec.spec_step, spec.zero_tol,
                    name="spectrogram")(inputs)
    for i, f in enumerate(spec.filters, start=1):
        x = keras.layers.Conv2D(f, spec.kernel_size, padding="same", name=f"conv{i}")(x)
        x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"conv{i}_pool")(x)
        x = keras.layers.Dropout(spec.dropout, name=f"conv{i}_dropout")(x)
        x = keras.layers.BatchNormalization(axis=-1, momentum=spec.bn_momentum, epsilon=spec.bn_epsilon,
                                            name=f"conv{i}_bn")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(spec.dropout, name="dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(spec.num_classes, name="logits")(x), name=MODEL_NAME)


def spectrogram(spec: SpecCnnSpec, x_g: np.ndarray) -> np.ndarray:
    """The front end alone, [n, n_bins, n_spec] (for tests)."""
    layer = Spectrogram(spec.window, spec.analysis_samples, spec.spec_samples, spec.spec_step, spec.zero_tol)
    return keras.ops.convert_to_numpy(layer(np.asarray(x_g, dtype=np.float32)))[..., 0]
