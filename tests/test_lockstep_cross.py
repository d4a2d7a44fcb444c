"""Lockstep: Keras and PyTorch trained from the same weights on the same batch stream stay together.

The default architecture (dropout off) trains STEPS optimisation steps on the built-in dataset's
training windows in both frameworks, for three seeds, in float64 so that rounding (~1e-16) cannot
hide an algorithmic difference: any convention left unaligned (Adam's epsilon, BatchNorm's running
variance, loss reduction, batch order, the last partial batch) shows up as a weight difference
orders of magnitude above WEIGHT_TOL. The float32 drift, which is what training sees, is measured
by bench/lockstep_drift.py (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import pytest

from deepepi.config import REPO_CONFIGS, load_config

pytestmark = [pytest.mark.torch, pytest.mark.tf, pytest.mark.slow]

STEPS = 50  # Adam's bias-correction warm-up and many BN momentum horizons
SEEDS = (0, 1, 2)
HELD_OUT = 300
WEIGHT_TOL = 1e-6  # max abs difference over every weight and BN moving statistic
PROB_TOL = 1e-6  # max abs softmax difference on held-out windows
MIN_AGREEMENT = 0.99


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from deepepi.data.synth import default_dataset
    from deepepi.models.spec import ArchSpec
    from deepepi.train.dataset import prepare
    from deepepi.train.lockstep import without_dropout

    cfg = load_config(REPO_CONFIGS / "nnConfig_deep.json")
    cfg = cfg.with_overrides(**without_dropout(cfg.model))
    data = prepare(cfg, default_dataset(root=tmp_path_factory.mktemp("builtin")))
    return ArchSpec.from_config(cfg), cfg.model, data


@pytest.mark.parametrize("seed", SEEDS)
def test_lockstep_float64_stays_within_tolerance(setup, seed: int) -> None:  # noqa: ANN001
    from deepepi.train.lockstep import drift

    spec, m, data = setup
    assert spec.conv_dropout == 0 and spec.dense_dropout == 0
    first, last = drift(spec, m, data.train.X, data.train.y, data.test.X[:HELD_OUT], seed=seed,
                        checkpoints=[1, STEPS], dtype="float64")
    assert first.steps == 1 and last.steps == STEPS
    assert last.max_weight_diff <= WEIGHT_TOL, last
    assert last.max_prob_diff <= PROB_TOL, last
    assert last.agreement >= MIN_AGREEMENT, last
    assert first.max_weight_diff <= WEIGHT_TOL, first
    # and they did train: the weights moved far more than the frameworks differ
    assert last.max_weight_change > 1e-2, last
