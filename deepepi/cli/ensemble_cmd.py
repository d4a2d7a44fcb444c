"""`deepepi ensemble`: a Harrell-Davis ensemble of trained models as one ONNX graph."""

from __future__ import annotations

import click

from deepepi.cli.guarded import InputPath, OutputPath, command
from deepepi.cli.params import QUANTILE, SEED
from deepepi.core.constants import DEFAULT_ENSEMBLE_Q as DEFAULT_Q


@command("ensemble")
@click.argument("members", nargs=-1, required=True, type=InputPath(run=True))
@click.option("-o", "--output", required=True, type=OutputPath(derived=(".json",)), help="Ensemble ONNX file.")
@click.option("--q", "q", type=QUANTILE, default=DEFAULT_Q, show_default=True,
              help="Default Harrell-Davis quantile (0 < q < 1); the graph input `q` overrides it at run time.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed of the windows used by the self-check.")
def ensemble(members: tuple[str, ...], output: str, q: float, seed: int) -> None:
    """Merge MEMBERS (run directories or our ONNX files, either framework) into one graph: each member
    runs on the same `acc`, and `probabilities[:, 1]` is the Harrell-Davis q-quantile of their seizure
    probabilities. Self-checked against numpy over the members' own outputs (max abs diff <= 1e-6)."""
    from deepepi.export.ensemble_onnx import build_ensemble

    result = build_ensemble(list(members), output, q=q, seed=seed)
    meta = result.metadata
    click.echo(f"wrote {result.path} ({len(members)} members: {meta['framework_version']}; q default "
               f"{meta['hd_q_default']}, graph input `{meta['hd_q_input']}`; {meta['trainable_parameters']} "
               f"trainable parameters; self-check max abs diff {result.max_abs_diff:.2e})")


COMMANDS = [ensemble]
