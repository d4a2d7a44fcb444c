"""`deepepi prove-trainers` catches every planted difference between the two trainers (the mutation test).

A small DeepEpi (configs/smoke.json's, AdamW, noise augmentation, dense dropout 0.1, BatchNorm
momentum 0.99, shuffled batches with a partial last batch every 4th step) trains float64 steps in
both frameworks. Unmodified, the two agree within 1e-6 after 6 steps (measured ~1e-10, dropout on);
each ``Perturb`` planted in ONE framework must make the proof FAIL, and the step at which it first
shows is asserted: every step up to it is compared, the steps before it pass (CI cost: a mutation
that shows at step 1 trains one step). docs/PERFORMANCE.md records the table over 12 steps. A
planted difference that left the proof passing would mean the proof cannot see it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.torch, pytest.mark.tf, pytest.mark.slow]

STEPS = 6
BATCHES_PER_PASS = 4  # the batch size is chosen so a pass is 3 full batches and one partial one


@pytest.fixture(scope="module")
def setup(csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """(config path, steps per pass): smoke.json with AdamW, augmentation, dropout, a partial batch."""
    from deepepi.core.config import REPO_CONFIGS, load_config
    from deepepi.data.dataset import prepare

    raw = json.loads((REPO_CONFIGS / "smoke.json").read_text())
    raw["dataProcessing"].update(noiseAugmentation=True, noiseAugmentationFactor=1, noiseAugmentationValue=30.0)
    raw["modelConfig"].update(useAdamW=True, weightDecay=0.01, denseDropout=0.1, bnMomentum=0.99,
                              useBalancedBatches=False)
    path = tmp_path_factory.mktemp("mutation") / "mutation.json"
    path.write_text(json.dumps(raw))
    n = len(prepare(load_config(path), csv_path).train)
    batch = n // BATCHES_PER_PASS + 1
    while n % batch in (0, 1):  # a partial last batch of at least 2 (a lone sample is dropped anyway)
        batch += 1
    raw["modelConfig"]["batchSize"] = batch
    path.write_text(json.dumps(raw))
    return path, -(-n // batch)


def _prove(setup, csv_path: Path, steps: int, checkpoints, **perturb):  # noqa: ANN001, ANN202
    from deepepi.train.prove import Perturb, prove

    config, _ = setup
    planted = {fw: Perturb(**kw) for fw, kw in perturb.items()}
    return prove(config, csv_path, steps=steps, checkpoints=checkpoints, perturb=planted, held_out=128)


def test_unmodified_trainers_pass_with_dropout_on(setup, csv_path: Path) -> None:  # noqa: ANN001
    proof = _prove(setup, csv_path, STEPS, (1, setup[1], STEPS))
    assert proof.passed, proof.table()
    assert proof.dropout_on and proof.dropout["denseDropout"] == 0.1
    last = proof.checks[-1]
    assert last.worst <= 1e-8, proof.table()  # measured ~1e-10: the tolerance (1e-6) is not close
    assert last.weight_change > 1e-2, proof.table()  # training moved the weights far more


# (planted difference, {framework: Perturb fields}, first failing step or None for "the step after a pass")
MUTATIONS = [
    ("learning rate x 1.01", {"pytorch": {"lr_factor": 1.01}}, 1),
    ("Adam epsilon 1e-8 vs 1e-7", {"pytorch": {"epsilon": 1e-8}}, 1),
    ("BatchNorm momentum 0.98 vs 0.99", {"pytorch": {"bn_momentum": 0.98}}, 1),
    ("class weights dropped (seizure x2 in one loss)", {"tensorflow": {"class_weight": {0: 1.0, 1: 2.0}}}, 1),
    ("different augmentation seed", {"pytorch": {"aug_seed": 7}}, 1),
    ("batch order shifted by one batch", {"pytorch": {"batch_shift": 1}}, 1),
    ("L2 instead of decoupled weight decay", {"pytorch": {"l2_decay": True}}, 1),
    ("last partial batch dropped", {"pytorch": {"drop_partial": True}}, None),
    ("dropout mask from a different seed", {"tensorflow": {"mask_seed": 99}}, 1),
]


@pytest.mark.parametrize("name, perturb, first", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_each_planted_difference_fails(setup, csv_path: Path, name: str, perturb: dict, first: int | None) -> None:  # noqa: ANN001
    expected = setup[1] if first is None else first  # the partial batch is the last step of pass 1
    proof = _prove(setup, csv_path, expected, range(1, expected + 1), **perturb)
    print(f"{name}: first failing step {proof.first_failure}\n{proof.table()}")
    assert proof.passed is False, f"{name} was not caught:\n{proof.table()}"
    assert proof.first_failure == expected, proof.table()
