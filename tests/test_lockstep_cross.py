"""Lockstep: Keras and PyTorch, from the same weights on the same batch, take the same step.

The default architecture (dropout off) takes one optimisation step on the built-in dataset's
training windows in both frameworks, for three seeds, in float64, so rounding cannot hide an
algorithmic difference: a convention left unaligned (Adam's epsilon, BatchNorm's running variance,
loss reduction, batch order) moves weights by ~1e-3 (Adam's first step is lr * sign(g)) or BN
statistics by ~1e-2, far above WEIGHT_TOL, which is two float32 units at 1.0 (the exported
weights are float32). Over more steps the two runs separate even in float64 (98.1 % argmax
agreement after 50 steps, seed 0) and much faster in float32; docs/PERFORMANCE.md has the figures.
"""

from __future__ import annotations

import pytest

from deepepi.config import REPO_CONFIGS, load_config

pytestmark = [pytest.mark.torch, pytest.mark.tf, pytest.mark.slow]

SEEDS = (0, 1, 2)
HELD_OUT = 300
WEIGHT_TOL = 2.5e-7  # max abs difference over every weight and BN moving statistic (measured 1.2e-7)
PROB_TOL = 1e-7  # max abs softmax difference on held-out windows (measured 1.0e-8)


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
def test_one_lockstep_step_float64_is_the_same_step(setup, seed: int) -> None:  # noqa: ANN001
    from deepepi.train.lockstep import drift

    spec, m, data = setup
    assert spec.conv_dropout == 0 and spec.dense_dropout == 0
    (step,) = drift(spec, m, data.train.X, data.train.y, data.test.X[:HELD_OUT], seed=seed,
                    checkpoints=[1], dtype="float64")
    assert step.max_weight_diff <= WEIGHT_TOL, step
    assert step.max_prob_diff <= PROB_TOL, step
    assert step.agreement == 1.0, step
    # the step did move the weights, far more than the frameworks differ
    assert step.max_weight_change > 1e-2, step
