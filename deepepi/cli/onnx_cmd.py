"""`deepepi export`, `deepepi verify`, `deepepi pipeline`: ONNX export, equivalence checks, the main job."""

from __future__ import annotations

import click

from deepepi.cli.params import POSITIVE_INT, SEED, Number
from deepepi.errors import UnusableInputError
from deepepi.io import refuse_overwrite
from deepepi.verify.limits import DEFAULT_RANDOM, MAX_RANDOM

FRAMEWORK_CHOICES = ["tensorflow", "pytorch", "tf", "torch"]


@click.command("export")
@click.option("--onnx", "source", required=True, type=click.Path(),
              help="Run directory, or a model.keras / model.pt file whose directory holds config.json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="ONNX file. Default: RUN/model.onnx, or RUN/model.<tf|torch>.onnx for --framework.")
@click.option("--framework", type=click.Choice(FRAMEWORK_CHOICES, case_sensitive=False), default=None,
              help="Export this framework's model; the other framework's twin is built from weights.npz.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the windows used by the export's self-check.")
def export(source: str, output: str | None, framework: str | None, seed: int) -> None:
    """Export a trained model to ONNX (input `acc` milli-g, output `probabilities`), self-checked
    against the native model through onnxruntime (max abs diff <= 1e-5) before anything is written."""
    from deepepi.export import export_run

    result = export_run(source, out=output, framework=framework, seed=seed)
    meta = result.metadata
    click.echo(f"wrote {result.path} ({meta['framework']} via {meta['exporter']}, "
               f"{meta['trainable_parameters']} trainable parameters, self-check max abs diff "
               f"{result.max_abs_diff:.2e})")


@click.command("verify")
@click.argument("model_a", type=click.Path())
@click.argument("model_b", type=click.Path())
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="Flattened CSV: compare on its raw milli-g windows (with labels).")
@click.option("--random", "random_n", type=Number(1, MAX_RANDOM, integer=True), default=None,
              help=f"Compare on N seeded realistic random windows, 1 to {MAX_RANDOM} "
              f"(default {DEFAULT_RANDOM} when --data is absent).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--atol", type=Number(0), default=1e-5, show_default=True, help="Absolute tolerance, finite, >= 0.")
@click.option("--rtol", type=Number(0), default=1e-4, show_default=True, help="Relative tolerance, finite, >= 0.")
@click.option("--mode", type=click.Choice(["same-weights", "trained"]), default="same-weights",
              show_default=True, help="same-weights: outputs must agree within atol/rtol; trained: "
              "argmax agreement must reach --min-agreement.")
@click.option("--min-agreement", type=Number(0, 1), default=0.99, show_default=True,
              help="Fraction of windows whose argmax must agree (trained mode), 0 to 1.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Write every figure to this JSON file.")
@click.option("--providers", default=None,
              help="Comma-separated onnxruntime providers. Default: CPUExecutionProvider.")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="Config used to window --data. Default: configs/nnConfig_deep.json.")
def verify(model_a: str, model_b: str, data: str | None, random_n: int | None, seed: int,
           atol: float, rtol: float, mode: str, min_agreement: float, report_path: str | None,
           providers: str | None, config: str | None) -> int:
    """Check two DeepEpi ONNX files are equivalent. Exit 0: all pass, 1: a check failed,
    2: the files cannot be compared (missing, not ONNX, different contract)."""
    from deepepi.verify.runner import verify as run_verify

    if data is not None and random_n is not None:
        raise UnusableInputError("--data and --random are mutually exclusive")
    if report_path:
        refuse_overwrite(report_path, [model_a, model_b, data, config], option="--report")
    report = run_verify(model_a, model_b, data=data,
                        random_n=DEFAULT_RANDOM if random_n is None else random_n, seed=seed,
                        config=config, mode=mode, atol=atol, rtol=rtol, min_agreement=min_agreement,
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


@click.command("pipeline")
@click.option("--out", type=click.Path(file_okay=False), default="artifacts/pipeline", show_default=True,
              help="Folder for both runs, their ONNX files and report.json.")
@click.option("--epochs", type=POSITIVE_INT, default=None,
              help="Epochs per framework (default 4: a few minutes on a 2-core CPU).")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="Flattened CSV. Default: the built-in synthetic dataset.")
def pipeline(out: str, epochs: int | None, data: str | None) -> int:
    """Train TensorFlow and PyTorch, export both, verify them (trained), transfer one model to the
    other framework, export and verify it (same weights), and write OUT/report.json."""
    from deepepi.pipeline import DEFAULT_EPOCHS, run

    summary = run(out, epochs=epochs or DEFAULT_EPOCHS, data=data, echo=click.echo)
    return 0 if summary["passed"] else 1


COMMANDS = [export, verify, pipeline]
