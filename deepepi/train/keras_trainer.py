"""TensorFlow/Keras trainer: model.fit on a tf.data pipeline with the reference's callbacks.

Best-weights saving decided by the shared Selector (deepepi.train.selection), EarlyStopping (val_loss,
earlyStoppingPatience), ReduceLROnPlateau (val_loss, lrFactor, lrPatience, lrMin) or, when
useLrSchedule is on, the shared three-phase schedule applied per batch (plateau reduction off).
Loss: sparse categorical cross-entropy from logits. Keras runs silently (verbose=0); our callback
draws the progress bar and computes the epoch figures with the shared numpy metrics: validation
from a full predict pass, training from confusion counts of the epoch's running predictions.

Batches come from the shared training plan (``plan.Plan``: ``batches.BatchStream`` or
``BalancedStream``, epoch or step mode, the same the PyTorch trainer uses), fed through a tf.data
generator that spans all remaining evaluation periods. The optimiser is
built from ``optim.AdamSettings`` (epsilon 1e-7 stated, not left to each framework's default).

Precision and distribution (``keras_scale``): ``precision`` bf16/fp16 trains under a Keras mixed
policy with float32 logits; the saved model is always float32. tf.distribute strategies come from
TF_CONFIG (several workers) or from several visible GPUs.

Determinism: keras.utils.set_random_seed + tf.config.experimental.enable_op_determinism, so the
same seed on the same CPU build repeats the run. Resume: after every epoch the compiled model
(optimiser state included) is saved under resume/ and a JSON file records the epoch, history and
callback states; a resumed run continues from the last completed epoch with the same batches but a
freshly seeded dropout stream, so with dropout on it is not bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import math
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from deepepi.core import io
from deepepi.models.keras_files import save_keras_model
from deepepi.models.keras_predict import predict_proba
from deepepi.models.keras_weights import export_weights, import_weights
from deepepi.models.weights import save_weights
from deepepi.runs import layout as art
from deepepi.train import keras_scale
from deepepi.train.plan import Stream
from deepepi.scoring.metrics import Counts, epoch_record, evaluate, summarise
from deepepi.train.optim import AdamSettings
from deepepi.train.progress import EpochBar, Pace
from deepepi.train.job import FitResult, Job
from deepepi.train.schedule import ThreePhase
from deepepi.train.selection import Selector

STATE_FILE = "keras_state.json"
COUNT_KINDS = ("tp", "fp", "tn", "fn")
PREDICT_BATCH = 512
BEST_WEIGHTS = "best-{epoch:04d}.weights.h5"  # the selected epoch's weights, 1-based epoch


@keras.saving.register_keras_serializable(package="deepepi_train")
class ConfusionCount(keras.metrics.Metric):
    """One confusion count (tp|fp|tn|fn) of argmax predictions, summed over the epoch.

    Only counts are accumulated in the graph; every rate is derived by deepepi.scoring.metrics.
    """

    def __init__(self, kind: str = "tp", name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        truth = keras.ops.equal(keras.ops.reshape(keras.ops.cast(y_true, "int64"), (-1,)), 1)
        pred = keras.ops.equal(keras.ops.argmax(y_pred, axis=-1), 1)
        want_truth = self.kind in ("tp", "fn")
        want_pred = self.kind in ("tp", "fp")
        hit = keras.ops.logical_and(keras.ops.equal(truth, want_truth), keras.ops.equal(pred, want_pred))
        self.count.assign_add(keras.ops.sum(keras.ops.cast(hit, "float64")))

    def result(self) -> Any:
        return self.count

    def reset_state(self) -> None:
        self.count.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind}


def _optimizer(m: dict[str, Any], settings: AdamSettings | None = None) -> keras.optimizers.Optimizer:
    s = settings if settings is not None else AdamSettings.from_model_config(m)
    if s.weight_decay is not None:
        return keras.optimizers.AdamW(learning_rate=s.lr, weight_decay=s.weight_decay, beta_1=s.beta_1,
                                      beta_2=s.beta_2, epsilon=s.epsilon)
    return keras.optimizers.Adam(learning_rate=s.lr, beta_1=s.beta_1, beta_2=s.beta_2, epsilon=s.epsilon)


def compile_model(model: keras.Model, m: dict[str, Any], adam: AdamSettings | None = None) -> None:
    """Optimiser per config (or ``adam``: lockstep perturbations), cross-entropy from logits, and the
    confusion counters for train figures."""
    model.compile(optimizer=_optimizer(m, adam),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[ConfusionCount(kind) for kind in COUNT_KINDS])


def _lr(model: keras.Model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _logits(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float32)


class _EpochFigures(keras.callbacks.Callback):
    """First callback: progress bar, shared metrics, history record; saves the weights when the shared
    Selector picks the epoch, and puts val_loss into ``logs`` for the Keras callbacks that follow."""

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.bar: EpochBar | None = None
        self.pace: Pace | None = None  # set by fit once the starting period is known
        self.t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.t0 = time.perf_counter()
        first, stop = self.job.plan.bounds(epoch)
        self.bar = EpochBar(epoch + 1, self.job.epochs, stop - first, quiet=self.job.quiet, unit=self.job.plan.unit)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.step(None if self.job.quiet else float((logs or {}).get("loss", math.nan)))
        if self.pace is not None:
            self.pace.step()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if self.bar is not None:
            self.bar.close()
        counts = Counts(**{k: int(round(logs[k])) for k in COUNT_KINDS})
        train = summarise(float(logs["loss"]), counts)
        val_logits = _logits(self.model, self.job.data.val.X)
        val = evaluate(self.job.data.val.y, val_logits)
        record = epoch_record(epoch + 1, train, val, _lr(self.model))
        seconds = time.perf_counter() - self.t0
        if self.job.record(record, seconds, val_logits):
            self.model.save_weights(self.job.resume_dir / _best_name(epoch + 1))
        logs["val_loss"] = record["val_loss"]


class StepSchedule(keras.callbacks.Callback):
    """Sets the learning rate before each batch from the shared three-phase schedule."""

    def __init__(self, schedule: ThreePhase) -> None:
        super().__init__()
        self.schedule = schedule

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.model.optimizer.learning_rate.assign(self.schedule(step))


class _ResumePoint(keras.callbacks.Callback):
    """Last callback: restores callback states on resume; saves a resume point after every epoch.

    The model file name carries the epoch and the JSON state (written last, atomically) names it,
    so a kill between the two writes leaves the previous, consistent resume point in force.
    """

    def __init__(self, job: Job, early: keras.callbacks.EarlyStopping, plateau: keras.callbacks.ReduceLROnPlateau | None,
                 saved: dict[str, Any] | None) -> None:
        super().__init__()
        self.job, self.early, self.plateau, self.saved = job, early, plateau, saved

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.saved is None:
            return
        self.early.wait, self.early.best = self.saved["early"]["wait"], self.saved["early"]["best"]
        if self.plateau is not None and self.saved["plateau"] is not None:
            for key, value in self.saved["plateau"].items():
                setattr(self.plateau, key, value)
        self.saved = None  # restored once per fit call

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        rdir = self.job.resume_dir
        model_name = f"epoch-{epoch + 1:04d}.keras"
        with io.atomic_path(rdir / model_name) as tmp:
            self.model.save(tmp)
        best = self.job.selector.best_epoch
        state = {"epoch": epoch + 1, "model": model_name, "history": self.job.history,
                 "selector": self.job.selector.state(),
                 "best_weights": None if best is None else _best_name(best),
                 "early": {"wait": self.early.wait, "best": self.early.best},
                 "plateau": None if self.plateau is None else
                 {"wait": self.plateau.wait, "best": self.plateau.best,
                  "cooldown_counter": self.plateau.cooldown_counter}}
        io.write_json(rdir / STATE_FILE, state)
        keep = {model_name, STATE_FILE, art.RUN_STATE, state["best_weights"]}
        for path in rdir.iterdir():
            if path.name not in keep and not path.name.startswith("."):
                path.unlink(missing_ok=True)


def _best_name(epoch: int) -> str:
    return BEST_WEIGHTS.format(epoch=epoch)


def input_pipeline(x: np.ndarray, y: np.ndarray, stream: Stream, start: int, stop: int) -> tf.data.Dataset:
    """The stream's batches for optimisation steps start .. stop - 1, gathered in numpy, prefetched.

    One dataset spans every remaining epoch; model.fit reads ``stream.steps_per_epoch`` per epoch.
    """
    def batches() -> Any:
        for idx in stream.steps(start, stop):
            yield x[idx], y[idx]

    signature = (tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)),
                 tf.TensorSpec((None,), tf.as_dtype(y.dtype)))
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)


def _load_resume(job: Job) -> tuple[keras.Model | None, dict[str, Any] | None]:
    path = job.resume_dir / STATE_FILE
    if not path.exists():
        job.log.info("no completed epoch to resume from; starting at epoch 1")
        return None, None
    saved = art.read_json(path)
    model = keras.saving.load_model(job.resume_dir / saved["model"], safe_mode=True,
                                    custom_objects={"ConfusionCount": ConfusionCount})
    job.history[:] = saved["history"]
    job.selector = Selector.from_state(saved["selector"])
    job.log.info(f"resumed after epoch {saved['epoch']}")
    return model, saved


def fit(job: Job) -> FitResult:
    """Train per ``job`` and write model.keras + weights.npz; returns the test split's logits and the
    validation split's probabilities (the saved model's)."""
    m, seed = job.cfg.model, job.cfg.seed
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    dist = keras_scale.strategy()
    with keras_scale.scope(dist):
        model, saved = _load_resume(job) if job.resume else (None, None)
        if model is None:
            model = keras_scale.build(lambda: job.build(job.spec), m["precision"])
            if job.init_weights is not None:
                import_weights(model, job.spec, job.init_weights)
            job.save_init_weights(export_weights(model, job.spec))
            compile_model(model, m)
    start = 0 if saved is None else int(saved["epoch"])
    if m["compile"]:
        job.log.info("modelConfig.compile applies to PyTorch only (Keras compiles its own graph)")
    schedule = ThreePhase.from_model_config(m) if m["useLrSchedule"] else None
    job.log.info(f"TensorFlow {tf.__version__} (Keras {keras.__version__}), "
                 f"{keras_scale.describe(m['precision'], dist)}, "
                 f"{AdamSettings.from_model_config(m).name}, "
                 + ("three-phase LR schedule (ReduceLROnPlateau off)" if schedule else "ReduceLROnPlateau"))
    train, plan = job.data.train, job.plan
    early = keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=int(m["earlyStoppingPatience"]))
    plateau = None if schedule else keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", mode="min", factor=float(m["lrFactor"]), patience=int(m["lrPatience"]),
        min_lr=float(m["lrMin"]), verbose=0)
    figures = _EpochFigures(job)
    figures.pace = Pace(plan, start, job.log.info)
    callbacks: list[keras.callbacks.Callback] = [figures, early]
    callbacks += [StepSchedule(schedule)] if schedule else [plateau]
    resume_point = _ResumePoint(job, early, plateau, saved)
    callbacks.append(resume_point)
    # model.fit needs one steps_per_epoch: the periods of plan.every steps in one call, then step
    # mode's last, shorter period (if any) in a second call, which carries the early-stopping state over.
    full = min(plan.total_steps // plan.every, job.epochs)
    for first, last, per in ((start, full, plan.every), (max(start, full), job.epochs, plan.total_steps - full * plan.every)):
        if first >= last or early.stopped_epoch > 0:
            continue
        if first > start:
            resume_point.saved = {"early": {"wait": early.wait, "best": early.best}, "plateau": None}
        model.fit(input_pipeline(train.X, train.y, plan.stream, plan.bounds(first)[0], plan.bounds(last - 1)[1]),
                  epochs=last, initial_epoch=first, steps_per_epoch=per, callbacks=callbacks, shuffle=False,
                  verbose=0)
    stopped = early.stopped_epoch > 0
    if stopped:
        job.log.info(f"early stopping after epoch {early.stopped_epoch + 1} (val_loss has not improved for "
                     f"{early.patience} epochs)")
    best = job.selector.best_epoch
    if best is not None:
        model.load_weights(job.resume_dir / _best_name(best))
    final = job.build(job.spec)
    final.set_weights(model.get_weights())
    save_keras_model(job.run_dir / art.MODEL_FILES["tensorflow"], final)
    save_weights(job.run_dir / art.WEIGHTS, export_weights(final, job.spec), job.spec)
    return FitResult(test_logits=_logits(final, job.data.test.X), stopped_early=stopped,
                     val_proba=predict_proba(final, job.data.val.X))

