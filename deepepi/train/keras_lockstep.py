"""Keras side of lockstep runs: the model, its shared-mask dropout, the trainer's step, float64 readouts.

Used by ``train.lockstep`` (drift) and ``train.prove`` (``deepepi prove-trainers``); normal training
never imports it. The step is the Keras trainer's own: ``keras_trainer.compile_model`` (optimiser and
loss) and ``model.fit`` on ``keras_trainer.input_pipeline`` with the trainer's per-step schedule
callback. With a ``MaskFeed`` every Dropout layer is replaced by ``FedDropout``, whose mask comes from
the shared numpy stream (``train.masks``) through ``tf.numpy_function`` at run time.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from deepepi.models.keras_weights import export_weights, import_weights
from deepepi.models.registry import build
from deepepi.train.keras_trainer import StepSchedule, compile_model, input_pipeline
from deepepi.train.masks import MaskFeed
from deepepi.train.optim import AdamSettings
from deepepi.train.schedule import ThreePhase


class FedDropout(keras.layers.Layer):
    """Dropout whose keep-mask is ``feed.mask(name, shape, rate)`` (identity outside training)."""

    def __init__(self, rate: float, feed: MaskFeed, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate, self.feed = float(rate), feed

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training or self.rate == 0:
            return x
        dtype = x.dtype.as_numpy_dtype if hasattr(x.dtype, "as_numpy_dtype") else np.dtype(x.dtype)

        def draw(shape: np.ndarray) -> np.ndarray:
            return self.feed.mask(self.name, tuple(shape), self.rate).astype(dtype)

        mask = tf.numpy_function(draw, [tf.shape(x)], tf.as_dtype(dtype), stateful=True)
        return x * tf.reshape(mask, tf.shape(x))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


def seeded_weights(spec: Any, seed: int) -> dict[str, np.ndarray]:
    """Keras's seeded initialisation as neutral weights (what a TensorFlow run with ``seed`` starts from)."""
    keras.utils.set_random_seed(seed)
    return export_weights(build(spec, "tensorflow"), spec)


def lockstep_model(spec: Any, weights: dict[str, np.ndarray], m: dict[str, Any], dtype: str,
                   feed: MaskFeed | None = None, adam: AdamSettings | None = None) -> keras.Model:
    """A compiled model of any registered architecture holding ``weights``, computing in ``dtype``;
    with ``feed`` its Dropout layers take their masks from the feed; ``adam`` replaces the config's
    optimiser settings (test-only perturbations)."""
    tf.config.experimental.enable_op_determinism()
    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_dtype_policy(dtype)
    keras.config.set_floatx(dtype)  # the loss takes floatx when built: float32 would cap the precision
    try:
        model = build(spec, "tensorflow")
        if feed is not None:
            model = keras.models.clone_model(model, clone_function=lambda layer: _fed(layer, feed))
        import_weights(model, spec, weights)
        compile_model(model, m, adam)
    finally:
        keras.config.set_dtype_policy(policy)
        keras.config.set_floatx(floatx)
    return model


def _fed(layer: keras.layers.Layer, feed: MaskFeed) -> keras.layers.Layer:
    if isinstance(layer, keras.layers.Dropout):
        return FedDropout(layer.rate, feed, name=layer.name, dtype=layer.dtype_policy)
    return layer.__class__.from_config(layer.get_config())


class _FeedStep(keras.callbacks.Callback):
    """Tells the mask feed which global step the next batch is."""

    def __init__(self, feed: MaskFeed, start: int) -> None:
        super().__init__()
        self.feed, self.start = feed, start

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.feed.step = self.start + batch


def train_steps(model: keras.Model, m: dict[str, Any], x: np.ndarray, y: np.ndarray, stream: Any,
                start: int, stop: int, feed: MaskFeed | None = None,
                class_weight: dict[int, float] | None = None) -> None:
    """model.fit on the stream's steps start .. stop - 1 (the model compiled by ``lockstep_model``; its
    optimiser state carries over between calls). ``class_weight`` is a test-only perturbation."""
    callbacks: list[keras.callbacks.Callback] = [_FeedStep(feed, start)] if feed is not None else []
    if m["useLrSchedule"]:
        callbacks.append(StepSchedule(ThreePhase.from_model_config(m)))
    model.fit(input_pipeline(x, y, stream, start, stop), steps_per_epoch=stop - start, epochs=1,
              callbacks=callbacks, shuffle=False, verbose=0, class_weight=class_weight)


def neutral(model: keras.Model, spec: Any) -> dict[str, np.ndarray]:
    """Neutral weights in the model's own dtype (export_weights rounds to float32)."""
    out: dict[str, np.ndarray] = {}
    for name, params in spec.weight_groups():
        for param, value in zip(params, model.get_layer(name).get_weights(), strict=True):
            out[f"{name}/{param}"] = np.asarray(value, dtype=np.float64)
    return out


def optimizer_state(model: keras.Model, spec: Any) -> dict[str, np.ndarray]:
    """Adam's first and second moments as neutral tensors (``m:<key>``, ``v:<key>``) and the step count."""
    opt, variables = model.optimizer, model.trainable_variables
    saved = [v.numpy() for v in variables]
    out: dict[str, np.ndarray] = {"iterations": np.asarray(float(opt.iterations.numpy()))}
    try:
        for slot, values in (("m", opt._momentums), ("v", opt._velocities)):
            for var, value in zip(variables, values, strict=True):
                var.assign(value)
            out.update({f"{slot}:{k}": a for k, a in neutral(model, spec).items()
                        if not k.rsplit("/", 1)[-1].startswith("moving_")})
    finally:
        for var, value in zip(variables, saved):
            var.assign(value)
    return out
