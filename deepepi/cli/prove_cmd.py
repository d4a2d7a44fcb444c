"""`deepepi prove-trainers`: train both frameworks in lockstep on a config and data, and compare."""

from __future__ import annotations

import click

from deepepi.cli.guarded import InputPath, OutputDir, command
from deepepi.cli.params import STEPS


@command("prove-trainers")
@click.option("-c", "--config", "config", type=InputPath(dir_okay=False), required=True,
              help="The training config to prove (its optimiser, schedule, batches, augmentation, dropout).")
@click.option("--data", type=InputPath(dir_okay=False), required=True,
              help="Flattened CSV (`deepepi data flatten`; the built-in data: `deepepi data synth`).")
@click.option("--steps", type=STEPS, default=50, show_default=True,
              help="Optimisation steps in each framework; compared after steps 1, 10 and this.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="float64 gives the verdict (tolerance 1e-6); float32 is the drift rounding alone causes "
              "(information only).")
@click.option("--float32-info/--no-float32-info", default=True, show_default=True,
              help="After a float64 proof, also train in float32 and print its drift (information).")
@click.option("--out", type=OutputDir(), default=None,
              help="Write OUT/prove_trainers.json with every figure.")
def prove_trainers(config: str, data: str, steps: int, dtype: str, float32_info: bool, out: str | None) -> int:
    """Prove the TensorFlow and PyTorch trainers take the same steps on CONFIG and DATA: from one initial
    state, on one batch stream with shared dropout masks, N float64 steps; weights, BatchNorm statistics,
    Adam's state and held-out softmax must agree within 1e-6. Exit 0 PASS, 1 FAIL, 2 bad input."""
    from deepepi.train.prove import run

    proof = run(config, data, steps=steps, dtype=dtype, out=out, float32_info=float32_info, echo=click.echo)
    return 1 if proof.passed is False else 0


COMMANDS = [prove_trainers]
