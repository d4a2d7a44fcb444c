"""`deepepi doctor`: versions, GPUs per framework, extras, configs and problems; exit 0 always."""

from __future__ import annotations

import json

import click

from deepepi.cli.guarded import command
from deepepi.cli.params import MAX_TIMEOUT_S, TIMEOUT



@command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON (for bug reports).")
@click.option("--timeout", type=TIMEOUT, default=60, show_default=True,
              help=f"Seconds to wait for each framework to load and list its GPUs, 1 to {MAX_TIMEOUT_S}.")
def doctor(as_json: bool, timeout: float) -> None:
    """Show Python and package versions, onnxruntime providers, the GPUs PyTorch and TensorFlow see,
    the installed extras and the commands they enable, whether configs/ resolves, and what to fix."""
    from deepepi.doctor.report import collect, render

    if not as_json:
        click.echo("loading each installed framework in a child process to list its GPUs ...")
    report = collect(timeout=timeout)
    click.echo(json.dumps(report, indent=2) if as_json else render(report))


COMMANDS = [doctor]
