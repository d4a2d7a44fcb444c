"""`train(cfg, ...)`: resolve the config, prepare the data once, run one framework, write the run dir.

The run directory holds the same file names for both frameworks (see ``artifacts``). While a run is
unfinished, ``resume/`` holds what ``--resume`` needs; a fresh run refuses to start over it.

Resuming needs the run directory alone: ``resume/run.json`` records the resolved config, the
framework, the data path and the data's sha256. A resumed run uses those; a --framework or --seed
that disagrees is refused, and data whose sha256 differs from the recorded one (another CSV, or the
same path rewritten) is refused unless ``force_data`` is set.

Under torchrun (PyTorch only, ``torch_ddp``) every rank runs ``train``; rank 0 alone checks and writes
the run directory and prints, the others train silently and read only the resume state.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deepepi.core import io, runlock
from deepepi.core.config import Config, from_dict
from deepepi.core.errors import ConfigError, DeepEpiError, ModelError
from deepepi.core.extras import EXTRAS, install_hint
from deepepi.runs import layout as art
from deepepi.data.dataset import EventSplit, prepare
from deepepi.scoring.metrics import final_report, fmt
from deepepi.train.history_plot import plot_history
from deepepi.train.job import FitResult, Job, is_writer, world_size
from deepepi.train.plan import Origin, make_stream
from deepepi.train.selection import Selector

TRAINERS = {"tensorflow": "deepepi.train.keras_trainer", "pytorch": "deepepi.train.torch_trainer"}
DEFAULT_ROOT = Path("artifacts")


class RunDirError(DeepEpiError):
    """The output directory's state does not allow this run (unfinished run, nothing to resume)."""


class TrainingInterrupted(DeepEpiError):
    """Ctrl-C: the last completed epoch is saved and resumable; the CLI exits 130."""

    exit_code = 130


@dataclass
class RunResult:
    run_dir: Path
    framework: str
    best_epoch: int | None
    history: list[dict[str, Any]]
    metrics: dict[str, Any]


def check_length(cfg: Config, *, epochs: int | None, steps: int | None) -> None:
    """Refuse --epochs with --steps, and --steps on an epoch-mode config (one line each, exit 2)."""
    if epochs is not None and steps is not None:
        raise ConfigError(f"--epochs {epochs} and --steps {steps}: give one of them (in step mode --epochs N "
                          "trains N passes of the training batches)")
    if steps is not None and not cfg.model["useLrSchedule"]:
        raise ConfigError(f"--steps {steps} applies to step mode (modelConfig.useLrSchedule true); this config "
                          "trains in epochs (useLrSchedule false): use --epochs", source=cfg.source)


def resolve_config(cfg: Config, *, framework: str | None, epochs: int | None, seed: int | None,
                   steps: int | None = None) -> Config:
    """Apply CLI overrides; the result (framework actually used included) is what config.json holds.

    ``steps`` sets totalTrainingSteps (step mode only). In step mode ``epochs`` is turned into steps
    by ``steps_from_epochs`` once the training data is known."""
    check_length(cfg, epochs=epochs, steps=steps)
    raw = cfg.to_dict()
    if framework is not None:
        raw["modelConfig"]["framework"] = framework
        raw["modelConfig"]["modelType"] = framework
    if epochs is not None:
        raw["modelConfig"]["epochs"] = epochs
    if steps is not None:
        raw["modelConfig"]["totalTrainingSteps"] = steps
    if seed is not None:
        raw["randomSeed"] = seed
    return from_dict(raw, source=cfg.source, warn=False)


def steps_from_epochs(cfg: Config, labels: np.ndarray, *, epochs: int | None, steps: int | None,
                      config_total: int) -> tuple[Config, Origin | None]:
    """Step mode: ``--epochs N`` becomes totalTrainingSteps = N passes of the batch stream over the
    training ``labels``; returns the config to record and how the plan line states the total (None
    when no flag set it). Epoch mode: unchanged. ``config_total``: totalTrainingSteps before the flags."""
    if not cfg.model["useLrSchedule"]:
        return cfg, None
    if epochs is not None:
        per_pass = make_stream(cfg.model, labels, cfg.seed).steps_per_epoch
        return (cfg.with_overrides(totalTrainingSteps=epochs * per_pass),
                Origin(config_total, passes=epochs, per_pass=per_pass))
    if steps is not None:
        return cfg, Origin(config_total)
    return cfg, None


def _trainer(framework: str) -> Any:
    """The framework's trainer module, or a one-line error naming what to install (before any file is touched).

    Not ``extras.require``: the message names the module that actually failed (``exc.name``, e.g. keras
    rather than tensorflow), known only after the import, and TensorFlow's start-up lines stay visible
    as before. The extra's name and the install wording come from ``core.extras``."""
    try:
        return importlib.import_module(TRAINERS[framework])
    except ImportError as exc:
        raise ModelError(f"training a {framework} model needs {exc.name or framework} "
                         f"({install_hint(EXTRAS[framework])}): {exc}") from None


def _model_builder(cfg: Config, allow_import: bool) -> Callable[[Any], Any]:
    """Resolve modelConfig.modelClass through the registry before any data is read."""
    from deepepi.models import registry

    try:
        return registry.resolve(cfg.model["modelClass"], cfg.framework, allow_import=allow_import).build
    except ModelError as err:
        raise ModelError(f"modelConfig.modelClass: {err}", source=cfg.source) from None


def _resume_config(saved: dict[str, Any], run_dir: Path, *, framework: str | None, seed: int | None,
                   epochs: int | None, steps: int | None = None) -> Config:
    """The saved run's config; a --framework or --seed that contradicts it is refused."""
    cfg = from_dict(saved["config"], source=str(run_dir / art.RESUME_DIR / art.RUN_STATE), warn=False)
    if framework is not None and framework != cfg.framework:
        raise RunDirError(f"--framework {framework}: this run trains with {cfg.framework}; resume it "
                          "without --framework", source=str(run_dir))
    if seed is not None and seed != cfg.seed:
        raise RunDirError(f"--seed {seed}: this run uses seed {cfg.seed}; resume it without --seed",
                          source=str(run_dir))
    return resolve_config(cfg, framework=None, epochs=epochs, seed=None, steps=steps)


def _resume_data(saved: dict[str, Any], run_dir: Path, data: str | Path | None, force_data: bool) -> Path:
    """The data to resume on: the recorded CSV unless ``data`` is given; its sha256 must match."""
    path = Path(data if data is not None else saved["data"])
    if not path.is_file():
        raise RunDirError(f"the run's data {path} is missing; pass it with --data", source=str(run_dir))
    recorded = saved.get("data_sha256")
    if recorded is not None and not force_data and io.sha256_file(path) != recorded:
        raise RunDirError(f"--data {path} is not the CSV this run started on (sha256 differs from "
                          f"{saved['data']}); pass --force-data to continue on it anyway", source=str(run_dir))
    return path


def _run_files() -> list[str]:
    """Every artefact name a run writes (and a fresh run clears)."""
    return [*art.MODEL_FILES.values(), art.WEIGHTS, art.INIT_WEIGHTS, art.HISTORY, art.METRICS, art.PLOT,
            art.CONFIG, art.LOG, art.THRESHOLD, *art.SPLIT_FILES.values(), art.DATA_RECORD]


def _refuse_inputs_in_run_dir(run_dir: Path, *inputs: str | Path | None) -> None:
    """A run rewrites (or clears) its artefacts: none of them may be the data or config it reads."""
    for name in _run_files():
        io.refuse_overwrite(run_dir / name, [p for p in inputs if p is not None and Path(p).is_file()],
                            option="run file")


def _start_state(run_dir: Path, resume: bool) -> dict[str, Any] | None:
    state_path = run_dir / art.RESUME_DIR / art.RUN_STATE
    if resume:
        if not state_path.exists():
            raise RunDirError("no resumable run here (finished, or never started); run without --resume",
                              source=str(run_dir))
        return art.read_json(state_path)
    if state_path.exists():
        raise RunDirError("holds an unfinished run; continue it with --resume, or choose another --out",
                          source=str(run_dir))
    return None


def _clear_outputs(run_dir: Path) -> None:
    """A fresh run replaces a finished one: no stale artefact from the previous run may remain."""
    for name in _run_files():
        (run_dir / name).unlink(missing_ok=True)
    art.remove_resume_state(run_dir)


def train(cfg: Config, *, out: str | Path | None = None, **options: Any) -> RunResult:
    """``_train`` holding the run directory's lock (core.runlock) for the run's life: a second
    writer into the same directory is refused naming this one."""
    run_dir = Path(out) if out is not None else DEFAULT_ROOT / cfg.model["modelFname"]
    with runlock.hold(run_dir, "deepepi train"):
        return _train(cfg, out=run_dir, **options)


def _train(cfg: Config, *, data: str | Path | None = None, framework: str | None = None,
           out: str | Path | None = None, epochs: int | None = None, seed: int | None = None,
           resume: bool = False, quiet: bool = False, allow_import: bool = False,
           init_weights: str | Path | None = None, force_data: bool = False,
           split: EventSplit | None = None, steps: int | None = None,
           fit_with: Callable[[Job], FitResult] | None = None) -> RunResult:
    """Train DeepEpi per ``cfg`` and write the run directory; see the module docstring.

    With ``resume``, ``cfg`` only names the default run directory: config, framework and data come
    from the run directory. ``allow_import`` lets ``modelConfig.modelClass`` name an arbitrary
    dotted path (runs its code); ``force_data`` resumes on a CSV other than the recorded one.
    ``init_weights``: a neutral weights file (e.g. another run's init_weights.npz) to start from
    instead of the framework's seeded initialisation; ignored when resuming.
    ``split`` fixes the train/validation/test events (nested k-fold); it is kept for ``resume``.
    ``steps`` overrides totalTrainingSteps (step mode only); in step mode ``epochs`` sets it to that
    many passes of the training batches. A resumed run keeps its recorded total unless one is given.
    ``fit_with`` replaces the framework trainer's ``fit`` (``train.together`` hands the job to one
    batched computation of several runs).
    """
    run_dir = Path(out) if out is not None else DEFAULT_ROOT / cfg.model["modelFname"]
    writer = is_writer()
    # Rank 0 checks the run directory (and stops every rank when it refuses); the others only read it.
    saved = _start_state(run_dir, resume) if writer or resume else None
    config_total = int(cfg.model["totalTrainingSteps"])  # the plan line states what a flag replaced
    if saved is not None:
        cfg = _resume_config(saved, run_dir, framework=framework, seed=seed, epochs=epochs, steps=steps)
        config_total = int(saved["config"]["modelConfig"]["totalTrainingSteps"])  # valid: read just above
        build = _model_builder(cfg, allow_import)
        data = _resume_data(saved, run_dir, data, force_data)
        split = EventSplit.from_dict(saved["split"]) if saved.get("split") else None
    else:
        given = cfg.given  # the keys the config file set; resolve_config's copy counts every key as set
        cfg = resolve_config(cfg, framework=framework, epochs=epochs, seed=seed, steps=steps)
        build = _model_builder(cfg, allow_import)
        if data is None:
            from deepepi.data.synth import default_dataset

            data = default_dataset()
        data = Path(data)
        if writer:
            _refuse_inputs_in_run_dir(run_dir, data, cfg.source, init_weights)
    from deepepi.models.registry import spec_from_config

    spec = spec_from_config(cfg)
    start_weights = None if saved is not None else _initial_weights(init_weights, spec)
    datasets = prepare(cfg, data, split)
    cfg, origin = steps_from_epochs(cfg, datasets.train.y, epochs=epochs, steps=steps, config_total=config_total)
    fw = cfg.framework
    if world_size() > 1 and fw != "pytorch":
        raise ConfigError("torchrun distributes PyTorch training only; TensorFlow uses tf.distribute "
                          "(several GPUs in one process, or TF_CONFIG)", source="modelConfig.framework")
    # Inputs are valid; the framework is checked before the first file of the run is touched.
    trainer = _trainer(fw)
    if saved is None and writer:
        _clear_outputs(run_dir)
    log = art.RunLog(run_dir / art.LOG, quiet=quiet, append=saved is not None) if writer else art.SilentLog()
    log.info(("resuming" if saved else "training") + f" {cfg.model['modelFname']} with {fw} "
             f"(config {cfg.source}, data {data}, seed {cfg.seed}, {_length(cfg)}) -> {run_dir}")
    if saved is None:  # once per training: a resumed run printed them when it started
        from deepepi.train.reference_notes import notices

        for line in notices(cfg, spec, given):
            log.info(line)
    if start_weights is not None:
        log.info(f"initial weights: {init_weights}")
        if float(cfg.model["convDropout"]) > 0 or float(cfg.model["denseDropout"]) > 0:
            log.info("note: dropout is on; its masks differ between frameworks, so runs started from the same "
                     "weights drift apart (set convDropout and denseDropout to 0 for lockstep training)")
    for note in datasets.notes:
        log.info(note)
    if writer:
        io.write_json(run_dir / art.CONFIG, cfg.to_dict())
        io.write_json(run_dir / art.RESUME_DIR / art.RUN_STATE,
                      {"config": cfg.to_dict(), "data": str(data.resolve()), "data_sha256": io.sha256_file(data),
                       "framework": fw, "split": split.to_dict() if split else None})
        art.write_split_files(run_dir, data, {"val": datasets.val, "test": datasets.test})
    # From here on run.json exists, so Ctrl-C at any moment leaves a resumable run: say how to resume.
    history: list[dict[str, Any]] = []
    try:
        selector = Selector.from_model_config(cfg.model, step_mode=bool(cfg.model["useLrSchedule"]))
        log.info(f"selection: {selector.describe()}")
        job = Job(cfg=cfg, spec=spec, build=build, data=datasets, run_dir=run_dir, log=log,
                  resume=saved is not None, quiet=quiet, history=history, selector=selector,
                  init_weights=start_weights, writer=writer)
        log.info(f"plan: {job.plan.describe(origin)}")
        t0 = time.perf_counter()
        fit = (fit_with or trainer.fit)(job)
    except KeyboardInterrupt:
        done = history[-1]["epoch"] if history else 0
        log.note(f"interrupted after epoch {done}")
        raise TrainingInterrupted(f"interrupted after epoch {done}; continue with: deepepi train "
                                  f"--out {run_dir} --resume") from None
    if not writer:
        return RunResult(run_dir=run_dir, framework=fw, best_epoch=job.selector.best_epoch, history=job.history,
                         metrics={})
    return _finish(job, fit, time.perf_counter() - t0)


def _length(cfg: Config) -> str:
    """The banner's run length: epochs, or optimisation steps in step mode (where epochs do not apply)."""
    if cfg.model["useLrSchedule"]:
        return f"{int(cfg.model['totalTrainingSteps']):,} steps"
    return f"{cfg.model['epochs']} epochs"


def _record_threshold(job: Job, fit: FitResult) -> dict[str, Any]:
    """The saved model's validation probabilities (from the trainer) -> RUN/threshold.json (``train.threshold``)."""
    from deepepi.train import threshold

    hop_s = int(job.cfg.processing["step"]) / float(job.cfg.model["sampleFreq"])
    return threshold.record(job.run_dir, fit.val_proba[:, 1], job.data.val, hop_s, job.data.val_source, cfg=job.cfg)


def _test_at_decision(job: Job, fit: FitResult, decision: Any) -> dict[str, Any]:
    """The test split's figures at the run's Decision, scored as ``evaluate`` scores the same windows
    (raw milli-g for the movement gate, the config's gap rule for the alarm state machine)."""
    from deepepi.data.windows import gap_from_config
    from deepepi.scoring.decision import at_decision, windows_data
    from deepepi.scoring.metrics import seizure_probability

    test, cfg = job.data.test, job.cfg
    raw = job.data.test_raw_X if job.data.test_raw_X is not None else test.X  # the gate's ratio is scale-free
    rate = float(cfg.model["sampleFreq"])
    data = windows_data(test, hop_s=int(cfg.processing["step"]) / rate,
                        gap_seconds=gap_from_config(cfg), window_seconds=cfg.window / rate)
    data = replace(data, X=raw)
    return at_decision(data, seizure_probability(fit.test_logits), decision)


def _initial_weights(path: str | Path | None, spec: Any) -> dict[str, np.ndarray] | None:
    """Load --init-weights and check it fits this run's architecture (ModelError naming the file)."""
    if path is None:
        return None
    from deepepi.models.weights import check_weights, load_weights

    weights, _ = load_weights(path)
    check_weights(weights, spec, source=str(path))  # the run's architecture, not the file's own spec
    return weights


def _finish(job: Job, fit: FitResult, seconds: float) -> RunResult:
    """Score the selected model on the test split, write the final artefacts, drop resume state."""
    test = job.data.test
    best = job.selector.best_epoch
    if best is None:
        job.log.info("no evaluation was selected; the model is the last one's")
    elif not job.selector.gate_met:
        job.log.info(f"no evaluation met the selection gate; epoch {best} was chosen by the fallback rule")
    from deepepi.runtimes.base import run_decision

    chosen_t = _record_threshold(job, fit)
    decision = run_decision(job.run_dir, job.cfg)  # the run's threshold.json, then its config
    figures = _test_at_decision(job, fit, decision)
    report = final_report(test.y, fit.test_logits, test.event_id, job.data.osd_alarm_test, at_decision=figures)
    chosen = next(h for h in job.history if h["epoch"] == best) if best else job.history[-1]
    metrics = {"framework": job.cfg.framework, "seed": job.cfg.seed, "best_epoch": best, "epochs_run": len(job.history),
               "stopped_early": fit.stopped_early, "gate_met": job.selector.gate_met,
               "selection": {"metric": job.selector.metric, "min_sensitivity": job.selector.min_sensitivity,
                             "max_far": job.selector.max_far, "fallback_used": best is not None
                             and not job.selector.gate_met},
               "validation_source": job.data.val_source, "best_epoch_record": chosen,
               "test": report, "test_events": sorted(int(e) for e in np.unique(test.event_id))}
    io.write_json(job.run_dir / art.METRICS, metrics)
    from deepepi.train.threshold import end_lines, figures_words as threshold_words

    job.log.info(f"decision threshold {chosen_t['decision_threshold']:.2f} ({chosen_t['rule']}; chosen on "
                 f"{_validation_words(chosen_t['validation_source'])}) -> {art.THRESHOLD}; "
                 f"{threshold_words(chosen_t)}")
    plot_history(job.run_dir / art.PLOT, job.history,
                     title=f"{job.cfg.model['modelFname']} ({job.cfg.framework})")
    art.remove_resume_state(job.run_dir)
    job.log.note(f"training time {seconds:.1f} s")
    job.log.info(f"test figures at the {decision.describe()}")
    events = report["alarm_events"][decision.logic]
    fp24 = "n/a" if events["fp_per_24h"] is None else f"{events['fp_per_24h']:.1f}"
    for line in end_lines(chosen_t):  # the threshold fallback's loud line, the few-seizures warning
        job.log.summary(line)  # before the done: line, which stays the last line of every run
    if "val_event_sensitivity" in chosen:  # alarm_rule selection: the validation events it chose on
        val_words = (f"val event sensitivity {fmt(chosen['val_event_sensitivity'])}, "
                     f"{chosen['val_false_alarms']} false alarm(s) at {chosen['val_event_threshold']:.2f}")
    else:
        val_words = f"val sensitivity {fmt(chosen['val_sensitivity'])}, val false-alarm ratio {fmt(chosen['val_far'])}"
    job.log.summary(f"done: {job.run_dir} | best epoch {chosen['epoch']}: {val_words} | "
                    f"test at threshold {decision.threshold:g} ({decision.logic} logic): events "
                    f"{events['detected']}/{events['seizure_events']}, FP/24 h {fp24}, window TPR "
                    f"{fmt(report['window']['tpr'])} FPR {fmt(report['window']['fpr'])}")
    return RunResult(run_dir=job.run_dir, framework=job.cfg.framework, best_epoch=best,
                     history=job.history, metrics=metrics)


def _validation_words(source: str) -> str:
    """How the log names the validation events: "train events" alone read as if the threshold were
    chosen on training data, so say that they are held out of training."""
    if source == "train events":
        return "the validation events held out of the training events (never trained on)"
    return f"the validation events ({source})"
