"""`deepepi import`: bring a reference-trained (nnTraining2) model into a deepepi run directory."""

from __future__ import annotations

import click

from deepepi.cli.guarded import InputPath, OutputDir, command


@command("import")
@click.argument("model", type=InputPath())
@click.option("-c", "--config", "config", required=True, type=InputPath(dir_okay=False),
              help="The reference config the model was trained with (window, preprocessing, architecture).")
@click.option("-o", "--output", "out", required=True, type=OutputDir(lock=False, file_okay=True),
              help="New run directory to create (must not exist, or be empty).")
def import_model(model: str, config: str, out: str) -> None:
    """Import MODEL: a reference Keras .keras/.h5 file (softmax head) or a PyTorch checkpoint holding
    model_state_dict (conv_stack.N.*, fc1..fc4, bn1..bn4, fc_out). Every layer is checked against the
    architecture the config builds; then `deepepi export --onnx OUT` and the other commands work on OUT."""
    from deepepi.runs.reference_import import import_model as run_import

    result = run_import(model, config, out)
    preset = result.spec.preset()
    check = "" if result.self_check is None else f", max abs diff to the file's own outputs {result.self_check:.2e}"
    click.echo(f"imported {model} ({result.layout}; architecture {preset.name if preset else 'custom'}, "
               f"{result.spec.expected_counts().trainable:,} trainable parameters{check}) -> {result.run_dir}")
    click.echo(f"next: deepepi export --onnx {result.run_dir}")


COMMANDS = [import_model]
