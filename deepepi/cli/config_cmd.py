"""`deepepi config show`: print the resolved config (defaults filled, framework detected)."""

from __future__ import annotations

import json

import click

from deepepi.cli.guarded import InputPath, group
from deepepi.core.config import load_config


@group("config")
def config_group() -> None:
    """Inspect config files (reference nnTraining2 layout)."""


@config_group.command("show")
@click.argument("config", type=InputPath(dir_okay=False), required=False)
def show(config: str | None) -> None:
    """Print CONFIG resolved: defaults filled in, framework detected, unsupported keys warned about."""
    cfg = load_config(config)
    click.echo(json.dumps(cfg.to_dict(), indent=2))


COMMANDS = [config_group]
