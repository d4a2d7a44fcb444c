"""AMBER in Keras 3, built from an AmberSpec with built-in layers only (safe_mode loads it as is).

Imported lazily (needs TensorFlow). LSTMs are unrolled (the sequence is a few steps long), which keeps
the graph free of while-loops for tf2onnx and TFLite. Weight export/import, counting and saving are
keras_deepepi's, which work for any spec.
"""

from __future__ import annotations

import keras

from deepepi.models.amber.spec import AmberSpec

MODEL_NAME = "amber"


def build_keras_model(spec: AmberSpec) -> keras.Model:
    """Functional model: input float32 [B, window] in g -> logits [B, num_classes] (no softmax)."""
    inputs = keras.Input(shape=(spec.window,), dtype="float32", name="input")
    x = keras.layers.Reshape((spec.window, 1), name="reshape")(inputs)
    x = keras.layers.Cropping1D((spec.window - spec.datapoint, 0), name="datapoint")(x)
    for i, f in enumerate(spec.filters, start=1):
        x = keras.layers.Conv1D(f, spec.kernel_size, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(axis=-1, momentum=spec.bn_momentum, epsilon=spec.bn_epsilon,
                                            name=f"conv{i}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{i}_relu")(x)
        x = keras.layers.MaxPooling1D(2, name=f"conv{i}_pool")(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(spec.row_hidden, return_sequences=True, unroll=True),
                                   name="bilstm")(x)
    x = keras.layers.LSTM(spec.col_hidden, return_sequences=True, unroll=True, name="lstm")(x)
    attended = keras.layers.Attention(name="attention")([x, x])
    fused = keras.layers.Concatenate(name="concat")([x, attended])
    mha = keras.layers.MultiHeadAttention(spec.heads, spec.key_dim, name="mha")(fused, fused)
    x = keras.layers.Add(name="residual")([fused, mha])
    x = keras.layers.Dense(spec.dense_units, activation="relu", name="dense")(x)
    x = keras.layers.BatchNormalization(axis=-1, momentum=spec.bn_momentum, epsilon=spec.bn_epsilon,
                                        name="dense_bn")(x)
    x = keras.layers.Dropout(spec.dropout, name="dropout")(x)
    x = keras.layers.GlobalMaxPooling1D(name="gmp")(x)
    return keras.Model(inputs, keras.layers.Dense(spec.num_classes, name="logits")(x), name=MODEL_NAME)
