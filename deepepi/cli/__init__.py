"""The `deepepi` command: click groups only. Library errors become one line and an exit code."""

from __future__ import annotations

import os
import signal
import sys
import threading

import click

from deepepi import __version__
from deepepi.cli.guarded import GuardedGroup, last_undone
from deepepi.core import quiet
from deepepi.core.errors import DeepEpiError


@click.group(cls=GuardedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deepepi")
@click.option("-v", "--verbose", is_flag=True,
              help="Show TensorFlow's C++ start-up and log lines (hidden by default).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Train DeepEpi in TensorFlow or PyTorch, export to ONNX, verify the two are equivalent.

    Run `deepepi doctor` to see what is installed and which GPUs are visible."""
    # PyTorch's OpenMP threads spin while they wait, which starves anything else that wants the cores
    # (the other framework's thread pool, a second job); sleeping instead trained 1.2-1.3x faster on
    # a busy 2-core CPU (docs/PERFORMANCE.md, "Training throughput").
    # Set before torch is imported (the commands import it lazily); a user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if verbose:
        return
    # TF_CPP_MIN_LOG_LEVEL 3 quiets TensorFlow's C++ logging once it is set up, also where the user
    # set a lower level (--verbose shows everything); the import hook hides the lines it writes before
    # that (see deepepi.core.quiet).
    quiet.quiet_native_logs()
    quiet.install()
    ctx.call_on_close(quiet.uninstall)


def _register() -> None:
    # Imported here so that `deepepi.cli` can be imported without pulling every command's deps.
    from deepepi.cli import (config_cmd, data_cmd, doctor_cmd, ensemble_cmd, evaluate_cmd, import_cmd, model_cmd,
                             onnx_cmd, predict_cmd, prove_cmd, train_cmd)

    for module in (config_cmd, data_cmd, model_cmd, train_cmd, prove_cmd, onnx_cmd, evaluate_cmd, import_cmd,
                   predict_cmd, ensemble_cmd, doctor_cmd):
        for command in module.COMMANDS:
            cli.add_command(command)


def _one_line(err: click.ClickException) -> str:
    """click's message on one line, prefixed by the subcommand (``data windows: Missing option '-o'``)."""
    ctx = getattr(err, "ctx", None)
    where = ctx.command_path.removeprefix("deepepi").strip() if ctx is not None else ""
    text = " ".join(err.format_message().split())
    return f"{where}: {text}" if where else text


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM ends a command as Ctrl-C does: its writes are rolled back (or kept resumable), exit 130."""
    raise KeyboardInterrupt


def _aborted() -> str:
    undone = last_undone()
    if not undone:
        return "deepepi: aborted"
    more = f" and {len(undone) - 1} more" if len(undone) > 1 else ""
    return f"deepepi: aborted; removed what it had written ({undone[0]}{more})"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning typed errors into `deepepi: error: ...` and exit codes."""
    quiet.route_warnings()  # one line per warning, once per job (rank 0 under torchrun)
    _register()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    try:
        rv = cli.main(args=argv, prog_name="deepepi", standalone_mode=False)
    except DeepEpiError as err:
        click.echo(f"deepepi: error: {err}", err=True)
        sys.exit(err.exit_code)
    except OSError as err:  # e.g. an output path that cannot be created or written
        where = f"{err.filename}: " if err.filename else ""
        click.echo(f"deepepi: error: {where}{err.strerror or err}", err=True)
        sys.exit(DeepEpiError.exit_code)
    except click.exceptions.Abort:
        click.echo(_aborted(), err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as err:  # bare `deepepi data`: the help is the answer
        err.show()
        sys.exit(err.exit_code)
    except click.ClickException as err:  # usage errors too: one line, same form, exit 2
        click.echo(f"deepepi: error: {_one_line(err)}", err=True)
        sys.exit(err.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
