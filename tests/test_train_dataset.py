"""dataset.prepare: event-level split, validation source, balancing of the training split only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepepi.config import REPO_CONFIGS, from_dict
from deepepi.errors import DataError
from deepepi.train.dataset import prepare

SMOKE = REPO_CONFIGS / "smoke.json"


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepepi.data.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("data"), users=3, events=40, seed=0).csv_path


def _cfg(**processing):  # noqa: ANN003, ANN202 - deepepi.config.Config
    raw = json.loads(SMOKE.read_text())
    raw["dataProcessing"].update(processing)
    return from_dict(raw, warn=False)


def _events(w) -> set[int]:  # noqa: ANN001 - Windows
    return set(np.unique(w.event_id).tolist())


def test_splits_are_disjoint_by_event(csv_path: Path) -> None:
    d = prepare(_cfg(), csv_path)
    assert d.val_source == "train events"
    tr, va, te = _events(d.train), _events(d.val), _events(d.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    for w in (d.train, d.val, d.test):
        assert set(np.unique(w.y).tolist()) == {0, 1}  # stratified: both classes everywhere
    assert d.osd_alarm_test is not None and len(d.osd_alarm_test) == len(d.test)


@pytest.mark.parametrize("prop", [0.0, 1.0])
def test_validation_falls_back_to_test_split(csv_path: Path, prop: float) -> None:
    d = prepare(_cfg(validationProp=prop), csv_path)
    assert d.val_source == "test split"
    np.testing.assert_array_equal(d.val.X, d.test.X)
    assert any(f"validation: the test split (validationProp={prop})" in n for n in d.notes)


def test_balancing_touches_training_events_only(csv_path: Path) -> None:
    plain = prepare(_cfg(), csv_path)
    under = prepare(_cfg(undersample="random"), csv_path)
    over = prepare(_cfg(oversample="random"), csv_path)
    for d in (under, over):
        np.testing.assert_array_equal(d.val.X, plain.val.X)
        np.testing.assert_array_equal(d.test.X, plain.test.X)
    per_class = {label: len(_events(under.train.subset(np.flatnonzero(under.train.y == label)))) for label in (0, 1)}
    assert per_class[0] == per_class[1]
    # oversampling repeats whole seizure events until both classes have as many events
    plain_ids, plain_counts = np.unique(plain.train.event_id, return_counts=True)
    over_ids, over_counts = np.unique(over.train.event_id, return_counts=True)
    np.testing.assert_array_equal(over_ids, plain_ids)
    mult = over_counts / plain_counts
    np.testing.assert_array_equal(mult, np.round(mult))
    seizure = np.isin(plain_ids, plain.train.event_id[plain.train.y == 1])
    assert (mult[~seizure] == 1).all() and mult[seizure].sum() == (~seizure).sum()


def test_too_few_events_for_validation_names_the_setting(tmp_path: Path) -> None:
    from deepepi.data.synth import synthesize

    csv = synthesize(tmp_path, users=3, events=24, seed=0).csv_path
    with pytest.raises(DataError, match="validationProp=0.25"):
        prepare(_cfg(), csv)
