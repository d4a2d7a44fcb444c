"""`deepepi evaluate`: models side by side on the same windows; results.json, events.csv, plots, report.html."""

from __future__ import annotations

import click

from deepepi.cli.guarded import InputPath, OutputDir, command
from deepepi.cli.params import CPUS, SEED, Number, alarm_timing_options
from deepepi.core.constants import APP_ACC_SD_THRESHOLD_PCT, OSD_ALARM_STATE


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


@command("evaluate")
@click.argument("models", nargs=-1, required=True, type=InputPath(run=True))
@click.option("--data", "data", multiple=True, required=True, type=InputPath(),
              help="Flattened CSV or OSDB JSON (repeatable). JSON carries seizureTimes, used for latency.")
@click.option("--config", type=InputPath(dir_okay=False), default=None,
              help="Config for windowing (window, step, validateDatapoints), eventFilters, the movement gate and "
                   "WarnTime/AlarmTime. Default: a run directory's config.json, else the first model's metadata "
                   "(window, step, validateDatapoints).")
@click.option("--threshold", type=Number(0, 1), default=None,
              help="Fixed decision threshold in [0, 1] (p > t). Default: the model's decision_threshold, else 0.5.")
@click.option("--target-sensitivity", type=Number(0, 1), default=None,
              help="Pick the highest threshold reaching this event sensitivity on --data (a validation set).")
@click.option("--max-far-per-day", type=Number(0), default=None,
              help="Pick the threshold with the highest event sensitivity within this many false alarms (alarm "
                   "episodes) per 24 h on --data, ties to the higher one (training's budget rule).")
@click.option("--alarm-logic", type=click.Choice(["raw", "app"]), default=None,
              help="Logic for the sweep, the operating point and the plots (default: app, what the phone does); "
                   "both are always reported.")
@click.option("--acc-sd-threshold", type=Number(0), default=None,
              help="App movement gate (%): p = 0 when 100*std/mean of the newest datapoint is below it. Default: "
                   f"the model's metadata, else the config's accSdThreshold, else {APP_ACC_SD_THRESHOLD_PCT:g}.")
@alarm_timing_options
@click.option("--bootstrap", "resamples", type=Number(1, 100_000, integer=True), default=1000, show_default=True,
              help="Bootstrap resamples (by event) for the 95% CIs, 1 to 100000.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--threads", type=CPUS, default=None, help="Intra-op threads of each runtime.")
@click.option("--sweep-q", "sweep_q", is_flag=False, flag_value="default", default=None,
              help="Ensembles (deepepi ensemble): event sensitivity and FP/24 h at the threshold for each q; "
                   "comma-separated values, or 0.1..0.9 when given without a value.")
@click.option("-o", "--out", type=OutputDir(), default="artifacts/evaluate", show_default=True)
def evaluate(models: tuple[str, ...], data: tuple[str, ...], config: str | None, threshold: float | None,
             target_sensitivity: float | None, max_far_per_day: float | None, alarm_logic: str | None,
             acc_sd_threshold: float | None, warn_time: float | None, alarm_time: float | None, resamples: int,
             seed: int, threads: int | None, sweep_q: str | None, out: str) -> None:
    """Evaluate MODELS (ONNX files, run directories, .pt or .keras files) on labelled data: window
    metrics with ROC/PR, events detected with raw windows and with the app's alarm logic, latency,
    false alarms per 24 h, SzCORE scores (timescoring), bootstrap CIs and the OSD baseline."""
    from deepepi.core.errors import ConfigError
    from deepepi.evaluate.report import write_all

    data_like = [m for m in models if m.lower().endswith((".csv", ".json"))]
    if data_like:
        raise ConfigError(f"{data_like[0]}: looks like data, not a model; give --data once per data file "
                          "(--data a.json --data b.json)")
    from deepepi.evaluate.runner import Options
    from deepepi.scoring.decision import describe
    from deepepi.evaluate.runner import evaluate as run

    from deepepi.evaluate.qsweep import DEFAULT_QS

    qs = None
    if sweep_q is not None:
        try:
            qs = DEFAULT_QS if sweep_q == "default" else tuple(float(v) for v in sweep_q.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"--sweep-q: got {sweep_q!r}, expected comma-separated numbers") from None
    options = Options(threshold=threshold, target_sensitivity=target_sensitivity, max_far_per_day=max_far_per_day,
                      alarm_logic=alarm_logic, acc_sd_threshold=acc_sd_threshold, warn_time=warn_time,
                      alarm_time=alarm_time, seed=seed, resamples=resamples, threads=threads, sweep_q=qs)
    result = run(models, data, config=config, options=options)
    files = write_all(result, out)
    d = result.results["data"]
    click.echo(f"data: {d['windows']} windows, {d['events']} events ({d['seizure_events']} seizure), "
               f"{d['users']} users; windows cut as in {d['windowing_from']}")
    for m in result.results["models"]:
        op = m["operating_point"]
        click.echo(f"{m['name']}: threshold {op['threshold']:.2f} ({op['rule']}) | window AUC "
                   f"{_fmt(m['roc_auc'])} TPR {_fmt(m['window']['tpr'])} FPR {_fmt(m['window']['fpr'])}")
        click.echo(f"  {describe(m['decision'])}")
        for key, label in (("raw", "raw windows"), ("app", "app alarms ")):
            e, s = m["logic"][key]["event"], m["logic"][key]["szcore"]
            click.echo(f"  {label}: events {e['detected']}/{e['seizure_events']} (sensitivity "
                       f"{_fmt(e['sensitivity'])}), FP/24 h {_fmt(e['fp_per_24h'], '.2f')}, false-alarm ratio "
                       f"{_fmt(e['false_alarm_ratio'])}, median latency {_fmt(e['latency_s']['median'], '.1f')} s | "
                       f"SzCORE sensitivity {_fmt(s['sensitivity'])} F1 {_fmt(s['f1'])} FP/24 h "
                       f"{_fmt(s['fp_per_24h'], '.2f')}")
        for row in m.get("q_sweep", []):
            click.echo(f"  q {row['q']:.2f}: events {row['detected']}/{row['seizure_events']} (sensitivity "
                       f"{_fmt(row['sensitivity'])}), FP/24 h {_fmt(row['fp_per_24h'], '.2f')}, false-alarm ratio "
                       f"{_fmt(row['false_alarm_ratio'])} ({row['alarm_logic']} alarms, threshold {row['threshold']:.2f})")
        if op.get("note"):
            click.echo(f"  note: {op['note']}" + ("" if op.get("target_met") is not False
                                                 else "; the target was not reachable, closest threshold used"))
    osd = result.results["osd_baseline"]["event"]
    click.echo(f"OSD baseline (osdAlarmState >= {OSD_ALARM_STATE}): events {osd['detected']}/{osd['seizure_events']}, "
               f"FP/24 h {_fmt(osd['fp_per_24h'], '.2f')}, false-alarm ratio {_fmt(osd['false_alarm_ratio'])}")
    click.echo(f"wrote {files['report']}, {files['results']}, {files['events']} and {len(files['plots'])} plots")


COMMANDS = [evaluate]
