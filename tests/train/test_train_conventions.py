"""The conventions the two trainers align: Keras's Adam/AdamW step and BatchNorm's biased running variance."""

from __future__ import annotations

import numpy as np
import pytest

from deepepi.train.optim import ADAM_EPSILON, AdamSettings

ADAM = AdamSettings(lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=ADAM_EPSILON, weight_decay=None)
ADAMW = AdamSettings(lr=1e-3, beta_1=0.8, beta_2=0.99, epsilon=ADAM_EPSILON, weight_decay=0.05)


def _gradients(steps: int, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Gradients spanning 1e-9 .. 1: the tiny ones are where the epsilon convention matters."""
    rng = np.random.default_rng(0)
    scale = 10.0 ** rng.uniform(-9, 0, size=shape)
    return [(rng.standard_normal(shape) * scale).astype(np.float32) for _ in range(steps)]


def test_settings_from_model_config() -> None:
    m = {"useAdamW": False, "lrStart": 0.002, "adamwBeta1": 0.5, "adamwBeta2": 0.6, "weightDecay": 0.1}
    assert AdamSettings.from_model_config(m) == AdamSettings(0.002, 0.9, 0.999, 1e-7, None)
    w = AdamSettings.from_model_config({**m, "useAdamW": True})
    assert (w.beta_1, w.beta_2, w.weight_decay, w.name) == (0.5, 0.6, 0.1, "AdamW")


@pytest.mark.torch
def test_keras_batchnorm_running_variance_is_biased() -> None:
    import torch

    from deepepi.models.torch_bn import KerasBatchNorm1d

    torch.manual_seed(0)
    ours, stock = KerasBatchNorm1d(4, eps=1e-3, momentum=0.1), torch.nn.BatchNorm1d(4, eps=1e-3, momentum=0.1)
    assert ours.state_dict().keys() == stock.state_dict().keys()
    for x in (torch.randn(8, 4) * 3 + 1, torch.randn(6, 4, 10) * 2 - 1):
        ours.reset_running_stats()
        stock.reset_running_stats()
        out, ref = ours(x), stock(x)
        assert torch.allclose(out, ref, atol=1e-6)  # normalisation is the same (biased batch variance)
        dims = [0, 2] if x.dim() == 3 else [0]
        n = x.numel() // x.shape[1]
        biased = x.var(dim=dims, unbiased=False)
        assert torch.allclose(ours.running_var, 0.9 + 0.1 * biased, rtol=1e-6)
        assert torch.allclose(stock.running_var, 0.9 + 0.1 * biased * n / (n - 1), rtol=1e-6)  # what we avoid
        assert torch.allclose(ours.running_mean, 0.1 * x.mean(dim=dims), atol=1e-7)
        assert int(ours.num_batches_tracked) == 1
    ours.eval()
    x = torch.randn(5, 4)
    assert torch.equal(ours(x), torch.nn.functional.batch_norm(x, ours.running_mean, ours.running_var, ours.weight,
                                                               ours.bias, False, 0.0, 1e-3))


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.parametrize("settings", [ADAM, ADAMW], ids=["adam", "adamw"])
@pytest.mark.parametrize(("dtype", "tol"), [("float32", 1e-6), ("float64", 1e-14)])
def test_torch_keras_adam_takes_keras_steps(settings: AdamSettings, dtype: str, tol: float) -> None:
    """Same gradients, 50 steps: KerasAdam tracks keras.optimizers.Adam(W) to the dtype's rounding
    (float64 too: Keras's betas pass through float32 there, and so do ours), while torch.optim.Adam
    (epsilon after bias correction) does not."""
    import keras
    import torch

    from deepepi.train.torch_optim import KerasAdam

    shape = (200,)
    start = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    grads = [g.astype(dtype) for g in _gradients(50, shape)]
    floatx = keras.config.floatx()
    keras.config.set_floatx(dtype)  # the optimiser's learning-rate variable takes floatx
    try:
        var = keras.Variable(start, dtype=dtype)
        if settings.weight_decay is None:
            k_opt = keras.optimizers.Adam(settings.lr, beta_1=settings.beta_1, beta_2=settings.beta_2,
                                          epsilon=settings.epsilon)
        else:
            k_opt = keras.optimizers.AdamW(settings.lr, weight_decay=settings.weight_decay,
                                           beta_1=settings.beta_1, beta_2=settings.beta_2,
                                           epsilon=settings.epsilon)
        k_opt.build([var])
    finally:
        keras.config.set_floatx(floatx)
    ours = torch.nn.Parameter(torch.from_numpy(start.copy()))
    stock = torch.nn.Parameter(torch.from_numpy(start.copy()))
    t_opt = KerasAdam([ours], settings)
    stock_cls = torch.optim.Adam if settings.weight_decay is None else torch.optim.AdamW
    s_opt = stock_cls([stock], lr=settings.lr, betas=(settings.beta_1, settings.beta_2), eps=settings.epsilon,
                      weight_decay=settings.weight_decay or 0.0)
    for g in grads:
        k_opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
        for p, opt in ((ours, t_opt), (stock, s_opt)):
            p.grad = torch.from_numpy(g.copy())
            opt.step()
    keras_w = keras.ops.convert_to_numpy(var)
    ours_diff = np.abs(ours.detach().numpy() - keras_w).max()
    stock_diff = np.abs(stock.detach().numpy() - keras_w).max()
    assert ours_diff <= tol, ours_diff
    assert stock_diff > 1e-4, stock_diff  # the convention gap this optimiser closes
