"""`deepepi train`: train DeepEpi in TensorFlow or PyTorch and write a run directory."""

from __future__ import annotations

import signal

import click

from deepepi.config import FRAMEWORKS, load_config


@click.command("train")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="Config JSON (reference layout). Default: configs/nnConfig_deep.json.")
@click.option("--data", type=click.Path(dir_okay=False), default=None,
              help="Flattened CSV. Default: the built-in synthetic dataset.")
@click.option("--framework", type=click.Choice(FRAMEWORKS), default=None,
              help="Override the framework detected from the config.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory. Default: artifacts/<modelFname>.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override modelConfig.epochs.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override randomSeed.")
@click.option("--init-weights", "init_weights", type=click.Path(dir_okay=False), default=None,
              help="Start from these neutral weights (.npz, e.g. another run's init_weights.npz) instead of "
                   "the framework's seeded initialisation.")
@click.option("--resume", is_flag=True, help="Continue the unfinished run in the run directory.")
@click.option("--quiet", is_flag=True, help="Print only the per-epoch summary lines and the final line.")
@click.option("--allow-import", is_flag=True,
              help="Let modelConfig.modelClass name any dotted path (imports and runs that code).")
@click.pass_context
def train(ctx: click.Context, config: str | None, data: str | None, framework: str | None, out: str | None,
          epochs: int | None, seed: int | None, init_weights: str | None, resume: bool, quiet: bool,
          allow_import: bool) -> None:
    """Train DeepEpi; writes model, weights.npz, history, metrics, plot, config and log."""
    from deepepi.train.run import TrainingInterrupted, train as run_train

    # Ctrl-C must reach the trainer even when started from a shell that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfg = load_config(config)
    try:
        run_train(cfg, data=data, framework=framework, out=out, epochs=epochs, seed=seed,
                  resume=resume, quiet=quiet, allow_import=allow_import, init_weights=init_weights)
    except TrainingInterrupted as err:
        click.echo(f"deepepi: {err}", err=True)
        ctx.exit(err.exit_code)


COMMANDS = [train]
