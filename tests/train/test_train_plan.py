"""Training plan: epoch mode vs step mode (totalTrainingSteps, evalEverySteps honoured), balanced stream."""

from __future__ import annotations

import numpy as np

from deepepi.core.config import from_dict
from deepepi.train.plan import Plan


def _model(**keys) -> dict:  # noqa: ANN003
    return from_dict({"modelConfig": {"batchSize": 10, **keys}}, warn=False).model


def test_epoch_mode_is_one_pass_per_evaluation() -> None:
    labels = np.r_[np.zeros(85), np.ones(10)].astype(np.int64)
    plan = Plan.from_config(_model(epochs=3), labels, seed=1)
    assert not plan.step_mode and plan.periods == 3 and plan.every == plan.stream.steps_per_epoch == 10
    for period in range(3):
        got = plan.batches(period)
        want = plan.stream.batches(period)
        assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))


def test_step_mode_honours_eval_every_and_total_steps_across_passes() -> None:
    labels = np.r_[np.zeros(85), np.ones(10)].astype(np.int64)
    plan = Plan.from_config(_model(useLrSchedule=True, totalTrainingSteps=47, evalEverySteps=15), labels, seed=1)
    assert plan.step_mode and plan.periods == 4
    assert [plan.bounds(k) for k in range(4)] == [(0, 15), (15, 30), (30, 45), (45, 47)]
    sizes = [len(plan.batches(k)) for k in range(4)]
    assert sizes == [15, 15, 15, 2]
    flat = [b for k in range(4) for b in plan.batches(k)]
    passes = [b for epoch in range(5) for b in plan.stream.batches(epoch)]  # 10 steps per pass
    assert all(np.array_equal(a, b) for a, b in zip(flat, passes[:47]))  # a pass cut mid-way, no gap


def test_balanced_batches_plan_counts_floor_n_over_batch() -> None:
    labels = np.r_[np.zeros(85), np.ones(10)].astype(np.int64)
    plan = Plan.from_config(_model(epochs=2, useBalancedBatches=True), labels, seed=4)
    assert plan.every == 9 and plan.periods == 2 and "balanced" in plan.describe()
    drawn = np.concatenate([b for k in range(2) for b in plan.batches(k)])
    assert len(drawn) == 180 and abs(labels[drawn].mean() - 0.5) < 0.2
