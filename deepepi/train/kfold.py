"""`deepepi train --kfold K [--nested M]`: train every fold in its own process, then summarise.

Folds are by event (``data.split.kfold_events``, stratified, the config's ``randomSeed``) and every
fold trains with that same seed, as the reference does. Plain k-fold runs fold i as an ordinary run
with ``nFolds=K, fold=i`` into ``OUT/fold-<i>/`` (validation carved from its training events per
``validationProp``). Nested k-fold splits each outer fold's training events into M inner folds and
trains ``OUT/fold-<i>/inner-<j>/`` on inner training events, validating on the inner test fold and
testing on the outer test fold; the outer fold's model is the inner run with the highest validation
(inner test) window sensitivity, first wins ties (the reference's rule).

Every fold runs in a fresh spawned process with the same thread count, whether one at a time or
``jobs`` at once, so a parallel run gives the same results as a sequential one. ``resume`` reuses
finished folds (same config) and continues interrupted ones through ``run.train(resume=True)``.

With ``together`` (PyTorch only) every run of the plan trains in this process as one batched
computation (``train.together``, ``train.torch_stacked``): the same run directories and summary, the
same figures on a deterministic CPU. ``seeds`` repeats the plan once per seed into ``OUT/seed-<S>/``
(each what ``--seed S --out OUT/seed-<S>`` writes); with ``together`` all folds of all seeds form one stack.

A fold process is as quiet as the command that started it: it installs the same TensorFlow start-up
hook (``core.quiet``) when the parent has it, and hands its Python warnings back with its result; the
parent shows each distinct warning once for the whole job, through its own ``warnings.showwarning``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from deepepi.core import io, quiet
from deepepi.core.config import Config
from deepepi.core.errors import ConfigError, DeepEpiError
from deepepi.data.dataset import EventSplit
from deepepi.scoring.metrics import Counts, fmt

SUMMARY_JSON = "kfold_summary.json"
SUMMARY_TXT = "kfold_summary.txt"
OUTER_JSON = "outer.json"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
# (name in the summary, path in metrics.json's "test" section)
TEST_FIGURES = (("loss", ("loss",)), ("window_tpr", ("window", "tpr")), ("window_fpr", ("window", "fpr")),
                ("window_ppv", ("window", "ppv")), ("window_accuracy", ("window", "accuracy")),
                ("event_tpr", ("event", "tpr")), ("event_fpr", ("event", "fpr")))
COUNT_KEYS = ("tp", "fp", "tn", "fn")


@dataclass(frozen=True)
class FoldTask:
    """One training run of the plan: where it goes, its resolved config and (nested) its explicit split."""

    name: str  # "fold-0" or "fold-0/inner-1"
    config: dict[str, Any]
    split: dict[str, Any] | None = None


def _fold_config(cfg: Config, k: int, fold: int) -> dict[str, Any]:
    raw = cfg.to_dict()
    raw["dataProcessing"]["nFolds"] = k
    raw["dataProcessing"]["fold"] = fold
    return raw


def plan(cfg: Config, csv_path: Path, *, k: int, nested: int | None) -> list[FoldTask]:
    """Every run of the k-fold (or nested) scheme; the splits are computed here so that bad data or
    too few events fail before any process starts."""
    from deepepi.data.csvio import load_csv
    from deepepi.data.split import events_table, kfold_events

    events = events_table(load_csv(csv_path, columns=("eventId", "userId", "type", "dataTime")))
    group = bool(cfg.processing["groupByUser"])
    try:
        outer = kfold_events(events, n_folds=k, seed=cfg.seed, group_by_user=group)
    except DeepEpiError as err:
        raise type(err)(f"--kfold {k}: {err}", source=str(csv_path)) from None
    if nested is None:
        return [FoldTask(f"fold-{i}", _fold_config(cfg, k, i)) for i in range(k)]
    tasks = []
    for i, (train_ids, test_ids) in enumerate(outer):
        inner_events = events[events["eventId"].isin(train_ids)]
        try:
            inner = kfold_events(inner_events, n_folds=nested, seed=cfg.seed, group_by_user=group)
        except DeepEpiError as err:
            raise type(err)(f"--nested {nested} (outer fold {i}): {err}", source=str(csv_path)) from None
        for j, (inner_train, inner_test) in enumerate(inner):
            split = EventSplit(tuple(inner_train.tolist()), tuple(inner_test.tolist()), tuple(test_ids.tolist()),
                               note=f"outer fold {i} of {k}, inner fold {j} of {nested} (by event)",
                               val_source="inner test fold")
            tasks.append(FoldTask(f"fold-{i}/inner-{j}", _fold_config(cfg, k, i), split.to_dict()))
    return tasks


def _init_worker(threads: int, quiet_imports: bool = False, one_line_warnings: bool = False) -> None:
    """Runs in each fresh fold process before any framework is imported: pin its thread pools, and
    quiet it as the parent is (TensorFlow's start-up lines hidden, warnings as one line)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if quiet_imports:
        quiet.install()
    if one_line_warnings:
        warnings.showwarning = quiet.one_line_warning


@dataclass(frozen=True)
class FoldOptions:
    """What every fold process shares: output root, data, and the train() options passed through."""

    out: str
    data: str
    allow_import: bool = False
    init_weights: str | None = None
    resume: bool = False


def _train_task(task: FoldTask, opts: FoldOptions) -> dict[str, Any]:
    """One fold in its own process; the console output goes to the run's train.log only, and the
    Python warnings it raised come back under "warnings" (the parent shows each once per job)."""
    with warnings.catch_warnings(record=True) as caught:  # the filters stay as they are
        outcome = _train_fold(task, opts)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    return {**outcome, "warnings": messages} if messages else outcome


def _train_fold(task: FoldTask, opts: FoldOptions, fit_with: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The body of ``_train_task``. With ``resume`` a finished fold (metrics.json, no resume state,
    same config) is reused and an unfinished one continued. A typed error comes back as a value
    (exceptions with keyword arguments do not survive pickling). ``fit_with``: ``train.together``'s
    hand-over (the caller then silences stdout once for all its threads)."""
    from deepepi.core.config import from_dict
    from deepepi.runs import layout as art
    from deepepi.train.run import train

    run_dir = Path(opts.out) / task.name
    unfinished = (run_dir / art.RESUME_DIR / art.RUN_STATE).exists()
    try:
        if opts.resume and not unfinished and (run_dir / art.METRICS).exists():
            if art.read_json(run_dir / art.CONFIG) != task.config:
                raise ConfigError("finished with another config; run without --resume, or choose another --out",
                                  source=str(run_dir))
            return {"name": task.name, "metrics": art.read_json(run_dir / art.METRICS), "reused": True}
        resume = opts.resume and unfinished
        with (nullcontext() if fit_with else open(os.devnull, "w", encoding="utf-8")) as sink, \
                (nullcontext() if fit_with else redirect_stdout(sink)):
            result = train(from_dict(task.config, source=str(run_dir), warn=False), data=opts.data, out=run_dir,
                           quiet=True, allow_import=opts.allow_import, resume=resume,
                           init_weights=None if resume else opts.init_weights,
                           split=EventSplit.from_dict(task.split) if task.split else None, fit_with=fit_with)
    except DeepEpiError as err:
        return {"name": task.name, "error": str(err), "exit_code": err.exit_code}
    return {"name": task.name, "metrics": result.metrics, "reused": False}


def run_tasks(tasks: list[FoldTask], opts: FoldOptions, *, jobs: int, threads: int,
              echo: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Run every task, ``jobs`` at a time, each in a fresh spawned process; metrics.json per task name.
    The first failing fold stops the rest and is raised as a one-line error."""
    out = Path(opts.out)
    results: dict[str, dict[str, Any]] = {}
    context = multiprocessing.get_context("spawn")
    shown: set[str] = set()  # warnings already shown in this job
    initargs = (threads, quiet.installed(), warnings.showwarning is quiet.one_line_warning)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                             initargs=initargs, max_tasks_per_child=1) as pool:
        pending = {pool.submit(_train_task, t, opts) for t in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    raise DeepEpiError("a fold process died (killed, or out of memory); see the fold's "
                                       "train.log", source=str(out)) from None
                _show_once(outcome.get("warnings", ()), shown)
                if "error" in outcome:
                    for other in pending:
                        other.cancel()
                    _raise(outcome)
                _report(outcome, results, out, echo)
    return results


def _raise(outcome: dict[str, Any]) -> None:
    err = DeepEpiError(f"{outcome['name']}: {outcome['error']}")
    err.exit_code = outcome["exit_code"]
    raise err


def _report(outcome: dict[str, Any], results: dict[str, dict[str, Any]], out: Path,
            echo: Callable[[str], None]) -> None:
    """Keep one run's metrics and print its test line."""
    results[outcome["name"]] = outcome["metrics"]
    test = outcome["metrics"]["test"]
    echo(f"{outcome['name']}: test window TPR {fmt(test['window']['tpr'])} FPR "
         f"{fmt(test['window']['fpr'])}, event TPR {fmt(test['event']['tpr'])} FPR "
         f"{fmt(test['event']['fpr'])} ({out / outcome['name']}"
         f"{', finished earlier' if outcome['reused'] else ''})")


def run_tasks_together(tasks: list[FoldTask], opts: FoldOptions, *, threads: int, root_hint: str,
                       echo: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """``run_tasks`` with every task in one batched computation of this process (``train.together``).
    ``root_hint``: the command that continues the run, for the line after Ctrl-C."""
    from deepepi.train.run import TrainingInterrupted
    from deepepi.train.together import first_error, run_together

    try:
        outcomes = run_together(tasks, opts, threads=threads, train_fold=_train_fold)
    except KeyboardInterrupt:
        raise TrainingInterrupted(f"interrupted; every run keeps its last completed evaluation: continue with "
                                  f"{root_hint}") from None
    failed = first_error(outcomes)
    if failed is not None:
        _raise(failed)
    results: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        _report(outcome, results, Path(opts.out), echo)
    return results


def _show_once(messages: Any, shown: set[str]) -> None:
    """Warn about each fold process's warning in this process, once per job (folds repeat them)."""
    for message in messages:
        if message not in shown:
            shown.add(message)
            warnings.warn(message, UserWarning, stacklevel=2)


def _figure(test: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = test
    for key in path:
        value = value[key]
    return value


def mean_sd(values: list[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof 1) over the folds where the figure is defined."""
    defined = [float(v) for v in values if v is not None]
    mean = float(np.mean(defined)) if defined else None
    sd = float(np.std(defined, ddof=1)) if len(defined) > 1 else None
    return {"mean": mean, "sd": sd, "n": len(defined)}


def pooled(tests: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts summed over the (disjoint) test folds and the rates of those sums."""
    out: dict[str, Any] = {}
    for level in ("window", "event"):
        c = {key: int(sum(t[level][key] for t in tests)) for key in COUNT_KEYS}
        counts = Counts(**c)
        out[level] = {**c, "tpr": counts.tpr, "fpr": counts.fpr}
        if level == "window":
            out[level]["ppv"] = counts.ppv
    return out


def choose_inner(inner: list[dict[str, Any]]) -> int:
    """The inner run with the highest validation window sensitivity; undefined counts lowest, first wins ties."""
    scores = [m["best_epoch_record"]["val_sensitivity"] for m in inner]
    keyed = [-math.inf if s is None else float(s) for s in scores]
    return int(np.argmax(keyed))


def summarise(cfg: Config, results: dict[str, dict[str, Any]], *, k: int, nested: int | None,
              threads: int) -> dict[str, Any]:
    """kfold_summary.json: per fold test figures and events, mean +- sd across folds, pooled counts."""
    folds = []
    for i in range(k):
        if nested is None:
            metrics, extra = results[f"fold-{i}"], {"run_dir": f"fold-{i}"}
        else:
            inner = [results[f"fold-{i}/inner-{j}"] for j in range(nested)]
            chosen = choose_inner(inner)
            metrics = inner[chosen]
            extra = {"run_dir": f"fold-{i}/inner-{chosen}", "chosen_inner": chosen,
                     "inner_val_sensitivity": [m["best_epoch_record"]["val_sensitivity"] for m in inner]}
        folds.append({"fold": i, **extra, "best_epoch": metrics["best_epoch"], "gate_met": metrics["gate_met"],
                      "test_events": metrics["test_events"], "test": metrics["test"]})
    tests = [f["test"] for f in folds]
    return {"k": k, "nested": nested, "framework": cfg.framework, "seed": cfg.seed,
            "model": cfg.model["modelFname"], "threads_per_fold": threads,
            "sd": "sample standard deviation (ddof 1) across folds",
            "across_folds": {name: mean_sd([_figure(t, path) for t in tests]) for name, path in TEST_FIGURES},
            "pooled": pooled(tests), "folds": folds}


def _pm(stat: dict[str, Any]) -> str:
    return "n/a" if stat["mean"] is None else f"{stat['mean']:.3f} ± {fmt(stat['sd'])}"


def render(summary: dict[str, Any]) -> str:
    """The table printed at the end and written to kfold_summary.txt."""
    names = [name for name, _ in TEST_FIGURES]
    kind = f"nested {summary['k']}x{summary['nested']}-fold" if summary["nested"] else f"{summary['k']}-fold"
    lines = [f"{kind} {summary['model']} ({summary['framework']}, seed {summary['seed']}): test figures per fold",
             "fold  " + "  ".join(f"{n:>15}" for n in names)]
    for f in summary["folds"]:
        lines.append(f"{f['fold']:>4}  " + "  ".join(f"{fmt(_figure(f['test'], p)):>15}" for _, p in TEST_FIGURES))
    lines.append("mean  " + "  ".join(f"{_pm(summary['across_folds'][n]):>15}" for n in names) + "  (± sd)")
    p = summary["pooled"]
    lines.append(f"pooled events: TP {p['event']['tp']} FN {p['event']['fn']} FP {p['event']['fp']} "
                 f"TN {p['event']['tn']}: TPR {fmt(p['event']['tpr'])}, FPR {fmt(p['event']['fpr'])}")
    lines.append(f"pooled windows: TPR {fmt(p['window']['tpr'])}, FPR {fmt(p['window']['fpr'])}, "
                 f"PPV {fmt(p['window']['ppv'])}")
    return "\n".join(lines)


def _recorded_config(root: Path, given: Config) -> Config:
    """The config a k-fold run in ``root`` recorded (a fold's config.json, written when the fold
    starts), else ``given``: with --resume, --config only names the default --out."""
    from deepepi.core.config import from_dict
    from deepepi.runs import layout as art

    for path in sorted(root.glob(f"fold-*/{art.CONFIG}")) + sorted(root.glob(f"fold-*/inner-*/{art.CONFIG}")):
        return from_dict(art.read_json(path), source=str(path), warn=False)
    return given


def drop_unowned_folds(root: Path, tasks: list[FoldTask], *, resume: bool) -> None:
    """A fold directory this plan does not own (left by a run with more folds, or with inner folds)
    would sit beside the new summary as if it were one: removed on a fresh run, refused on --resume."""
    owned = {t.name for t in tasks} | {t.name.split("/")[0] for t in tasks}
    found = [*root.glob("fold-*"), *root.glob("fold-*/inner-*")]
    stale = sorted(p for p in found if p.is_dir() and p.relative_to(root).as_posix() not in owned
                   and (p.parent == root or p.parent.relative_to(root).as_posix() in owned))
    if not stale:
        return
    if resume:
        raise ConfigError(f"{stale[0].relative_to(root)}/ is not a fold of this plan (an earlier run with other "
                          "--kfold/--nested); run without --resume, or choose another --out", source=str(root))
    for path in stale:
        io.remove_tree(path)


def _seed_tasks(tasks: list[FoldTask], seed: int) -> list[FoldTask]:
    """A seed's tasks under ``seed-<S>/``."""
    return [FoldTask(f"seed-{seed}/{t.name}", t.config, t.split) for t in tasks]


def _write_summary(cfg: Config, results: dict[str, dict[str, Any]], root: Path, *, k: int, nested: int | None,
                   threads: int, echo: Callable[[str], None]) -> dict[str, Any]:
    summary = summarise(cfg, results, k=k, nested=nested, threads=threads)
    if nested is not None:
        for fold in summary["folds"]:
            io.write_json(root / f"fold-{fold['fold']}" / OUTER_JSON, fold)
    io.write_json(root / SUMMARY_JSON, summary)
    table = render(summary)
    io.write_text(root / SUMMARY_TXT, table + "\n")
    echo(table)
    return summary


def kfold(cfg: Config, *, k: int, nested: int | None = None, jobs: int = 1, threads: int = 1,
          data: str | Path | None = None, framework: str | None = None, out: str | Path | None = None,
          epochs: int | None = None, seed: int | None = None, allow_import: bool = False,
          init_weights: str | Path | None = None, resume: bool = False, together: bool = False,
          seeds: list[int] | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train all folds and write OUT/kfold_summary.json and .txt (and OUT/fold-<i>/outer.json when
    nested); returns the summary. See the module docstring for the scheme; ``init_weights`` is
    every fold's starting point, as for a single run; ``resume`` reuses finished folds and
    continues interrupted ones. ``together``: all runs as one batched PyTorch computation in this
    process; ``seeds``: the plan once per seed into OUT/seed-<S>/ (returns {seed: summary} then)."""
    from deepepi.train.run import DEFAULT_ROOT, _model_builder, resolve_config

    for flag, value, low in (("--kfold", k, 2), ("--nested", nested, 2), ("--jobs", jobs, 1), ("--threads", threads, 1)):
        if value is not None and value < low:
            raise ConfigError(f"{flag}: got {value}, expected an integer >= {low}")
    if seeds is not None and seed is not None:
        raise ConfigError(f"--seed {seed} and --seeds: give one of them")
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
        raise ConfigError(f"--seeds {','.join(map(str, seeds))}: expected distinct seeds")
    if resume:  # the config the k-fold run recorded, as a single run's resume uses its own
        cfg = _recorded_config(Path(out) if out is not None else DEFAULT_ROOT / f"{cfg.model['modelFname']}-kfold",
                               cfg)
    cfg = resolve_config(cfg, framework=framework, epochs=epochs, seed=seed)
    if together and cfg.framework != "pytorch":
        raise ConfigError(f"--together trains PyTorch runs in one process; this run trains with "
                          f"{cfg.framework} (its folds train one process each: drop --together)",
                          source="modelConfig.framework")
    if together and jobs != 1:
        raise ConfigError(f"--jobs {jobs} with --together: the runs train in one process (give --threads instead)")
    _model_builder(cfg, allow_import)  # an unknown model fails here, not in K processes
    if data is None:
        from deepepi.data.synth import default_dataset

        data = default_dataset()
    data = Path(data).resolve()
    root = Path(out) if out is not None else DEFAULT_ROOT / f"{cfg.model['modelFname']}-kfold"
    per_seed = {s: resolve_config(cfg, framework=None, epochs=None, seed=s) for s in seeds} if seeds else {None: cfg}
    tasks: list[FoldTask] = []
    for s, cfg_s in per_seed.items():
        plan_s = plan(cfg_s, data, k=k, nested=nested)
        tasks += plan_s if s is None else _seed_tasks(plan_s, s)
    seed_words = f"seeds {','.join(map(str, seeds))}" if seeds else f"seed {cfg.seed}"
    how = (f"together in one process, {threads} thread(s)" if together
           else f"{jobs} at a time, {threads} thread(s) each")
    echo(f"{len(tasks)} runs ({'nested ' if nested else ''}{k}-fold{f' x {nested}' if nested else ''}, "
         f"{cfg.framework}, {seed_words}), {how} -> {root}")
    drop_unowned_folds(root, tasks, resume=resume)
    opts = FoldOptions(str(root), str(data), allow_import,
                       str(Path(init_weights).resolve()) if init_weights else None, resume)
    if together:
        again = (f"deepepi train --kfold {k}{f' --nested {nested}' if nested else ''} --together "
                 f"--resume --out {root} (with the same options)")
        results = run_tasks_together(tasks, opts, threads=threads, root_hint=again, echo=echo)
    else:
        results = run_tasks(tasks, opts, jobs=jobs, threads=threads, echo=echo)
    if not seeds:
        return _write_summary(cfg, results, root, k=k, nested=nested, threads=threads, echo=echo)
    summaries = {}
    for s, cfg_s in per_seed.items():
        prefix = f"seed-{s}/"
        mine = {name[len(prefix):]: v for name, v in results.items() if name.startswith(prefix)}
        summaries[s] = _write_summary(cfg_s, mine, root / f"seed-{s}", k=k, nested=nested, threads=threads, echo=echo)
    return summaries
