"""dataset.prepare: event-level split, validation source, balancing of the training split only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepepi.core.config import REPO_CONFIGS, from_dict
from deepepi.core.errors import DataError
from deepepi.data.dataset import prepare

SMOKE = REPO_CONFIGS / "smoke.json"


def _cfg(**processing):  # noqa: ANN003, ANN202 - deepepi.core.config.Config
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
def test_validation_never_uses_the_test_split(csv_path: Path, prop: float) -> None:
    """The reference's 0 / 1.0 ("validate on test") become the default share of the training events."""
    from deepepi.core.config import DEFAULT_VALIDATION_PROP

    cfg = _cfg(validationProp=prop)
    assert cfg.processing["validationProp"] == DEFAULT_VALIDATION_PROP
    d = prepare(cfg, csv_path)
    plain = prepare(_cfg(validationProp=DEFAULT_VALIDATION_PROP), csv_path)
    assert not (_events(d.val) & _events(d.test)) and not (_events(d.val) & _events(d.train))
    np.testing.assert_array_equal(d.val.X, plain.val.X)
    np.testing.assert_array_equal(d.test.X, plain.test.X)


def test_balancing_touches_training_events_only(csv_path: Path) -> None:
    plain = prepare(_cfg(), csv_path)
    under = prepare(_cfg(undersample="random"), csv_path)
    over = prepare(_cfg(oversample="random"), csv_path)
    for d in (under, over):
        np.testing.assert_array_equal(d.val.X, plain.val.X)
        np.testing.assert_array_equal(d.test.X, plain.test.X)
    per_class = {label: len(_events(under.train.subset(np.flatnonzero(under.train.y == label)))) for label in (0, 1)}
    assert per_class[0] == per_class[1]
    # oversampling copies whole seizure events, each copy a new event id traced to its source
    per_class = {label: len(_events(over.train.subset(np.flatnonzero(over.train.y == label)))) for label in (0, 1)}
    assert per_class[0] == per_class[1]
    prov = over.augmentation
    assert set(prov["kind"]) == {"over"} and prov["eventId"].is_unique
    assert set(prov["eventId"]) == _events(over.train) - _events(plain.train)
    assert set(prov["source"]) <= _events(plain.train)
    for copy, src in zip(prov["eventId"], prov["source"]):
        np.testing.assert_array_equal(over.train.X[over.train.event_id == copy],
                                      plain.train.X[plain.train.event_id == src])


def test_too_few_events_for_validation_names_the_setting(tmp_path: Path) -> None:
    from deepepi.data.synth import synthesize

    csv = synthesize(tmp_path, users=3, events=16, seed=0).csv_path  # 2 seizures: one for test, one left
    with pytest.raises(DataError, match="validationProp=0.25"):
        prepare(_cfg(), csv)
