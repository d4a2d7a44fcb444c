"""`deepepi export`, `deepepi verify`, `deepepi pipeline`: ONNX export, equivalence checks, the main job."""

from __future__ import annotations

import click

from deepepi.cli.guarded import InputPath, OutputDir, OutputPath, command
from deepepi.cli.params import EPOCHS, SEED, Needs, Number, RateMargin, given, one_of, requires
from deepepi.core.errors import DeepEpiError, UnusableInputError
from deepepi.verify.limits import DEFAULT_RANDOM, MAX_RANDOM

FRAMEWORK_CHOICES = ["tensorflow", "pytorch", "tf", "torch"]


@command("export")
@requires({"framework": given("onnx_source", "--onnx (--tflite and --pte pick their framework)"),
           "calibration": given("quantize", "--quantize (it calibrates and checks the quantised file)"),
           "quantize=fp16": Needs("--onnx or --tflite (ExecuTorch's quantiser is int8 only)",
                                  lambda p: p.get("pte_source") is None)})
@click.option("--onnx", "onnx_source", type=InputPath(run=True), default=None,
              help="Run directory, or a model.keras / model.pt file whose directory holds config.json.")
@click.option("--tflite", "tflite_source", type=InputPath(run=True), default=None,
              help="Run directory, model file, or an ensemble ONNX file (`deepepi ensemble`; its members' "
              "Keras twins and the Harrell-Davis rule at its default q): write the app's .tflite (float32 "
              "[1,750,1] g in, softmax out) and its metadata JSON.")
@click.option("--pte", "pte_source", type=InputPath(run=True), default=None,
              help="Run directory or model file: write the app's ExecuTorch .pte (float32 [1,1,750] g "
              "in, logits out, XNNPACK) and its metadata JSON.")
@click.option("-o", "--output", type=OutputPath(derived=(".json",)), default=None,
              help="Output file. Default: RUN/model.onnx (model.<tf|torch>.onnx for --framework), "
              "RUN/model.tflite, RUN/model.pte; with --quantize Q: model.Q.onnx / model.Q.tflite / model.Q.pte.")
@click.option("--framework", type=click.Choice(FRAMEWORK_CHOICES, case_sensitive=False), default=None,
              help="--onnx only: export this framework's model; the other framework's twin is built "
              "from weights.npz.")
@click.option("--quantize", type=click.Choice(["int8", "fp16"]), default=None,
              help="--onnx: int8 static QDQ per-channel (onnxruntime) or fp16 with float32 I/O, written "
              "beside the float32 file; --tflite: int8 (integer from the second convolution to a float32 "
              "softmax) or fp16 weights; --pte: int8 (XNNPACK PT2E quantizer, from the second convolution on).")
@click.option("--calibration", type=InputPath(dir_okay=False), default=None,
              help="Flattened CSV whose training split (the run's config) calibrates --quantize and whose "
              "validation split checks the quantised file. "
              "Default: the built-in dataset.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the windows used by the export's self-check (and of the calibration draw).")
def export(onnx_source: str | None, tflite_source: str | None, pte_source: str | None,
           output: str | None, framework: str | None, quantize: str | None, calibration: str | None,
           seed: int) -> None:
    """Export a trained model to ONNX (input `acc` milli-g, output `probabilities`), or to the phone
    app's TFLite or ExecuTorch file. Each file is run in its own runtime and checked against the
    trained model before anything is written: float32 max abs diff <= 1e-5, quantised argmax
    agreement >= 99% on the run's validation windows (int8 is calibrated on training windows)."""
    chosen = {name: src for name, src in (("onnx", onnx_source), ("tflite", tflite_source),
                                           ("pte", pte_source)) if src is not None}
    if not chosen:
        raise DeepEpiError("Missing option: one of --onnx, --tflite, --pte (the run to export)")
    if len(chosen) > 1:
        raise DeepEpiError("give only one of --onnx, --tflite, --pte, got "
                           + ", ".join(f"--{name}" for name in chosen))
    (fmt, source), = chosen.items()
    from deepepi.export.formats import export as export_format

    for line in export_format(fmt, source, out=output, framework=framework, quantize=quantize,
                              calibration=calibration, seed=seed):
        click.echo(line)


@command("verify")
@requires({"margins": one_of("mode", ("trained",), "--mode trained"),
           "max_drop": one_of("mode", ("quantized",), "--mode quantized"),
           "min_agreement": one_of("mode", ("lockstep", "quantized"), "--mode lockstep or quantized"),
           "atol": one_of("mode", ("same-weights",), "--mode same-weights (the only mode they decide)"),
           "rtol": one_of("mode", ("same-weights",), "--mode same-weights (the only mode they decide)"),
           "config": given("data", "--data (it windows the data)"),
           "seed": Needs("--random windows or --mode trained (its bootstrap)",
                         lambda p: p.get("data") is None or p.get("mode") == "trained")})
@click.argument("model_a", type=InputPath(run=True))
@click.argument("model_b", type=InputPath(run=True))
@click.option("--data", type=InputPath(dir_okay=False), default=None,
              help="Flattened CSV: compare on its raw milli-g windows (with labels).")
@click.option("--random", "random_n", type=Number(1, MAX_RANDOM, integer=True), default=None,
              help=f"Compare on N seeded realistic random windows, 1 to {MAX_RANDOM} "
              f"(default {DEFAULT_RANDOM} when --data is absent).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--atol", type=Number(0), default=1e-5, show_default=True, help="Absolute tolerance, finite, >= 0.")
@click.option("--rtol", type=Number(0), default=1e-4, show_default=True, help="Relative tolerance, finite, >= 0.")
@click.option("--mode", type=click.Choice(["same-weights", "lockstep", "trained", "quantized"]),
              default="same-weights", show_default=True,
              help="same-weights: outputs must agree within atol/rtol; lockstep (trained from the same initial "
              "weights and batches): argmax agreement must reach --min-agreement; trained (independently, needs "
              "--data): TPR/FPR differences, window and event level, must not exceed the seed-to-seed spread "
              "beyond their 95% bootstrap-by-event interval; quantized (B a quantised A, needs --data): "
              "agreement >= --min-agreement and event sensitivity / window TPR drop <= --max-drop.")
@click.option("--min-agreement", type=Number(0, 1), default=0.99, show_default=True,
              help="Fraction of windows whose argmax must agree (lockstep and quantized modes), 0 to 1.")
@click.option("--max-drop", type=Number(0, 1), default=0.01, show_default=True,
              help="quantized mode: largest allowed drop of event sensitivity and window TPR "
              "(0.01 = 1 point), 0 to 1.")
@click.option("--margin", "margins", type=RateMargin(), multiple=True,
              help="trained mode: replace one seed-to-seed margin, e.g. window_fpr=0.1 (repeatable; rates: "
              "window_tpr, window_fpr, event_tpr, event_fpr). Measure your own with two seeds of one "
              "framework on your data (bench/seed_spread.py does it for the built-in data).")
@click.option("--report", "report_path", type=OutputPath(), default=None,
              help="Write every figure to this JSON file.")
@click.option("--providers", default=None,
              help="Comma-separated onnxruntime providers for ONNX files. Default: CPUExecutionProvider.")
@click.option("--config", type=InputPath(dir_okay=False), default=None,
              help="Config used to window --data. Default: the run's config.json beside model A (run directory, .pt, .keras), else A's metadata (window, step, validateDatapoints), else configs/nnConfig_deep.json.")
def verify(model_a: str, model_b: str, data: str | None, random_n: int | None, seed: int,
           atol: float, rtol: float, mode: str, min_agreement: float, max_drop: float,
           margins: tuple[tuple[str, float], ...], report_path: str | None, providers: str | None, config: str | None) -> int:
    """Check two DeepEpi model files (.onnx, .tflite, .pte; each run in its own runtime) are
    equivalent. Exit 0: all pass, 1: a check failed, 2: the files cannot be compared (missing,
    unreadable, different contract)."""
    from deepepi.verify.runner import verify as run_verify

    if data is not None and random_n is not None:
        raise UnusableInputError("--data and --random are mutually exclusive")
    report = run_verify(model_a, model_b, data=data,
                        random_n=DEFAULT_RANDOM if random_n is None else random_n, seed=seed,
                        config=config, mode=mode, atol=atol, rtol=rtol, min_agreement=min_agreement,
                        max_drop=max_drop, margins=dict(margins),
                        providers=[p.strip() for p in providers.split(",") if p.strip()]
                        if providers else None)
    click.echo(f"A: {model_a}\nB: {model_b}")
    click.echo(f"providers used: A {report.providers['a']}, B {report.providers['b']}")
    if report.providers["not_started"]:
        click.echo(f"deepepi: warning: onnxruntime could not start "
                   f"{', '.join(report.providers['not_started'])}; ran on the providers above",
                   err=True)
    click.echo(f"inputs: {report.inputs['n']} windows ({report.inputs['kind']}), mode {mode}")
    click.echo(report.table())
    if report_path:
        report.write(report_path)
        click.echo(f"report: {report_path}")
    return report.exit_code


@command("pipeline")
@click.option("--out", type=OutputDir(), default="artifacts/pipeline", show_default=True,
              help="Folder for both runs, their ONNX files and report.json.")
@click.option("--epochs", type=EPOCHS, default=None,
              help="Epochs per framework (default 4: a few minutes on a 2-core CPU).")
@click.option("--data", type=InputPath(dir_okay=False), default=None,
              help="Flattened CSV. Default: the built-in synthetic dataset.")
@click.option("--margin", "margins", type=RateMargin(), multiple=True,
              help="Replace one seed-spread margin of the trained-model check, e.g. window_fpr=0.1 "
              "(repeatable; as `deepepi verify --margin`). Default: the spread measured at the run's length.")
def pipeline(out: str, epochs: int | None, data: str | None, margins: tuple[tuple[str, float], ...]) -> int:
    """Prove the two trainers are one algorithm (`deepepi prove-trainers`: float64 lockstep steps, dropout
    on), train TensorFlow and PyTorch, export both, transfer one model to the other framework and verify
    the exported files (same weights), compare the trained models (the seed-spread check), and write
    OUT/report.json."""
    from deepepi.workflows.pipeline import DEFAULT_EPOCHS, run

    summary = run(out, epochs=epochs or DEFAULT_EPOCHS, data=data, margins=dict(margins), echo=click.echo)
    return 0 if summary["passed"] else 1


COMMANDS = [export, verify, pipeline]
