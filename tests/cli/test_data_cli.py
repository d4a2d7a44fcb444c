"""`deepepi data` commands on a tiny synthetic dataset: outputs, config use and help texts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from deepepi.cli.data_cmd import data_group
from deepepi.data.csvio import load_csv
from deepepi.data.synth import FILES, synthesize
from deepepi.data.windows import NPZ_KEYS, make_windows


def run(*args: str) -> str:
    result = CliRunner().invoke(data_group, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("synth"), users=2, events=5, seed=8).csv_path


def test_windows_writes_exactly_the_contract_keys(csv_path: Path, tmp_path: Path) -> None:
    out = run("windows", str(csv_path), "-o", str(tmp_path / "w.npz"))
    expected = make_windows(load_csv(csv_path))
    assert f"{len(expected)} windows of 750 samples" in out
    with np.load(tmp_path / "w.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(NPZ_KEYS)
        for key in NPZ_KEYS:
            np.testing.assert_array_equal(npz[key], getattr(expected, key))
        assert 0.5 < float(npz["X"].mean()) < 1.5  # g, not milli-g
    run("windows", str(csv_path), "-o", str(tmp_path / "raw.npz"), "--raw")
    with np.load(tmp_path / "raw.npz", allow_pickle=False) as npz:
        assert 500 < float(npz["X"].mean()) < 1500


def test_windows_follows_the_config(csv_path: Path, tmp_path: Path) -> None:
    cfg = {"modelConfig": {"bufferSeconds": 10}, "dataProcessing": {"step": 250, "normalise": True}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg), encoding="utf-8")
    run("windows", str(csv_path), "-o", str(tmp_path / "w.npz"), "--config", str(tmp_path / "cfg.json"))
    with np.load(tmp_path / "w.npz", allow_pickle=False) as npz:
        assert npz["X"].shape[1] == 250
        np.testing.assert_allclose(npz["X"].mean(axis=1), 0.0, atol=1e-4)  # float32 rounding


def test_inspect_reports_counts(csv_path: Path) -> None:
    df = load_csv(csv_path)
    windows = make_windows(df)
    out = run("inspect", str(csv_path))
    assert f"{len(df)} rows, {df['eventId'].nunique()} events, {df['userId'].nunique()} users" in out
    assert f"total windows: {len(windows)} ({int(windows.y.sum())} seizure)" in out
    assert "Seizure/Tonic-Clonic" in out


def test_flatten_without_files_reads_the_config_list(csv_path: Path, tmp_path: Path) -> None:
    cfg = {"osdbConfig": {"cacheDir": str(csv_path.parent), "osdbFiles": list(FILES.values())},
           "eventFilters": {"includeTypes": ["Seizure"]}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg), encoding="utf-8")
    out = run("flatten", "-o", str(tmp_path / "s.csv"), "--config", str(tmp_path / "cfg.json"))
    assert "5 events read, 1 written" in out
    assert set(load_csv(tmp_path / "s.csv")["type"]) == {1}


@pytest.mark.parametrize("command", ["flatten", "windows", "synth", "inspect"])
def test_every_command_has_help(command: str) -> None:
    out = run(command, "--help")
    assert "Usage:" in out and len(out.splitlines()) > 4
