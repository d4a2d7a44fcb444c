"""`deepepi predict`: run a model file on recorded data with the phone app's decision rules."""

from __future__ import annotations

import click

from deepepi.cli.guarded import InputPath, OutputPath, command
from deepepi.cli.params import CPUS, Needs, Number, alarm_timing_options, requires
from deepepi.core.constants import APP_ACC_SD_THRESHOLD_PCT, DEFAULT_THRESHOLD


@command("predict")
@requires({"config": Needs("OSDB JSON --data (its eventFilters; a CSV is already flattened)",
                           lambda p: str(p.get("data", "")).lower().endswith(".json"))})
@click.argument("model", type=InputPath(run=True))
@click.option("--data", required=True, type=InputPath(dir_okay=False),
              help="Flattened CSV, or an OSDB JSON file (flattened with the config's eventFilters).")
@click.option("--stream", is_flag=True,
              help="Feed one 5 s datapoint at a time into a circular buffer, as the app does "
              "(p = 0 until it is full); default: all windows at once.")
@click.option("-o", "--output", type=OutputPath(), default="predictions.csv",
              show_default=True, help="CSV: per datapoint probability, decision, state and alarm.")
@click.option("--threshold", type=Number(0, 1), default=None,
              help="Positive when p > threshold. Default: the model's decision_threshold, else "
              f"{DEFAULT_THRESHOLD:g}.")
@click.option("--acc-sd-threshold", type=Number(0), default=None,
              help="Movement gate: p = 0 when 100*std/mean of the datapoint is below this (%); 0 = off. Default: "
              f"the model's metadata, else the config's accSdThreshold, else {APP_ACC_SD_THRESHOLD_PCT:g}.")
@alarm_timing_options
@click.option("--config", type=InputPath(dir_okay=False), default=None,
              help="Config for windowing (step, validateDatapoints), the movement gate, WarnTime/AlarmTime and the "
              "eventFilters of OSDB JSON input. Default: a run directory's config.json, else the model's metadata.")
@click.option("--threads", type=CPUS, default=None,
              help="Intra-op threads of the model's runtime.")
def predict(model: str, data: str, stream: bool, output: str, threshold: float | None,
            acc_sd_threshold: float | None, warn_time: float | None, alarm_time: float | None, config: str | None,
            threads: int | None) -> None:
    """Probabilities, OK/WARNING/ALARM states and alarms for every datapoint of DATA, from MODEL
    (.onnx, .tflite, .pte, a run directory, ...) with the app's movement gate, strict threshold and
    WarnTime/AlarmTime state machine (the app's 5 s / 10 s unless the model, the config or a flag says otherwise)."""
    from deepepi.runtimes.windowing import windowing
    from deepepi.evaluate.predict import predict_batch, predict_stream, read_datapoints, write_csv
    from deepepi.runtimes import open_model
    from deepepi.runtimes.base import decision_layer
    from deepepi.scoring.decision import cli_layer, config_layer, resolve

    runtime = open_model(model, threads=threads)
    win = windowing([runtime], config)
    rules = resolve(cli_layer(threshold=threshold, acc_sd_threshold=acc_sd_threshold, warn_time=warn_time,
                              alarm_time=alarm_time),
                    decision_layer(runtime.metadata, model),
                    config_layer(win.cfg.processing, win.source) if win.from_file else None)
    filters = dict(win.cfg.filters) if data.lower().endswith(".json") else None
    frame = read_datapoints(data, filters)
    result = (predict_stream(runtime, frame, rules, win.cfg) if stream
              else predict_batch(runtime, frame, rules, win.cfg, source=data))
    write_csv(result, output)
    alarmed = int(result.groupby("eventId")["alarm"].max().sum())
    click.echo(rules.describe())
    click.echo(f"windows cut as in {win.source}")
    click.echo(f"{'stream' if stream else 'batch'}: {len(result)} rows, {result['eventId'].nunique()} "
               f"events, threshold {rules.threshold:g}, movement gate {rules.acc_sd_threshold:g} %, "
               f"{alarmed} event(s) reached ALARM -> {output}")


COMMANDS = [predict]
