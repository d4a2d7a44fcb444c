"""Built-in dataset: determinism, OSDB fields, flatten round trip, signal properties, default composition."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from deepepi.cli.data_cmd import data_group
from deepepi.data.csvio import CSV_COLUMNS, load_csv
from deepepi.data import synth
from deepepi.data.osdb import iter_events
from deepepi.data.split import events_table, split_events
from deepepi.data.synth import FILES, GENERATOR_VERSION, MANIFEST_NAME, default_dataset, synthesize
from deepepi.data.windows import make_windows

EVENT_KEYS = ["id", "userId", "type", "subType", "desc", "dataTime", "osdAlarmState", "sampleFreq",
              "seizureTimes", "dataSourceName", "datapoints"]
POINT_KEYS = {"dataTime", "eventId", "userId", "hr", "o2Sat", "alarmState", "specPower", "roiPower",
              "simpleSpec", "rawData", "rawData3D"}


def run(*args: str) -> str:
    result = CliRunner().invoke(data_group, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_same_seed_is_byte_identical_and_other_seeds_differ(tmp_path: Path) -> None:
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        run("synth", "-o", str(tmp_path / name), "--seed", seed, "--users", "2", "--events", "6")
    files = [*FILES.values(), "allData.csv"]
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a" / "allData.csv").read_bytes() != (tmp_path / "c" / "allData.csv").read_bytes()


def test_flattening_the_json_reproduces_the_csv(tmp_path: Path) -> None:
    result = synthesize(tmp_path / "d", users=3, events=10, seed=4)
    out = run("flatten", *map(str, result.json_paths), "-o", str(tmp_path / "again.csv"))
    assert "10 events read, 10 written" in out
    assert (tmp_path / "again.csv").read_bytes() == result.csv_path.read_bytes()
    assert result.csv_path.read_text(encoding="utf-8").splitlines()[0].split(",") == list(CSV_COLUMNS)


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return default_dataset(tmp_path_factory.mktemp("artifacts"))


def test_every_osdb_field_is_present(builtin: Path) -> None:
    by_type: dict[str, list[dict]] = {}
    for etype, name in FILES.items():
        events = list(iter_events(builtin.parent / name))
        assert {e["type"] for e in events} == {etype}
        by_type[etype] = events
    for e in (e for events in by_type.values() for e in events):
        assert list(e)[:len(EVENT_KEYS)] == EVENT_KEYS and e["sampleFreq"] == 25 and len(e["datapoints"]) == 36
        for p in e["datapoints"]:
            assert set(p) <= POINT_KEYS and p["eventId"] == e["id"] and p["userId"] == e["userId"]
            assert len(p["simpleSpec"]) == 10 and p["alarmState"] in (0, 1, 2)
            assert len(p["rawData"]) in (0, 100, 125, 150) and len(p.get("rawData3D") or [0] * 375) == 375
    complete = [p for e in by_type["NDA"] for p in e["datapoints"] if set(p) == POINT_KEYS]
    assert len(complete) > 0.8 * 36 * len(by_type["NDA"])
    for e in by_type["Seizure"]:
        start, end = e["seizureTimes"]
        assert 0 < start < end <= 180
    assert all(e["seizureTimes"] is None for e in by_type["NDA"] + by_type["False Alarm"])


def test_default_composition_and_no_regeneration(builtin: Path) -> None:
    df = load_csv(builtin, columns=("eventId", "userId", "typeStr", "type", "osdAlarmState", "hr"))
    events = df.drop_duplicates("eventId")
    assert len(events) >= 200 and events["userId"].nunique() >= 6
    assert 0.13 <= events["type"].mean() <= 0.17
    assert events.loc[events["type"] == 1, "userId"].nunique() >= 4
    mtime = builtin.stat().st_mtime_ns
    assert default_dataset(builtin.parent.parent) == builtin and builtin.stat().st_mtime_ns == mtime
    manifest = builtin.parent / MANIFEST_NAME
    assert json.loads(manifest.read_text(encoding="utf-8"))["generator_version"] == GENERATOR_VERSION
    alarm = df.groupby("eventId").agg(kind=("typeStr", "first"), alarm=("osdAlarmState", "max"))
    false_alarms = alarm[alarm["kind"].str.startswith("False Alarm")]
    assert (false_alarms["alarm"] >= 2).mean() > 0.5  # the spectral baseline is fooled by them
    assert (alarm.loc[alarm["kind"] == "NDA/Resting", "alarm"] == 0).all()
    hr = df[df["hr"] > 0].groupby("type")["hr"].mean()
    assert hr[1] > hr[0] + 15


def test_an_outdated_default_dataset_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "DEFAULT_EVENTS", 6)
    monkeypatch.setattr(synth, "DEFAULT_USERS", 2)
    stale = tmp_path / "builtin"
    stale.mkdir()
    (stale / "allData.csv").write_text("old\n", encoding="utf-8")
    (stale / MANIFEST_NAME).write_text(json.dumps({"generator_version": 1}), encoding="utf-8")
    csv = default_dataset(tmp_path)
    assert load_csv(csv)["eventId"].nunique() == 6


def _dominant_hz(x: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(x - x.mean())) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 25)
    return float(freqs[1:][np.argmax(power[1:])])


def test_tonic_clonic_jerks_are_large_and_slow_down(builtin: Path) -> None:
    families = synth.event_families(builtin.parent / FILES["Seizure"])
    seizures = [e for e in iter_events(builtin.parent / FILES["Seizure"]) if families[e["id"]] == "tonic-clonic"]
    slowed, spans = 0, []
    for e in seizures:
        mag = np.concatenate([p["rawData"][:125] if len(p["rawData"]) >= 125 else [np.nan] * 125
                              for p in e["datapoints"]]).astype(float)
        start, end = (int(t * 25) for t in e["seizureTimes"])
        early, late = mag[start:start + 250], mag[end - 250:end]
        if np.isnan(early).any() or np.isnan(late).any():
            continue
        spans.append(np.ptp(early))
        slowed += _dominant_hz(early) > _dominant_hz(late)
    assert len(spans) >= 10 and np.median(spans) > 300  # hundreds of milli-g
    assert slowed >= 0.8 * len(spans)


def test_families_confounders_and_sensors_vary(builtin: Path) -> None:
    families = synth.event_families(builtin.parent / FILES["Seizure"])
    counts = {f: list(families.values()).count(f) for f in synth.FAMILIES}
    assert min(counts.values()) == max(counts.values()) == len(families) // 4
    kinds = {e["subType"] for e in iter_events(builtin.parent / FILES["False Alarm"])}
    assert kinds == set(synth._FA_KINDS)
    users = synth._users(np.random.default_rng(0), 50)
    assert np.ptp([u.drift for u in users]) > 0.03 and np.ptp([u.gain for u in users]) > 0.1
    assert np.ptp([u.noise for u in users]) > 10 and np.ptp([u.offset[0] for u in users]) > 50


def test_clock_drift_shifts_recorded_frequencies() -> None:
    """A watch whose clock runs 2 % slow records a 5 Hz movement as 5.1 Hz (resampled, not just relabelled)."""
    t = np.arange(3000) / 25
    recorded = synth._resample(np.sin(2 * np.pi * 5.0 * t), 0.02, 2900)
    assert _dominant_hz(recorded) == pytest.approx(5.1, abs=0.02)


def test_seizure_windows_are_separable_but_not_trivially(builtin: Path) -> None:
    df = load_csv(builtin)
    w = make_windows(df)
    x = w.X - w.X.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(x, axis=1)) ** 2
    freqs = np.fft.rfftfreq(w.X.shape[1], 1 / 25)
    feats = np.log(np.stack([power[:, (freqs >= b) & (freqs < b + 1)].sum(axis=1) for b in range(13)], 1) + 1e-9)
    train, test = split_events(events_table(df), test_prop=0.3, seed=0)
    tr, te = np.isin(w.event_id, train), np.isin(w.event_id, test)
    model = LogisticRegression(max_iter=2000, class_weight="balanced").fit(feats[tr], w.y[tr])
    pred, y = model.predict(feats[te]), w.y[te]
    tpr, fpr = (pred[y == 1] == 1).mean(), (pred[y == 0] == 1).mean()
    assert tpr > 0.55 and fpr < 0.45  # band powers carry the signal, confounders make it hard
    assert tpr < 0.99 or fpr > 0.01  # a linear probe on band powers must not solve it outright


def test_a_mix_sets_the_shares_and_families(tmp_path: Path) -> None:
    mix = synth.Mix(seizure_share=0.3, false_alarm_share=0.15, families=("tonic-clonic", "clonic"))
    result = synthesize(tmp_path / "m", users=3, events=40, seed=0, mix=mix)
    events = load_csv(result.csv_path, columns=("eventId", "typeStr", "type")).drop_duplicates("eventId")
    assert (events["type"] == 1).sum() == 12
    assert events["typeStr"].str.startswith("False Alarm").sum() == 6
    assert set(synth.event_families(result.json_paths[0]).values()) == {"tonic-clonic", "clonic"}
    default = synthesize(tmp_path / "d", users=3, events=40, seed=0, mix=synth.Mix())
    plain = synthesize(tmp_path / "p", users=3, events=40, seed=0)
    assert default.csv_path.read_bytes() == plain.csv_path.read_bytes()


@pytest.mark.parametrize("kwargs", [{"seizure_share": 0.0}, {"false_alarm_share": -0.1},
                                    {"seizure_share": 0.6, "false_alarm_share": 0.4}, {"families": ()},
                                    {"families": ("tonic-clonic", "absence")}])
def test_an_impossible_mix_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="shares|families"):
        synth.Mix(**kwargs)
