"""`deepepi pipeline`: the main job end to end on the built-in dataset (or a given CSV).

First the proof (``train.prove``, `deepepi prove-trainers`): on configs/nnConfig_deep.json and the
job's data, TensorFlow and PyTorch train PROOF_STEPS float64 steps from one initial state on one
batch stream, dropout on with shared masks; weights, BatchNorm statistics, Adam's state and held-out
softmax must agree within 1e-6. That is the verdict on the trainers. Then the float32 training
people run: TensorFlow from the config, then PyTorch from the same config, the TensorFlow run's
initial weights (its init_weights.npz) and the same seeded batch stream, each with the config's own
(native) dropout. Export both to ONNX; transfer the TensorFlow model's weights to PyTorch, export
that twin and verify it against the TensorFlow export (same-weights mode: the exported files compute
the same function). Finally the two float32 models are compared statistically on the held-out test
events (trained mode): float32 runs separate through rounding within tens of steps and dropout draws
differ, so this is a seed-spread check (TPR/FPR differences within how far two seeds of one framework
land apart at this training length, ``margins_for``), not a proof. Writes OUT/report.json.
Each framework trains in its own child process (the proof too). Epochs default to 4 (a few minutes
on an idle 2-core CPU, see docs/PERFORMANCE.md); the verdicts, not the accuracy, are the point.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import time
from pathlib import Path
from typing import Any, Callable

from deepepi.core import quiet
from deepepi.core.config import REPO_CONFIGS, load_config
from deepepi.core.errors import DeepEpiError
from deepepi.core.extras import install_hint
from deepepi.core.io import atomic_path, refuse_overwrite, write_json

DEFAULT_EPOCHS = 4
PROOF_STEPS = 50  # float64 lockstep steps of the proof (train.prove.DEFAULT_STEPS)
# Trained-mode margins by training length: the largest |A - B| between two seeds of PyTorch trained as
# the pipeline trains (dropout on, best-epoch selection, the built-in data's pipeline split), rounded up
# to the next 0.05 (bench/seed_spread.py; docs/PERFORMANCE.md "Seed spread at 4 and 20 epochs").
# A run of E epochs takes the margins measured at the nearest length not shorter than E (the longest above it).
SPREAD_MARGINS = {
    4: {"window_tpr": 0.20, "window_fpr": 0.20, "event_tpr": 0.25, "event_fpr": 0.30},
}
CONFIG = REPO_CONFIGS / "nnConfig_deep.json"  # both frameworks: lockstep needs one optimiser and schedule
FRAMEWORKS = ("tensorflow", "pytorch")  # TensorFlow first: PyTorch starts from its initial weights
REQUIRED_MODULES = {"tensorflow": ("tensorflow", "tf2onnx"), "pytorch": ("torch",)}
REPORT = "report.json"
TEST_CSV = "test_split.csv"
Echo = Callable[[str], Any]


class PipelineError(DeepEpiError):
    """The pipeline cannot run here (a framework is missing)."""


def require_frameworks() -> None:
    """Both frameworks and both exporters must be importable; else one line naming what is missing."""
    missing = [module for modules in REQUIRED_MODULES.values() for module in modules
               if importlib.util.find_spec(module) is None]
    if missing:
        raise PipelineError(f"deepepi pipeline needs both frameworks; missing {', '.join(missing)} "
                            f"({install_hint('all')})")


def spread_length(epochs: int) -> int:
    """The measured training length whose seed spread a run of ``epochs`` is judged by: the shortest
    length >= ``epochs``, else the longest measured."""
    lengths = sorted(SPREAD_MARGINS)
    return next((n for n in lengths if n >= epochs), lengths[-1])


def margins_for(epochs: int) -> dict[str, float]:
    """The seed-spread margins for a run of ``epochs`` (``spread_length``)."""
    return dict(SPREAD_MARGINS[spread_length(epochs)])


def _prove_one(csv: Path, steps: int, quiet_imports: bool) -> dict[str, Any]:
    from deepepi.train.prove import prove

    if quiet_imports:
        quiet.install()
    return prove(CONFIG, csv, steps=steps).to_dict()


def prove_in_child(csv: Path, steps: int = PROOF_STEPS) -> dict[str, Any]:
    """``train.prove.prove`` on CONFIG and ``csv`` in a fresh, spawned process (both frameworks load
    there, never in the parent); returns the proof's dict."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_prove_one, csv, steps, quiet.installed()).result()
        except BrokenProcessPool:
            raise PipelineError("the prove-trainers process died (killed, or out of memory)") from None


def train_runs(out: Path, csv: Path, epochs: int, echo: Echo) -> dict[str, Path]:
    """Train both frameworks (float32, native dropout) into OUT/<framework>; returns the run directories.

    Each framework trains in a fresh child process: in the process where TensorFlow had just trained,
    PyTorch's epochs took 1.8x as long on a 2-core CPU (44 s against 25 s, much of the extra time in the
    kernel, in futex and munmap calls), so one framework's runtime never shares a process with the other's."""
    from deepepi.runs.layout import INIT_WEIGHTS

    runs: dict[str, Path] = {}
    for framework in FRAMEWORKS:
        start = runs["tensorflow"] / INIT_WEIGHTS if runs else None
        echo(f"== training {framework} ({CONFIG.name}, float32, the config's dropout, {epochs} epochs"
             + (f", from {start})" if start else ")"))
        runs[framework] = train_in_child(framework, csv, out / framework, epochs, start=start)
    return runs


def _train_one(framework: str, csv: Path, out: Path, epochs: int, start: Path | None, seed: int | None,
               split: Any, dropout: bool, quiet_imports: bool) -> Path:
    """One run of the pipeline's training (the body of a child process); returns its run directory."""
    from deepepi.train.lockstep import without_dropout
    from deepepi.train.run import train

    if quiet_imports:
        quiet.install()
    cfg = load_config(CONFIG)
    if not dropout:  # bench/seed_spread.py --no-dropout
        cfg = cfg.with_overrides(**without_dropout(cfg.model))
    return train(cfg, data=csv, framework=framework, out=out, epochs=epochs, seed=seed, quiet=True,
                 init_weights=start, split=split).run_dir


def train_in_child(framework: str, csv: Path, out: Path, epochs: int, *, start: Path | None = None,
                   seed: int | None = None, split: Any = None, dropout: bool = True) -> Path:
    """The pipeline's training (CONFIG, with its dropout unless ``dropout`` is false) in a fresh, spawned process;
    returns the run directory. ``start``: initial weights; ``seed`` overrides randomSeed; ``split``
    (an EventSplit) fixes the events. A DeepEpiError the child raises is raised here, one line as ever."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_train_one, framework, csv, out, epochs, start, seed, split, dropout,
                               quiet.installed()).result()
        except BrokenProcessPool:
            raise PipelineError(f"the {framework} training process died (killed, or out of memory) "
                                f"while writing {out}") from None


def write_test_split(runs: dict[str, Path], csv: Path, out: Path) -> Path:
    """The CSV rows of the test events both runs held out, so trained mode scores unseen data only."""
    import pandas as pd

    from deepepi.runs.layout import read_json

    held_out = {fw: read_json(d / "metrics.json")["test_events"] for fw, d in runs.items()}
    first, *others = held_out.values()
    if any(events != first for events in others):
        raise PipelineError("the two runs held out different test events; train both on the same data and seed")
    wanted = {str(e) for e in first}
    path = out / TEST_CSV
    with atomic_path(path) as tmp:
        for i, chunk in enumerate(pd.read_csv(csv, dtype=str, keep_default_na=False, chunksize=20_000)):
            chunk[chunk["eventId"].isin(wanted)].to_csv(tmp, mode="a", header=i == 0, index=False)
    return path


def export_and_verify(runs: dict[str, Path], csv: Path, test_csv: Path, echo: Echo,
                      margins: dict[str, float] | None = None) -> dict[str, Any]:
    """Export both runs, verify them (trained mode, on the test split), transfer TF -> PyTorch, export,
    verify (same weights, on all windows)."""
    from deepepi.export.onnx_file import export_run
    from deepepi.verify.runner import verify

    exports = {}
    for framework, run_dir in runs.items():
        result = export_run(run_dir)
        echo(f"== exported {framework}: {result.path} (self-check max abs {result.max_abs_diff:.2e})")
        exports[framework] = result
    twin = export_run(runs["tensorflow"], framework="pytorch")
    echo(f"== transferred tensorflow weights to pytorch and exported {twin.path} "
         f"(self-check max abs {twin.max_abs_diff:.2e})")
    config = runs["tensorflow"] / "config.json"
    trained = verify(exports["tensorflow"].path, exports["pytorch"].path, data=test_csv, config=config,
                     mode="trained", margins=margins)
    same = verify(exports["tensorflow"].path, twin.path, data=csv, config=config, mode="same-weights")
    for title, report in (("same-weights mode: tensorflow vs its pytorch twin", same),
                          ("trained mode on the test split, the seed-spread check: tensorflow vs pytorch "
                           "(float32)", trained)):
        echo(f"== verify, {title} ({report.inputs['n']} windows)")
        echo(report.table())
    return {
        "exports": {name: {"path": str(r.path), "self_check_max_abs": r.max_abs_diff,
                           "metadata": r.metadata}
                    for name, r in (*exports.items(), ("pytorch_twin_of_tensorflow", twin))},
        "verify_trained": trained.to_dict(),
        "verify_same_weights": same.to_dict(),
        "passed": trained.passed and same.passed,
    }


def _best_epoch(run_dir: Path) -> int | None:
    from deepepi.runs.layout import read_json

    return read_json(run_dir / "metrics.json").get("best_epoch")


def _test_metrics(run_dir: Path) -> dict[str, Any]:
    from deepepi.runs.layout import read_json

    window = read_json(run_dir / "metrics.json").get("test", {}).get("window", {})
    return {"tpr": window.get("tpr"), "fpr": window.get("fpr")}


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The few lines a user reads at the end: the proof, the exported files, the seed-spread check."""
    lines = [f"pipeline: {'PASS' if summary['passed'] else 'FAIL'} ({summary['seconds']:.0f} s)"]
    proof = summary.get("trainers")
    if proof is not None:
        lines.append(f"  1 {proof['verdict']}")
    same = {c["name"]: c for c in summary["verify_same_weights"]["checks"]}
    lines.append(f"  2 exported files: same-weights {'PASS' if summary['verify_same_weights']['passed'] else 'FAIL'} "
                 f"(tensorflow ONNX vs its pytorch twin, max abs {same['A vs B difference']['figures']['max_abs']:.2e})")
    trained = {c["name"]: c for c in summary["verify_trained"]["checks"]}
    agree = trained["argmax agreement"]["figures"]
    stat = trained.get("TPR / FPR difference vs seed spread", {"detail": "n/a"})
    spread = ("your margins" if summary.get("margins_given") else
              f"margins: the seed spread at {summary.get('spread_epochs', DEFAULT_EPOCHS)} epochs")
    lines.append(f"  3 trained float32 models, seed-spread check ({spread}; a statistical comparison, not a proof): "
                 f"{'PASS' if summary['verify_trained']['passed'] else 'FAIL'}; argmax agreement "
                 f"{agree['agreement']:.4f} (windows per predicted class: A {agree['predicted_a']}, "
                 f"B {agree['predicted_b']})")
    lines.append(f"    {stat['detail']}")
    for framework, run in summary["runs"].items():
        lines.append(f"    {framework:<10} run {run['dir']}: best epoch {run['best_epoch']}, test window TPR "
                     f"{_fmt(run['test']['tpr'])} FPR {_fmt(run['test']['fpr'])}")
    return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run(out: str | Path = "artifacts/pipeline", *, epochs: int = DEFAULT_EPOCHS,
        data: str | Path | None = None, margins: dict[str, float] | None = None,
        proof_steps: int = PROOF_STEPS, echo: Echo = print) -> dict[str, Any]:
    """The whole job; returns the summary written to OUT/report.json (``passed`` is the verdict).
    ``margins`` replace single seed-spread margins (``margins_for(epochs)`` otherwise)."""
    out = Path(out)
    for written in (TEST_CSV, REPORT):  # the data must survive the run that reads it
        refuse_overwrite(out / written, [data], option="pipeline output")
    require_frameworks()
    from deepepi.data.synth import default_dataset

    start = time.perf_counter()
    csv = Path(data) if data is not None else default_dataset()
    echo(f"== proving the trainers ({CONFIG.name}, {proof_steps} float64 steps, dropout on; "
         "deepepi prove-trainers)")
    proof = prove_in_child(csv, proof_steps)
    echo(f"== {proof['verdict']}")
    runs = train_runs(out, csv, epochs, echo)
    test_csv = write_test_split(runs, csv, out)
    chosen = dict(margins_for(epochs), **(margins or {}))
    summary = export_and_verify(runs, csv, test_csv, echo, chosen)
    summary = {"data": str(csv), "test_split": str(test_csv), "epochs": epochs, "margins": chosen,
               "spread_epochs": spread_length(epochs), "margins_given": bool(margins),
               "trainers": proof,
               "runs": {fw: {"dir": str(d), "config": str(CONFIG), "test": _test_metrics(d),
                             "best_epoch": _best_epoch(d)} for fw, d in runs.items()},
               **summary, "seconds": time.perf_counter() - start}
    summary["passed"] = bool(proof["passed"]) and summary["passed"]
    write_json(out / REPORT, summary)
    for line in summary_lines(summary):
        echo(line)
    echo(f"report: {out / REPORT}")
    return summary
