"""Training-split augmentation: copy counts per method, unique ids, no leakage, seeding, 3D noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepepi.core.config import REPO_CONFIGS, from_dict
from deepepi.data.augment import AugmentSettings, augment
from deepepi.data.csvio import M_COLUMNS, WINDOW_COLUMNS, X_COLUMNS, Y_COLUMNS, Z_COLUMNS, load_csv

XYZ = (*X_COLUMNS, *Y_COLUMNS, *Z_COLUMNS)


@pytest.fixture(scope="module")
def rows(csv_path: Path) -> pd.DataFrame:
    return load_csv(csv_path, columns=(*WINDOW_COLUMNS, *XYZ))


def _events(frame: pd.DataFrame, label: int | None = None) -> list[int]:
    f = frame if label is None else frame[frame["type"] == label]
    return sorted(int(e) for e in f["eventId"].unique())


def _rows_per_event(frame: pd.DataFrame) -> dict[int, int]:
    return {int(k): int(v) for k, v in frame.groupby("eventId").size().items()}


def _first_id(rows: pd.DataFrame) -> int:
    return int(rows["eventId"].max()) + 1


@pytest.mark.parametrize("step,copies", [(1, 124), (5, 24), (25, 4), (60, 2), (124, 1)])
def test_phase_copy_count_and_content(rows: pd.DataFrame, step: int, copies: int) -> None:
    seizures = _events(rows, 1)
    out = augment(rows, AugmentSettings(phase=True, phase_step=step), first_id=_first_id(rows))
    assert out.added == {"phase": copies * len(seizures)}
    prov = out.provenance
    assert sorted(prov["source"].value_counts().unique().tolist()) == [copies]
    n_rows = _rows_per_event(rows)
    got = _rows_per_event(out.frame)
    src = seizures[0]
    mine = prov[prov["source"] == src].sort_values("copy")
    assert mine["copy"].tolist() == list(range(1, copies + 1))
    assert all(got[e] == n_rows[src] - 1 for e in mine["eventId"])
    stream = rows[rows["eventId"] == src].sort_values("dataTime")[list(M_COLUMNS)].to_numpy().ravel()
    last = mine.iloc[-1]
    shifted = out.frame[out.frame["eventId"] == last["eventId"]][list(M_COLUMNS)].to_numpy().ravel()
    offset = int(last["copy"]) * step
    np.testing.assert_array_equal(shifted, stream[offset:offset + len(shifted)])
    assert last["name"] == f"{src}#phase{copies}"


def test_user_augmentation_tops_every_user_up_to_the_largest(rows: pd.DataFrame) -> None:
    out = augment(rows, AugmentSettings(user=True, seed=3), first_id=_first_id(rows))
    before = rows[rows["type"] == 1].groupby("userId")["eventId"].nunique()
    after = out.frame[out.frame["type"] == 1].groupby("userId")["eventId"].nunique()
    assert (after == before.max()).all()
    assert out.added["user"] == int((before.max() - before).sum())
    users = rows.drop_duplicates("eventId").set_index("eventId")["userId"]
    copies = out.provenance
    assert (copies["kind"] == "user").all()
    assert all(users[s] == out.frame.loc[out.frame["eventId"] == e, "userId"].iloc[0]
               for e, s in zip(copies["eventId"], copies["source"]))


def test_noise_copies_and_chained_provenance(rows: pd.DataFrame) -> None:
    s = AugmentSettings(phase=True, phase_step=25, noise=True, noise_factor=3, noise_value=30.0)
    out = augment(rows, s, first_id=_first_id(rows))
    seizures = len(_events(rows, 1))
    assert out.added == {"phase": 4 * seizures, "noise": 3 * 5 * seizures}  # originals and phase copies
    prov = out.provenance
    assert prov["eventId"].is_unique and prov["name"].is_unique
    assert (prov["eventId"] >= _first_id(rows)).all()
    chained = prov[prov["name"].str.contains("#phase2#noise3")]
    assert len(chained) == seizures
    assert set(chained["origin"]) == set(_events(rows, 1))
    assert set(out.frame["eventId"]) == set(rows["eventId"]) | set(prov["eventId"])


def test_noise_in_3d_moves_magnitude_with_the_axes(rows: pd.DataFrame) -> None:
    s = AugmentSettings(noise=True, noise_factor=1, noise_value=30.0, seed=7)
    out = augment(rows, s, first_id=_first_id(rows))
    prov = out.provenance
    checked_3d = 0
    for copy, src in zip(prov["eventId"], prov["source"]):
        a = rows[rows["eventId"] == src].sort_values("dataTime", kind="stable")
        b = out.frame[out.frame["eventId"] == copy]
        old = np.stack([a[list(c)].to_numpy(np.float64) for c in (X_COLUMNS, Y_COLUMNS, Z_COLUMNS)])
        new = np.stack([b[list(c)].to_numpy(np.float64) for c in (X_COLUMNS, Y_COLUMNS, Z_COLUMNS)])
        dm = b[list(M_COLUMNS)].to_numpy(np.float64) - a[list(M_COLUMNS)].to_numpy(np.float64)
        has = np.isfinite(old).all(axis=(0, 2)) & (np.abs(old).sum(axis=(0, 2)) > 0)
        if has.any():
            noise = (new - old)[:, has]
            assert abs(noise.std() - 30.0) < 3.0
            expect = np.sqrt((new[:, has] ** 2).sum(0)) - np.sqrt((old[:, has] ** 2).sum(0))
            np.testing.assert_allclose(dm[has], expect, atol=0.05)
            checked_3d += 1
        if (~has).any():
            assert abs(dm[~has].std() - 30.0) < 6.0 and abs(dm[~has].mean()) < 6.0
            np.testing.assert_array_equal(np.isnan(new[:, ~has]), np.isnan(old[:, ~has]))
    assert checked_3d > 0


def test_noise_without_3d_columns_perturbs_the_magnitude(rows: pd.DataFrame) -> None:
    plain = rows[list(WINDOW_COLUMNS)]
    out = augment(plain, AugmentSettings(noise=True, noise_factor=2, noise_value=10.0), first_id=_first_id(rows))
    copy, src = out.provenance.iloc[0][["eventId", "source"]]
    a = plain[plain["eventId"] == src].sort_values("dataTime")[list(M_COLUMNS)].to_numpy(np.float64)
    b = out.frame[out.frame["eventId"] == copy][list(M_COLUMNS)].to_numpy(np.float64)
    assert abs((b - a).std() - 10.0) < 1.0


def test_same_seed_same_arrays_other_seed_differs(rows: pd.DataFrame) -> None:
    s = AugmentSettings(phase=True, phase_step=50, user=True, noise=True, noise_factor=2, noise_value=30.0,
                        oversample="random", seed=11)
    a = augment(rows, s, first_id=_first_id(rows))
    b = augment(rows, s, first_id=_first_id(rows))
    pd.testing.assert_frame_equal(a.frame, b.frame)
    pd.testing.assert_frame_equal(a.provenance, b.provenance)
    c = augment(rows, AugmentSettings(noise=True, noise_factor=2, noise_value=30.0, seed=12), first_id=_first_id(rows))
    d = augment(rows, AugmentSettings(noise=True, noise_factor=2, noise_value=30.0, seed=11), first_id=_first_id(rows))
    assert len(c.frame) == len(d.frame)
    assert not np.array_equal(c.frame[list(M_COLUMNS)].to_numpy(), d.frame[list(M_COLUMNS)].to_numpy())
    t = a.frame[["eventId", "dataTime"]].to_numpy()
    assert (np.diff(t[:, 0]) >= 0).all()  # stably sorted by (eventId, dataTime)
    same = np.diff(t[:, 0]) == 0
    assert (np.diff(t[:, 1])[same] > 0).all()


def test_oversample_after_augmentation_balances_event_counts(rows: pd.DataFrame) -> None:
    s = AugmentSettings(noise=True, noise_factor=1, noise_value=5.0, oversample="random", seed=1)
    out = augment(rows, s, first_id=_first_id(rows))
    n0, n1 = len(_events(out.frame, 0)), len(_events(out.frame, 1))
    assert n0 == n1
    assert out.added["over"] == n1 - 2 * len(_events(rows, 1))
    under = augment(rows, AugmentSettings(undersample="random", seed=1), first_id=_first_id(rows))
    assert len(_events(under.frame, 0)) == len(_events(under.frame, 1)) == len(_events(rows, 1))
    assert under.removed == len(_events(rows, 0)) - len(_events(rows, 1))


def test_prepare_keeps_augmentation_out_of_validation_and_test(csv_path: Path) -> None:
    from deepepi.data.dataset import prepare

    raw = json.loads((REPO_CONFIGS / "smoke.json").read_text())
    raw["dataProcessing"].update(phaseAugmentation=True, phaseAugmentationStep=25, noiseAugmentation=True,
                                 noiseAugmentationFactor=2, noiseAugmentationValue=30.0, userAugmentation=True)
    d = prepare(from_dict(raw, warn=False), csv_path)
    prov = d.augmentation
    train_ids = set(np.unique(d.train.event_id).tolist())
    held_out = set(np.unique(d.val.event_id).tolist()) | set(np.unique(d.test.event_id).tolist())
    real_train = train_ids - set(prov["eventId"])
    assert set(prov["eventId"]) <= train_ids and not (train_ids & held_out)
    assert set(prov["origin"]) <= real_train and set(prov["source"]) <= train_ids
    all_ids = set(load_csv(csv_path, columns=("eventId",))["eventId"])
    assert not (set(prov["eventId"]) & all_ids)  # fresh ids, never a real event's
    assert any("augmentation (training events only)" in n for n in d.notes)
