"""Native Keras adapter: a ``model.keras`` file (safe_mode) with the run's ``config.json`` beside it.

The .keras file does not record window, step or preprocessing, so its run directory's config is
required (as for ``deepepi export``).
"""

from __future__ import annotations

from pathlib import Path

from deepepi.core.errors import ModelError
from deepepi.core.preprocessing import from_config as preprocessing_from_config
from deepepi.runtimes.base import NativeRuntime, native_metadata


def _set_threads(tf, threads: int) -> None:  # noqa: ANN001 - the tensorflow module
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already initialised in this process: keep its thread pools
        pass


def load(path: Path, *, threads: int | None = None) -> NativeRuntime:
    import tensorflow as tf

    from deepepi.runs.resolve import resolve_run
    from deepepi.models import keras_files, keras_predict
    from deepepi.models.registry import spec_from_config

    if threads is not None:
        _set_threads(tf, threads)
    run = resolve_run(path)
    spec = spec_from_config(run.config)
    model = keras_files.load_keras_model(path)
    window = int(model.input_shape[-1])
    if window != spec.window:
        raise ModelError(f"model input window {window} differs from config.json's {spec.window}", source=str(path))
    return NativeRuntime(
        path=path, format="tensorflow", window=window, preprocessing=preprocessing_from_config(run.config),
        predict_g=lambda x: keras_predict.predict_proba(model, x),
        metadata=native_metadata(path, run.config, spec, "tensorflow", tf.__version__),
        runtime={"runtime": "tensorflow", "runtime_version": tf.__version__,
                 "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or None})
