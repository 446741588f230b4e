"""Samplers against hand-computed steps and a Gaussian toy whose ODE solution is known.

Toy: data x_0 ~ N(m0, s0²) per element. Under the Grad-TTS SDE the marginal at t is
N(μ + α_t(m0 − μ), α_t² s0² + 1 − α_t²), α_t = exp(−½∫_0^t β), so the exact score is
−(x − mean_t)/var_t and the probability-flow ODE maps x_1 to
x_0 = mean_0 + (x_1 − mean_1)·sqrt(var_0 / var_1).
"""

import math

import pytest
import torch

from emomix_cli.errors import EmomixError
from emomix_cli.tts.sampling import SOLVERS, dpm2m, euler, euler_sde, heun, initial_noise

M0, S0 = 0.7, 0.1


def _alpha(t):
    return math.exp(-0.5 * (0.05 * t + 0.5 * 19.95 * t * t))


def _toy(frames=16):
    generator = torch.Generator().manual_seed(3)
    mu = torch.randn(1, 80, frames, generator=generator, dtype=torch.float64)
    mask = torch.ones(1, 1, frames, dtype=torch.float64)
    x1 = mu + torch.randn(1, 80, frames, generator=generator, dtype=torch.float64)

    def stats(t):
        a = _alpha(t)
        return mu + a * (M0 - mu), a * a * S0 * S0 + 1 - a * a

    def score(x, t):
        mean, var = stats(t)
        return -(x - mean) / var

    (m1, v1), (m0, v0) = stats(1.0), stats(0.0)
    exact = m0 + (x1 - m1) * math.sqrt(v0 / v1)
    return score, mu, mask, x1, exact


def _linear_score(x, t):
    return -2.0 * x + t


def test_one_euler_step_by_hand():
    mu = torch.tensor([[[0.5, -1.0]]])
    mask = torch.ones(1, 1, 2)
    x = torch.tensor([[[1.0, 2.0]]])
    # N = 1: t = 0.5, β = 0.05 + 19.95·0.5 = 10.025, h = 1; s = −2x + 0.5 = (−1.5, −3.5)
    # μ − x − s = (1.0, 0.5) -> x − ½·(1.0, 0.5)·10.025 = (−4.0125, −0.50625)
    s = -2.0 * x + 0.5
    expected = x - 0.5 * (mu - x - s) * 10.025
    out = euler(_linear_score, mu, mask, 1, x_start=x)
    assert torch.allclose(out, expected)
    assert torch.allclose(out, torch.tensor([[[-4.0125, -0.50625]]]), atol=1e-4)


def test_two_euler_steps_use_midpoint_times():
    mu, mask, x = torch.zeros(1, 1, 1), torch.ones(1, 1, 1), torch.ones(1, 1, 1)
    seen = []
    euler(lambda x, t: seen.append(t) or torch.zeros_like(x), mu, mask, 2, x_start=x)
    assert seen == [0.75, 0.25]


def test_one_stochastic_step_by_hand():
    mu = torch.tensor([[[0.5, -1.0]]])
    mask = torch.ones(1, 1, 2)
    x = torch.tensor([[[1.0, 2.0]]])
    out = euler_sde(_linear_score, mu, mask, 1, generator=torch.Generator().manual_seed(7),
                    x_start=x)
    z = torch.randn(1, 1, 2, generator=torch.Generator().manual_seed(7))
    s = -2.0 * x + 0.5
    expected = x - (0.5 * (mu - x) - s) * 10.025 - math.sqrt(10.025) * z
    assert torch.allclose(out, expected)


def test_start_is_mu_plus_noise_over_temperature():
    mu = torch.randn(1, 80, 5)
    mask = torch.ones(1, 1, 5)
    x = initial_noise(mu, mask, 2.0, torch.Generator().manual_seed(1))
    z = torch.randn(1, 80, 5, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(x, mu + z / 2.0)


def test_one_dpm_step_by_hand():
    # one step from t = 1 to t_end: y_t = (σ_t/σ_1) y + α_t (1 − e^{−h}) D, D = (y + σ_1² s)/α_1
    mu = torch.tensor([[[0.5, -1.0]]], dtype=torch.float64)
    mask = torch.ones(1, 1, 2, dtype=torch.float64)
    x = torch.tensor([[[1.0, 2.0]]], dtype=torch.float64)
    t_end = 0.01
    a1, a_t = _alpha(1.0), _alpha(t_end)
    s1, s_t = math.sqrt(1 - a1**2), math.sqrt(1 - a_t**2)
    h = math.log(a_t / s_t) - math.log(a1 / s1)
    y = x - mu
    denoised = (y + s1**2 * _linear_score(x, 1.0)) / a1
    expected = mu + (s_t / s1) * y + a_t * (1 - math.exp(-h)) * denoised
    out = dpm2m(_linear_score, mu, mask, 1, x_start=x, t_end=t_end)
    assert torch.allclose(out, expected)


def test_padded_frames_stay_zero():
    mu = torch.randn(1, 80, 6)
    mask = torch.ones(1, 1, 6)
    mask[..., 4:] = 0
    for name, solver in SOLVERS.items():
        out = solver(_linear_score, mu, mask, 3, generator=torch.Generator().manual_seed(0))
        assert torch.all(out[..., 4:] == 0), name


@pytest.mark.parametrize("name", list(SOLVERS))
def test_same_seed_same_output(name):
    score, mu, mask, _, _ = _toy()
    runs = [SOLVERS[name](score, mu, mask, 4, generator=torch.Generator().manual_seed(seed))
            for seed in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2])


@pytest.mark.parametrize("name", ["euler", "heun", "dpm2m"])
def test_ode_solvers_converge_to_the_exact_solution(name):
    score, mu, mask, x1, exact = _toy()
    error = (SOLVERS[name](score, mu, mask, 200, x_start=x1) - exact).abs().max().item()
    assert error < 2e-2


def test_higher_order_solvers_beat_euler_at_equal_steps():
    score, mu, mask, x1, exact = _toy()

    def error(solver, n):
        return (solver(score, mu, mask, n, x_start=x1) - exact).abs().max().item()

    for n in (10, 25):
        assert error(dpm2m, n) < error(euler, n) / 5
        assert error(heun, n) < error(euler, n)
    # at equal score evaluations (heun uses 2 per step) dpm2m still wins
    assert error(dpm2m, 10) < error(heun, 5)


def test_bad_step_count_is_an_error():
    mu, mask = torch.zeros(1, 80, 4), torch.ones(1, 1, 4)
    with pytest.raises(EmomixError, match="steps"):
        euler(_linear_score, mu, mask, 0)
