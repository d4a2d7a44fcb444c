"""Event-level splits: disjoint sets, stratification, user grouping, k-fold coverage, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepepi.data.split import events_table, kfold_events, split_events
from deepepi.core.errors import DataError


def events(n_seizure: int = 20, n_other: int = 80, users: int = 10) -> pd.DataFrame:
    labels = np.array([1] * n_seizure + [0] * n_other)
    ids = np.arange(100, 100 + len(labels))
    return pd.DataFrame({"eventId": ids, "userId": ids % users, "label": labels})


def test_events_table_one_row_per_event() -> None:
    rows = pd.DataFrame({"eventId": [5, 5, 3, 3, 3, 9], "userId": [1, 1, 2, 2, 2, 1], "type": [1, 1, 0, 0, 0, 0],
                         "M000": np.zeros(6)})
    table = events_table(rows)
    assert table.to_dict("list") == {"eventId": [3, 5, 9], "userId": [2, 1, 1], "label": [0, 1, 0]}
    rows.loc[1, "type"] = 0
    with pytest.raises(DataError, match="event 5 has rows with different userId or type"):
        events_table(rows)


@pytest.mark.parametrize("seed", [0, 42])
def test_split_is_disjoint_complete_and_stratified(seed: int) -> None:
    ev = events()
    train, test = split_events(ev, test_prop=0.3, seed=seed)
    assert not set(train) & set(test)
    assert sorted(np.concatenate([train, test])) == ev["eventId"].tolist()
    assert len(test) == 30
    assert ev.set_index("eventId").loc[test, "label"].sum() == 6  # 30% of the 20 seizure events
    again = split_events(ev, test_prop=0.3, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip((train, test), again))


def test_seeds_give_different_splits() -> None:
    ev = events()
    assert not np.array_equal(split_events(ev, test_prop=0.3, seed=0)[1], split_events(ev, test_prop=0.3, seed=1)[1])


def test_grouped_split_keeps_users_on_one_side() -> None:
    ev = events(users=9)
    train, test = split_events(ev, test_prop=0.3, seed=3, group_by_user=True)
    users = ev.set_index("eventId")["userId"]
    assert not set(users.loc[train]) & set(users.loc[test])
    assert sorted(np.concatenate([train, test])) == ev["eventId"].tolist()
    assert set(ev.set_index("eventId").loc[test, "label"]) == {0, 1}


@pytest.mark.parametrize("group", [False, True])
def test_kfold_covers_each_event_once(group: bool) -> None:
    ev = events(users=10)
    folds = kfold_events(ev, n_folds=5, seed=1, group_by_user=group)
    assert len(folds) == 5
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests) == ev["eventId"].tolist()
    users = ev.set_index("eventId")["userId"]
    for train, test in folds:
        assert not set(train) & set(test)
        assert len(train) + len(test) == len(ev)
        assert ev.set_index("eventId").loc[test, "label"].sum() >= 2
        if group:
            assert not set(users.loc[train]) & set(users.loc[test])
    if not group:
        assert [int(ev.set_index("eventId").loc[te, "label"].sum()) for _, te in folds] == [4] * 5


def test_too_few_events_or_users_are_data_errors() -> None:
    with pytest.raises(DataError, match=r"class 1 \(seizure\) has 1 event\(s\), needs at least 2"):
        split_events(events(n_seizure=1), test_prop=0.3, seed=0)
    with pytest.raises(DataError, match=r"5-fold .*class 1 \(seizure\) has 3 event\(s\), needs at least 5"):
        kfold_events(events(n_seizure=3), n_folds=5, seed=0)
    with pytest.raises(DataError, match="too few users .* 2 user\\(s\\), needs at least 3"):
        split_events(events(users=2), test_prop=0.3, seed=0, group_by_user=True)
    one_user_seizures = events(n_seizure=0, users=5)
    one_user_seizures = pd.concat([one_user_seizures, pd.DataFrame({"eventId": [1, 2], "userId": [7, 7],
                                                                    "label": [1, 1]})])
    with pytest.raises(DataError, match=r"class 1 \(seizure\) in both sets .* 1 user\(s\)"):
        split_events(one_user_seizures, test_prop=0.3, seed=0, group_by_user=True)
    with pytest.raises(DataError, match="nFolds >= 2"):
        kfold_events(events(), n_folds=1, seed=0)


def test_grouped_kfold_needs_each_class_in_every_test_fold() -> None:
    ev = pd.concat([events(n_seizure=0, users=6),
                    pd.DataFrame({"eventId": [1, 2, 3], "userId": [0, 0, 1], "label": [1, 1, 1]})])
    with pytest.raises(DataError, match=r"test fold \d has no class 1 \(seizure\) events; 2 user\(s\)"):
        kfold_events(ev, n_folds=3, seed=0, group_by_user=True)
