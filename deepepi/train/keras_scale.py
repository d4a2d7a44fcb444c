"""Keras mixed precision and tf.distribute for the Keras trainer.

Precision: modelConfig.precision ``bf16`` / ``fp16`` trains under the Keras ``mixed_bfloat16`` /
``mixed_float16`` policy (float32 variables, low-precision compute; ``fp16`` gets Keras's automatic
LossScaleOptimizer). A float32 ``Activation`` after the logits keeps the loss and every prediction in
float32. The saved model is rebuilt under the float32 policy from the trained (float32) variables,
so model.keras, weights.npz and every ONNX export are float32 whatever the training precision.

Distribution: with ``TF_CONFIG`` set, ``MultiWorkerMirroredStrategy`` (one process per worker, the
run directory on a shared file system); otherwise ``MirroredStrategy`` when several GPUs are
visible; otherwise none. ``batchSize`` stays the global batch, split between the replicas.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, ContextManager, Iterator

import keras
import tensorflow as tf

POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
FLOAT32_OUT = "logits_float32"


@contextmanager
def _global_policy(name: str) -> Iterator[None]:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build(builder: Callable[[], keras.Model], precision: str) -> keras.Model:
    """The training model under ``precision``'s policy; float32 logits out (same weights, same order)."""
    policy = POLICIES[precision]
    if policy == "float32":
        return builder()
    with _global_policy(policy):
        model = builder()
        out = keras.layers.Activation("linear", dtype="float32", name=FLOAT32_OUT)(model.outputs[0])
        return keras.Model(model.inputs, out, name=model.name)


def strategy() -> tf.distribute.Strategy | None:
    """MultiWorkerMirroredStrategy from TF_CONFIG, MirroredStrategy over several GPUs, else None."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return None


def scope(s: tf.distribute.Strategy | None) -> ContextManager[Any]:
    """Where variables are created: the strategy's scope, or nothing."""
    return s.scope() if s is not None else nullcontext()


def describe(precision: str, s: tf.distribute.Strategy | None) -> str:
    where = "" if s is None else f", {type(s).__name__} over {s.num_replicas_in_sync} replicas"
    return f"Keras policy {POLICIES[precision]}{where}"
