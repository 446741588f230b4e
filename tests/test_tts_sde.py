"""The SDE functions checked against the equations, computed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emomix_cli.tts import sde


def _integral_of_beta(t: float, steps: int = 20000) -> float:
    grid = np.linspace(0.0, t, steps + 1)
    values = 0.05 + (20.0 - 0.05) * grid
    return float(np.trapezoid(values, grid))


@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 0.93, 1.0])
def test_cumulative_beta_is_the_integral_of_beta(t):
    got = float(sde.cumulative_beta(torch.tensor(t, dtype=torch.float64)))
    assert got == pytest.approx(_integral_of_beta(t), rel=1e-9, abs=1e-12)


def test_beta_is_linear_from_beta_min_to_beta_max():
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    assert sde.beta(t).tolist() == pytest.approx([0.05, 10.025, 20.0])


def test_marginal_mean_var_follow_rho_and_lambda():
    gen = torch.Generator().manual_seed(0)
    x0, mu = torch.randn(3, 4, 5, generator=gen), torch.randn(3, 4, 5, generator=gen)
    t = torch.tensor([0.0, 0.3, 1.0])
    mean, var = sde.marginal_mean_var(x0, mu, t)
    for b, tb in enumerate(t.tolist()):
        decay = math.exp(-0.5 * _integral_of_beta(tb))
        assert torch.allclose(mean[b], decay * x0[b] + (1 - decay) * mu[b], atol=1e-5)
        assert float(var[b]) == pytest.approx(1 - decay**2, abs=1e-6)
    assert torch.allclose(mean[0], x0[0]) and float(var[0]) == 0.0


def test_marginal_matches_euler_maruyama_simulation_of_the_sde():
    gen = torch.Generator().manual_seed(1)
    n_paths, steps, t_end = 20000, 400, 0.4
    x0, mu = 1.5, -0.5
    x = torch.full((n_paths,), x0, dtype=torch.float64)
    h = t_end / steps
    for i in range(steps):
        b = 0.05 + (20.0 - 0.05) * (i + 0.5) * h
        x = (
            x
            + 0.5 * (mu - x) * b * h
            + math.sqrt(b * h) * torch.randn(n_paths, generator=gen, dtype=torch.float64)
        )
    mean, var = sde.marginal_mean_var(
        torch.tensor([[[x0]]]), torch.tensor([[[mu]]]), torch.tensor([t_end])
    )
    assert float(x.mean()) == pytest.approx(float(mean), abs=0.02)
    assert float(x.var()) == pytest.approx(float(var), rel=0.04)


def test_forward_diffusion_monte_carlo_mean_and_variance():
    gen = torch.Generator().manual_seed(2)
    n = 20000
    x0 = torch.tensor([2.0, -1.0, 0.5]).view(1, 3, 1).expand(n, 3, 2).contiguous()
    mu = torch.tensor([0.0, 1.0, -3.0]).view(1, 3, 1).expand(n, 3, 2).contiguous()
    mask = torch.tensor([1.0, 0.0]).view(1, 1, 2).expand(n, 1, 2)
    t = torch.full((n,), 0.35)
    xt, z = sde.forward_diffusion(x0, mask, mu, t, generator=gen)
    mean, var = sde.marginal_mean_var(x0[:1], mu[:1], t[:1])
    assert torch.allclose(xt[:, :, 0].mean(0), mean[0, :, 0], atol=0.02)
    assert torch.allclose(xt[:, :, 0].var(0), var.view(1).expand(3), rtol=0.04)
    assert torch.count_nonzero(xt[:, :, 1]) == 0 and torch.count_nonzero(z[:, :, 1]) == 0
    assert torch.allclose(
        xt[:, :, 0], mean[:, :, 0] + z[:, :, 0] * var.sqrt().view(1, 1), atol=1e-5
    )


def test_forward_diffusion_is_reproducible_with_a_generator():
    x0, mu, mask, t = (
        torch.zeros(2, 3, 4),
        torch.ones(2, 3, 4),
        torch.ones(2, 1, 4),
        torch.tensor([0.2, 0.7]),
    )
    a = sde.forward_diffusion(x0, mask, mu, t, generator=torch.Generator().manual_seed(5))
    b = sde.forward_diffusion(x0, mask, mu, t, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_diffusion_loss_is_zero_for_the_exact_noise_score_and_normalised_by_mask():
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(2, 4, 6, generator=gen)
    mask = torch.ones(2, 1, 6)
    mask[1, :, 4:] = 0
    z = z * mask
    var = torch.tensor([0.3, 0.8]).view(2, 1, 1)
    exact = -z / var.sqrt()
    assert float(sde.diffusion_loss(exact, z, var, mask)) == pytest.approx(0.0, abs=1e-10)
    expected = float((z**2).sum()) / (10 * 4)
    assert float(sde.diffusion_loss(torch.zeros_like(z), z, var, mask)) == pytest.approx(
        expected, rel=1e-6
    )


def test_prior_loss_is_the_gaussian_nll_per_masked_element():
    y = torch.tensor([[[1.0, 2.0, 9.0]], [[0.0, 0.0, 0.0]]])  # [2, 1, 3]
    mu = torch.tensor([[[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]])
    mask = torch.tensor([[[1.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]]])
    # masked squared errors 1, 4, 1 over 3 elements (n_feats = 1)
    expected = 0.5 * (6.0 / 3) + 0.5 * math.log(2 * math.pi)
    assert float(sde.prior_loss(y, mu, mask)) == pytest.approx(expected, rel=1e-6)


def test_duration_loss_divides_squared_error_by_total_length():
    logw = torch.tensor([[[1.0, 2.0, 0.0]]])
    target = torch.tensor([[[0.0, 0.0, 0.0]]])
    assert float(sde.duration_loss(logw, target, torch.tensor([2]))) == pytest.approx(2.5)


@pytest.mark.parametrize("t", [0.05, 0.4, 0.9])
def test_tweedie_with_exact_gaussian_score_gives_the_posterior_mean(t):
    # X0 ~ N(m0, s0²) elementwise => X_t ~ N(a m0 + (1-a) mu, a² s0² + λ), all closed form.
    gen = torch.Generator().manual_seed(4)
    m0, mu = (
        torch.randn(1, 5, 7, generator=gen, dtype=torch.float64),
        torch.randn(1, 5, 7, generator=gen, dtype=torch.float64),
    )
    s0 = 0.6
    a = math.exp(-0.5 * _integral_of_beta(t))
    lam = 1 - a**2
    mean_t, var_t = a * m0 + (1 - a) * mu, a**2 * s0**2 + lam
    xt = mean_t + math.sqrt(var_t) * torch.randn(1, 5, 7, generator=gen, dtype=torch.float64)
    score = -(xt - mean_t) / var_t
    posterior_mean = m0 + (a * s0**2 / var_t) * (xt - mean_t)
    got = sde.denoised_estimate(xt, score, mu, torch.tensor([t], dtype=torch.float64))
    assert torch.allclose(got, posterior_mean, atol=1e-8)


def test_tweedie_with_the_conditional_score_recovers_x0_exactly():
    gen = torch.Generator().manual_seed(6)
    x0, mu = torch.randn(2, 4, 8, generator=gen), torch.randn(2, 4, 8, generator=gen)
    t = torch.tensor([0.2, 0.6])
    xt, _ = sde.forward_diffusion(x0, torch.ones(2, 1, 8), mu, t, generator=gen)
    mean, var = sde.marginal_mean_var(x0, mu, t)
    got = sde.denoised_estimate(xt, -(xt - mean) / var, mu, t)
    assert torch.allclose(got, x0, atol=1e-4)


def test_x0_weight_is_one_minus_lambda_and_cut_above_t_max():
    t = torch.tensor([0.0, 0.3, 0.6, 1.0])
    _, var = sde.marginal_mean_var(torch.zeros(4, 1, 1), torch.zeros(4, 1, 1), t)
    assert torch.allclose(sde.x0_weight(t), 1 - var.view(4), atol=1e-7)
    cut = sde.x0_weight(t, t_max=0.5)
    assert cut[2] == 0 and cut[3] == 0 and cut[1] > 0 and cut[0] == 1
