"""`deepepi model summary|list`: a model's layer tables in both frameworks, and the model registry."""

from __future__ import annotations

import click

from deepepi.cli.guarded import InputPath, group
from deepepi.core.config import load_config


@group("model")
def model_group() -> None:
    """Inspect a config's architecture (DeepEpi, SpecCnn, AMBER) and the known model names."""


@model_group.command("summary")
@click.option("-c", "--config", "config", type=InputPath(dir_okay=False), default=None,
              help="Config JSON (reference layout). Default: configs/nnConfig_deep.json.")
def summary(config: str | None) -> None:
    """Print the Keras and PyTorch layer tables side by side, the counts, and whether they match."""
    from deepepi.models.registry import spec_from_config
    from deepepi.models.summary import build_tables, render

    spec = spec_from_config(load_config(config, warn=("keys",)))  # the model only: no window or training notes
    click.echo(render(spec, build_tables(spec)))


@model_group.command("list")
def list_models() -> None:
    """List the model names a config's modelConfig.modelClass may use."""
    from deepepi.models.registry import known_models

    for entry in known_models():
        click.echo(f"{entry.name}: {entry.description}")
        for framework, target in sorted(entry.builders.items()):
            click.echo(f"  {framework}: {target}")
        for framework, cls in sorted(entry.reference_classes.items()):
            click.echo(f"  reference class ({framework}): {cls}")


COMMANDS = [model_group]
