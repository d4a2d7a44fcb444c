"""`deepepi data ...`: flatten OSDB JSON, cut windows, generate the built-in dataset, inspect a CSV.

Data modules (pandas, scikit-learn) are imported inside each command so that other commands
start fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from deepepi.cli.guarded import InputPath, OutputDir, OutputPath, group
from deepepi.cli.params import SEED, Number
from deepepi.core.config import load_config

_CONFIG = click.option("--config", "-c", "config", type=InputPath(dir_okay=False), default=None,
                       help="Config JSON (reference nnTraining2 layout); default configs/nnConfig_deep.json.")


@group("data")
def data_group() -> None:
    """OSDB data: JSON -> CSV -> windows, and the built-in synthetic dataset."""


@data_group.command("flatten")
@click.argument("events", nargs=-1, type=InputPath(dir_okay=False))
@click.option("-o", "--output", required=True, type=OutputPath(),
              help="CSV to write (510 columns, one row per 5-s datapoint).")
@_CONFIG
def flatten_cmd(events: tuple[str, ...], output: str, config: str | None) -> None:
    """Flatten OSDB JSON EVENTS files into one CSV, applying the config's eventFilters.

    With no EVENTS, reads osdbConfig.osdbFiles from osdbConfig.cacheDir. The JSON is streamed one
    event at a time, so memory does not grow with the file size.
    """
    from deepepi.data.osdb import flatten

    cfg = load_config(config, warn=("keys",))  # no windows, no training: only the unsupported keys concern it
    if events:
        paths = [Path(p) for p in events]
    else:
        osdb = cfg.sections["osdbConfig"]
        paths = [Path(osdb["cacheDir"]) / str(name) for name in osdb["osdbFiles"]]
    stats = flatten(paths, output, cfg.filters)
    click.echo(f"{output}: {stats.summary()}")


@data_group.command("windows")
@click.argument("csv_path", metavar="CSV", type=InputPath(dir_okay=False))
@click.option("-o", "--output", required=True, type=OutputPath(),
              help="npz to write with arrays X, y, event_id, user_id, end_time.")
@click.option("--raw", is_flag=True, help="Keep milli-g (the ONNX graphs' input) instead of model input in g.")
@_CONFIG
def windows_cmd(csv_path: str, output: str, raw: bool, config: str | None) -> None:
    """Cut CSV into model windows (config window, step and normalisation) and save them as npz."""
    from deepepi.data.csvio import load_csv
    from deepepi.data.windows import windows_from_config

    cfg = load_config(config, warn=("keys", "window"))
    windows = windows_from_config(load_csv(csv_path), cfg, raw=raw)
    windows.save_npz(output)
    seizure = int((windows.y == 1).sum())
    click.echo(f"{output}: {len(windows)} windows of {cfg.window} samples ({seizure} seizure, "
               f"{len(windows) - seizure} non-seizure) from {len(set(windows.event_id.tolist()))} events")


@data_group.command("synth")
@click.option("-o", "--output", "out_dir", required=True, type=OutputDir(),
              help="Directory for the three OSDB JSON files and allData.csv.")
@click.option("--users", type=Number(1, 1000, integer=True), default=None,
              help="Number of users, 1 to 1000 [default: 8].")
@click.option("--events", type=Number(3, 100_000, integer=True), default=None,
              help="Number of events, 3 to 100000 [default: 400].")
@click.option("--seed", type=SEED, default=None, help="Random seed, 0 to 2**32-1 [default: 1].")
def synth_cmd(out_dir: str, users: int | None, events: int | None, seed: int | None) -> None:
    """Generate a synthetic OSDB dataset (same formats as the real release files).

    The same seed gives byte-identical files. allData.csv is made by flattening the JSON files.
    """
    from deepepi.data import synth

    result = synth.synthesize(out_dir, users=synth.DEFAULT_USERS if users is None else users,
                              events=synth.DEFAULT_EVENTS if events is None else events,
                              seed=synth.DEFAULT_SEED if seed is None else seed)
    for path in result.json_paths:
        click.echo(str(path))
    click.echo(f"{result.csv_path}: {result.stats.summary()}")


@data_group.command("split")
@click.argument("run_dir", metavar="RUN", type=InputPath(run=True))
@click.option("--part", required=True, type=click.Choice(["val", "test"]),
              help="The run's validation split (where its threshold was chosen) or its test split.")
@click.option("-o", "--output", required=True, type=OutputPath(), help="CSV to write.")
@click.option("--data", type=InputPath(dir_okay=False), default=None,
              help="The CSV the run trained on, when it has moved (its sha256 must match RUN/data.json).")
def split_cmd(run_dir: str, part: str, output: str, data: str | None) -> None:
    """Write the rows of RUN's validation or test events (RUN/val_events.csv, RUN/test_events.csv)
    from the CSV the run trained on (RUN/data.json), unchanged, for evaluate."""
    from deepepi.core.errors import DataError
    from deepepi.core.io import refuse_overwrite, sha256_file
    from deepepi.data.split import write_event_rows
    from deepepi.runs.layout import DATA_RECORD, read_split

    run = Path(run_dir).parent if Path(run_dir).is_file() else Path(run_dir)  # a model file names its run
    record, ids = read_split(run, part)
    csv = Path(data if data is not None else record["path"])
    if not csv.is_file():
        raise DataError(f"the run's data {csv} is missing; pass it with --data", source=str(run_dir))
    if record.get("sha256") and sha256_file(csv) != record["sha256"]:
        raise DataError(f"{csv} is not the CSV the run trained on (sha256 differs from {DATA_RECORD})",
                        source=str(run_dir))
    refuse_overwrite(output, [csv])  # the recorded CSV is not a command-line path: the CLI gate cannot see it
    found = write_event_rows(csv, ids, output)
    click.echo(f"{output}: the {part} split of {run_dir}, {found} of {len(ids)} events from {csv}")


@data_group.command("inspect")
@click.argument("csv_path", metavar="CSV", type=InputPath(dir_okay=False))
@_CONFIG
def inspect_cmd(csv_path: str, config: str | None) -> None:
    """Validate CSV and summarise it: events and rows per class and user, windows it would give."""
    import numpy as np

    from deepepi.data.csvio import WINDOW_COLUMNS, load_csv
    from deepepi.data.windows import window_labels_from_config

    cfg = load_config(config, warn=("keys", "window"))
    df = load_csv(csv_path, columns=("typeStr",) + WINDOW_COLUMNS)
    labels = window_labels_from_config(df, cfg)  # no samples cut
    y, event_id, user_id = labels["y"], labels["event_id"], labels["user_id"]
    rows = df.groupby("eventId").size()
    per_event = np.bincount(np.searchsorted(np.sort(rows.index.to_numpy()), event_id),
                            minlength=len(rows))
    click.echo(f"{csv_path}: {len(df)} rows, {len(rows)} events, {df['userId'].nunique()} users")
    click.echo(f"rows per event: min {rows.min()}, median {int(rows.median())}, max {rows.max()}; "
               f"windows per event (window {cfg.window}, step {cfg.processing['step']}): "
               f"min {per_event.min()}, median {int(np.median(per_event))}, max {per_event.max()}")
    click.echo(f"{'class':<40}{'events':>8}{'rows':>9}{'windows':>9}")
    by_label = df.groupby("type")
    for label, name in ((1, "seizure (1)"), (0, "non-seizure (0)")):
        events = by_label["eventId"].nunique().get(label, 0)
        click.echo(f"{name:<40}{events:>8}{by_label.size().get(label, 0):>9}{int((y == label).sum()):>9}")
    for type_str, group in df.groupby("typeStr", sort=True):
        click.echo(f"  {str(type_str):<38}{group['eventId'].nunique():>8}{len(group):>9}"
                   f"{int(np.isin(event_id, group['eventId'].unique()).sum()):>9}")
    click.echo(f"{'user':<12}{'events':>8}{'seizure events':>16}{'windows':>9}")
    for user, group in df.groupby("userId", sort=True):
        events = group.drop_duplicates("eventId")
        click.echo(f"{user:<12}{len(events):>8}{int(events['type'].sum()):>16}"
                   f"{int((user_id == user).sum()):>9}")
    click.echo(f"total windows: {len(y)} ({int((y == 1).sum())} seizure)")


COMMANDS = [data_group]
