"""`deepepi train`: train DeepEpi in TensorFlow or PyTorch and write a run directory."""

from __future__ import annotations

import signal

import click

from deepepi.cli.guarded import InputPath, OutputDir, command
from deepepi.cli.params import CPUS, EPOCHS, FOLDS, SEED, STEPS, Needs, Number, absent, given, requires
from deepepi.core.config import FRAMEWORKS, load_config
from deepepi.core.errors import ConfigError


@command("train")
@requires({"jobs": given("kfold", "--kfold (k-fold training)"),
           "threads": given("kfold", "--kfold (k-fold training)"),
           "nested": given("kfold", "--kfold (k-fold training)"),
           "force_data": Needs("--resume of a single training (a k-fold resume checks every fold's data)",
                               lambda p: bool(p.get("resume")) and p.get("kfold") is None),
           "init_weights": absent("resume", "a fresh run (a resumed run keeps its own weights)"),
           "max_far_per_day": absent("resume", "a fresh run (a resumed run keeps the budget it started with)"),
           "quiet": absent("kfold", "a single training (--kfold prints one line per fold)"),
           "together": given("kfold", "--kfold (k-fold training)"),
           "seeds": given("kfold", "--kfold (k-fold training)")})
@click.option("--config", "config", type=InputPath(dir_okay=False), default=None,
              help="Config JSON (reference layout). Default: configs/nnConfig_deep.json.")
@click.option("--data", type=InputPath(dir_okay=False), default=None,
              help="Flattened CSV. Default: the built-in synthetic dataset.")
@click.option("--framework", type=click.Choice(FRAMEWORKS), default=None,
              help="Override the framework detected from the config.")
@click.option("--out", type=OutputDir(), default=None,
              help="Run directory. Default: artifacts/<modelFname>.")
@click.option("--epochs", type=EPOCHS, default=None,
              help="Override modelConfig.epochs; in step mode (useLrSchedule true) train this many passes "
                   "of the training batches instead of totalTrainingSteps.")
@click.option("--steps", type=STEPS, default=None,
              help="Step mode (useLrSchedule true) only: override modelConfig.totalTrainingSteps.")
@click.option("--seed", type=SEED, default=None, help="Override randomSeed (0 to 2**32-1).")
@click.option("--max-far-per-day", "max_far_per_day", type=Number(0), default=None,
              help="Override modelConfig.alarmBudgetPer24h: the most app-logic false alarms (alarm episodes) "
                   "per 24 h of validation recording the recorded threshold may give [default: 1].")
@click.option("--init-weights", "init_weights", type=InputPath(dir_okay=False), default=None,
              help="Start from these neutral weights (.npz, e.g. another run's init_weights.npz) instead of "
                   "the framework's seeded initialisation.")
@click.option("--resume", is_flag=True,
              help="Continue the unfinished run in --out with its own config, framework and data "
              "(recorded in OUT/resume/run.json; --config then only names the default --out; the "
              "data's sha256 must match).")
@click.option("--force-data", is_flag=True,
              help="With --resume: continue on a --data CSV whose sha256 differs from the recorded one.")
@click.option("--quiet", is_flag=True, help="Print only the per-epoch summary lines and the final line.")
@click.option("--allow-import", is_flag=True,
              help="Let modelConfig.modelClass name any dotted path (imports and runs that code).")
@click.option("--kfold", type=FOLDS, default=None,
              help="Train K event-level folds into OUT/fold-<i>/ and write OUT/kfold_summary.json.")
@click.option("--nested", type=FOLDS, default=None,
              help="With --kfold: M inner folds per outer fold; the best inner run is tested on the outer fold.")
@click.option("--jobs", type=CPUS, default=1, show_default=True, help="With --kfold: folds trained at once.")
@click.option("--threads", type=CPUS, default=1, show_default=True,
              help="With --kfold: threads per fold process (the same for any --jobs, so results do not depend on it).")
@click.option("--together", is_flag=True,
              help="With --kfold (PyTorch): train every fold (and seed) as one batched computation in this "
                   "process; same run directories and summary as one process per fold.")
@click.option("--seeds", "seeds", type=str, default=None, metavar="S1,S2,...",
              help="With --kfold: the plan once per seed, into OUT/seed-<S>/ (all in one stack with --together).")
@click.pass_context
def train(ctx: click.Context, config: str | None, data: str | None, framework: str | None, out: str | None,
          epochs: int | None, steps: int | None, seed: int | None, max_far_per_day: float | None,
          init_weights: str | None, resume: bool, force_data: bool, quiet: bool, allow_import: bool,
          kfold: int | None, nested: int | None, jobs: int, threads: int, together: bool,
          seeds: str | None) -> None:
    """Train DeepEpi; writes model, weights.npz, history, metrics, plot, config and log."""
    from deepepi.train.run import TrainingInterrupted, check_length, train as run_train

    # Ctrl-C must reach the trainer even when started from a shell that ignores SIGINT in background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfg = load_config(config)
    if max_far_per_day is not None:
        cfg = cfg.with_overrides(alarmBudgetPer24h=max_far_per_day)
    try:
        if kfold is not None:  # --nested, --jobs, --threads, --together, --seeds need it (the requires declaration)
            from deepepi.train.kfold import kfold as run_kfold

            check_length(cfg, epochs=epochs, steps=steps)
            if epochs is not None and cfg.model["useLrSchedule"]:
                raise ConfigError(f"--epochs {epochs} with --kfold on a step-mode config (useLrSchedule true): "
                                  "give the folds' length with --steps", source=cfg.source)
            run_kfold(cfg.with_overrides(totalTrainingSteps=steps), k=kfold, nested=nested, jobs=jobs,
                      threads=threads, data=data, framework=framework, out=out, epochs=epochs, seed=seed,
                      allow_import=allow_import, init_weights=init_weights, resume=resume, together=together,
                      seeds=_seed_list(seeds), echo=click.echo)
            return
        if not resume:
            check_length(cfg, epochs=epochs, steps=steps)  # before the data is read (resume checks the run's own)
        run_train(cfg, data=data, framework=framework, out=out, epochs=epochs, seed=seed,
                  resume=resume, quiet=quiet, allow_import=allow_import, init_weights=init_weights,
                  force_data=force_data, steps=steps)
    except TrainingInterrupted as err:  # resumable, as printed: the guard keeps what was written (ctx.exit)
        click.echo(f"deepepi: {err}", err=True)
        ctx.exit(err.exit_code)


def _seed_list(text: str | None) -> list[int] | None:
    """--seeds "1,2,3" -> [1, 2, 3]; each through the --seed rule (0 to 2**32-1)."""
    if text is None:
        return None
    try:
        return [SEED.convert(part.strip(), None, None) for part in text.split(",")]
    except click.BadParameter as err:
        raise ConfigError(f"--seeds {text}: {err.format_message()}") from None


COMMANDS = [train]
