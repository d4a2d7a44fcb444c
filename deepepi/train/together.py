"""`deepepi train --kfold K [--nested M] [--seeds S1,S2] --together`: every run of a k-fold plan
trained as one batched PyTorch computation, in this process.

Each run goes through ``run.train`` as a one-process-per-fold run does (its config, data
preparation, run directory, resume state, final scoring, threshold and files), each in a thread of
its own; the threads hand their ``Job`` to a rendezvous instead of training, and this thread trains
all the jobs at once (``torch_stacked.fit_together``) and hands each its ``FitResult`` back. So the
run directories, ``metrics.json`` and ``kfold_summary.json`` are those the one-process-per-fold
path writes, and ``--resume`` reuses finished runs and continues unfinished ones the same way
(each run's ``resume/state.pt`` is the lone trainer's, written after each of its evaluations).

Threads, not processes: the data preparation holds the GIL and runs one fold after another; the
training, which is the time, runs once for all folds in this thread while the others wait.
"""

from __future__ import annotations

import os
import threading
from contextlib import redirect_stdout
from typing import Any, Callable

from deepepi.core.errors import DeepEpiError

RUN_FIT = "fit_with"  # the keyword through which run.train hands its Job to the rendezvous


class _Aborted(DeepEpiError):
    """Another run failed before training began, so no run of the stack trains."""

    PREFIX = "stopped: another run"


class Rendezvous:
    """Collects the jobs of ``n`` runs, lets the main thread train them, returns each its result."""

    def __init__(self, n: int) -> None:
        self.cond = threading.Condition()
        self.jobs: dict[str, Any] = {}
        self.waiting = n  # runs that neither handed over a job nor finished
        self.results: dict[str, Any] | None = None
        self.failure: BaseException | None = None

    def fit_for(self, name: str) -> Callable[[Any], Any]:
        """``run.train``'s ``fit_with`` for run ``name``: hand over the job, wait for its result."""
        def fit(job: Any) -> Any:
            with self.cond:
                self.jobs[name] = job
                self.waiting -= 1
                self.cond.notify_all()
                self.cond.wait_for(lambda: self.results is not None or self.failure is not None)
                if self.failure is not None:
                    if isinstance(self.failure, KeyboardInterrupt):
                        raise KeyboardInterrupt
                    raise _Aborted(f"{_Aborted.PREFIX} trained with it failed")
                return self.results[name]
        return fit

    def left(self) -> None:
        """A run finished without handing over a job (reused, or failed before training)."""
        with self.cond:
            self.waiting -= 1
            self.cond.notify_all()

    def wait_for_jobs(self) -> dict[str, Any]:
        with self.cond:
            self.cond.wait_for(lambda: self.waiting == 0)
            return dict(self.jobs)

    def finish(self, results: dict[str, Any] | None = None, failure: BaseException | None = None) -> None:
        with self.cond:
            self.results, self.failure = results, failure
            self.cond.notify_all()


def _fit_jobs(jobs: list[Any], threads: int) -> list[Any]:
    from deepepi.train.torch_stacked import fit_together

    return fit_together(jobs, threads=threads)


def run_together(tasks: list[Any], opts: Any, *, threads: int, train_fold: Callable[..., dict[str, Any]],
                 fit_jobs: Callable[[list[Any], int], list[Any]] = _fit_jobs) -> list[dict[str, Any]]:
    """Run ``tasks`` (``kfold.FoldTask``) as one stack; returns each task's outcome in task order (as
    ``kfold._train_fold`` gives it: metrics, or a typed error as a value). ``train_fold(task, opts,
    fit_with=...)`` runs one task through ``run.train``; ``fit_jobs(jobs, threads)`` trains the jobs
    handed over (``torch_stacked.fit_together``)."""
    rv = Rendezvous(len(tasks))
    outcomes: dict[str, dict[str, Any]] = {}
    crashes: list[BaseException] = []

    def worker(task: Any) -> None:
        fit = rv.fit_for(task.name)
        handed = False

        def tracked(job: Any) -> Any:
            nonlocal handed
            handed = True
            return fit(job)
        try:
            outcomes[task.name] = train_fold(task, opts, **{RUN_FIT: tracked})
        except BaseException as exc:  # a bug, not a typed error: re-raised in the main thread
            crashes.append(exc)
            outcomes[task.name] = {"name": task.name, "error": str(exc), "exit_code": 1}
        finally:
            if not handed:
                rv.left()

    workers = [threading.Thread(target=worker, args=(t,), name=f"deepepi-{t.name}", daemon=True) for t in tasks]
    with open(os.devnull, "w", encoding="utf-8") as sink, redirect_stdout(sink):  # as quiet as a fold process
        for w in workers:
            w.start()
        try:
            jobs = rv.wait_for_jobs()
            if any("error" in o for o in outcomes.values()):
                rv.finish(failure=_Aborted(_Aborted.PREFIX))
            else:
                names = [t.name for t in tasks if t.name in jobs]
                fits = fit_jobs([jobs[n] for n in names], threads) if names else []
                rv.finish(results=dict(zip(names, fits)))
        except BaseException as exc:  # Ctrl-C or a failure in training: every waiting run stops too
            rv.finish(failure=exc)
            for w in workers:
                w.join()
            raise
        for w in workers:
            w.join()
    if crashes:
        raise crashes[0]
    return [outcomes[t.name] for t in tasks]


def first_error(outcomes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The outcome to report: the first run that failed on its own, not one stopped because of it."""
    errors = [o for o in outcomes if "error" in o]
    own = [o for o in errors if not o["error"].startswith(_Aborted.PREFIX)]
    return (own or errors or [None])[0]
