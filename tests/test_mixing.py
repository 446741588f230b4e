"""Mixing (EmoMix Eq. 8): weights, schedule and the batched MixedOutput, against docs/DESIGN.md §1."""

import math

import pytest
import torch

from emomix_cli.errors import EmomixError
from emomix_cli.tts.mixing import (
    MixedOutput,
    condition_for_encoder,
    normalise_weights,
    plan_schedule,
)

EMOTIONS = ["neutral", "angry", "happy", "sad"]


# ---------------------------------------------------------------- normalise_weights
def test_full_weights_are_kept_and_ordered_base_first():
    out = normalise_weights({"happy": 0.4, "angry": 0.6}, EMOTIONS)
    assert list(out) == ["angry", "happy"]
    assert out == pytest.approx({"angry": 0.6, "happy": 0.4})


def test_intensity_fills_the_rest_with_neutral():
    out = normalise_weights({"angry": 0.7}, EMOTIONS)
    assert list(out) == ["angry", "neutral"]
    assert out["angry"] == pytest.approx(0.7) and out["neutral"] == pytest.approx(0.3)
    assert sum(out.values()) == pytest.approx(1.0)


def test_weak_intensity_makes_neutral_the_base():
    # base = the largest weight (docs/DESIGN.md §1), so 0.3 angry + 0.7 neutral has Neutral as base
    assert list(normalise_weights({"angry": 0.3}, EMOTIONS)) == ["neutral", "angry"]


def test_explicit_neutral_receives_the_remainder():
    out = normalise_weights({"happy": 0.5, "neutral": 0.2}, EMOTIONS)
    assert out == pytest.approx({"happy": 0.5, "neutral": 0.5})
    assert list(out) == ["happy", "neutral"]  # tie: happy was given first


def test_ties_go_to_the_first_given():
    assert list(normalise_weights({"sad": 0.5, "angry": 0.5}, EMOTIONS)) == ["sad", "angry"]


def test_zero_weights_are_dropped():
    assert normalise_weights({"angry": 1.0, "happy": 0.0}, EMOTIONS) == {"angry": 1.0}


def test_sum_within_tolerance_is_accepted():
    out = normalise_weights({"angry": 0.6, "happy": 0.4 + 5e-7}, EMOTIONS)
    assert sum(out.values()) == pytest.approx(1.0, abs=1e-12) and "neutral" not in out


def test_sum_above_one_is_an_error():
    with pytest.raises(EmomixError, match=r"weights sum to 1\.2 > 1"):
        normalise_weights({"angry": 0.6, "happy": 0.6}, EMOTIONS)


def test_unknown_emotion_lists_the_known_ones():
    with pytest.raises(EmomixError, match="unknown emotion 'joy'.*neutral, angry, happy, sad"):
        normalise_weights({"joy": 1.0}, EMOTIONS)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "x"])
def test_bad_values_are_errors(bad):
    with pytest.raises(EmomixError, match="angry"):
        normalise_weights({"angry": bad}, EMOTIONS)


@pytest.mark.parametrize("weights", [{}, {"angry": 0.0, "sad": 0.0}])
def test_no_positive_weight_is_an_error(weights):
    with pytest.raises(EmomixError, match="at least one positive weight"):
        normalise_weights(weights, EMOTIONS)


def test_intensity_without_neutral_is_an_error():
    with pytest.raises(EmomixError, match="no 'neutral' emotion"):
        normalise_weights({"angry": 0.5}, ["angry", "happy"])


# ---------------------------------------------------------------- plan_schedule
WEIGHTS = {"angry": 0.5, "happy": 0.3, "sad": 0.2}


def test_schedule_above_k_max_is_the_base_alone():
    assert plan_schedule(WEIGHTS, 0.8, 0.2, 0.8000001) == {"angry": 1.0}


def test_schedule_boundaries_are_the_combination():
    assert plan_schedule(WEIGHTS, 0.8, 0.2, 0.8) == pytest.approx(WEIGHTS)
    assert plan_schedule(WEIGHTS, 0.8, 0.2, 0.2) == pytest.approx(WEIGHTS)


def test_schedule_below_k_min_is_the_others_renormalised():
    assert plan_schedule(WEIGHTS, 0.8, 0.2, 0.1999) == pytest.approx({"happy": 0.6, "sad": 0.4})


def test_schedule_below_k_min_without_others_is_the_base():
    assert plan_schedule({"sad": 1.0}, 0.8, 0.2, 0.0) == {"sad": 1.0}


def test_default_thresholds_combine_at_every_time():
    for t in (0.0, 0.5, 1.0):
        assert plan_schedule(WEIGHTS, 1.0, 0.0, t) == pytest.approx(WEIGHTS)


def test_schedule_base_is_the_largest_even_when_not_first():
    assert plan_schedule({"sad": 0.2, "happy": 0.8}, 0.5, 0.5, 0.9) == {"happy": 1.0}


def test_schedule_drops_zero_weights():
    assert plan_schedule({"angry": 0.7, "happy": 0.0, "sad": 0.3}, 1.0, 0.5, 0.1) == {"sad": 1.0}


@pytest.mark.parametrize("k_max,k_min", [(1.1, 0.0), (0.5, 0.6), (0.5, -0.1)])
def test_bad_thresholds_are_errors(k_max, k_min):
    with pytest.raises(EmomixError, match="k_max"):
        plan_schedule(WEIGHTS, k_max, k_min, 0.5)


# ---------------------------------------------------------------- encoder condition
def test_encoder_condition_is_the_weighted_prototype_average():
    prototypes = {"angry": torch.tensor([1.0, 0.0]), "happy": torch.tensor([0.0, 2.0])}
    mixed = condition_for_encoder(prototypes, {"angry": 0.6, "happy": 0.4})
    assert torch.allclose(mixed, torch.tensor([0.6, 0.8]))
    base = condition_for_encoder(prototypes, {"angry": 0.4, "happy": 0.6}, mode="base")
    assert torch.equal(base, prototypes["happy"])
    with pytest.raises(EmomixError, match="weighted"):
        condition_for_encoder(prototypes, {"angry": 1.0}, mode="median")


# ---------------------------------------------------------------- MixedOutput
class ToyScoreModel:
    """s = tanh(W e + V spk + t)·(μ − x) + x² (per row; nonlinear in e so mixing is not trivial)."""

    def __init__(self, dim=4, spk_dim=3):
        generator = torch.Generator().manual_seed(0)
        self.w = torch.randn(80, dim, generator=generator, dtype=torch.float64)
        self.v = torch.randn(80, spk_dim, generator=generator, dtype=torch.float64)
        self.batches = []

    @staticmethod
    def noise_level(t):
        return t

    def network_output(self, x, mask, mu, t, emotion, spk):
        self.batches.append((x.shape[0], x.stride(0)))
        gate = emotion @ self.w.T + t[:, None]
        if spk is not None:
            gate = gate + spk @ self.v.T
        return (torch.tanh(gate)[:, :, None] * (mu - x) + x**2) * mask


def _inputs(batch=1, frames=12):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 80, frames, generator=generator, dtype=torch.float64)
    mu = torch.randn(batch, 80, frames, generator=generator, dtype=torch.float64)
    mask = torch.ones(batch, 1, frames, dtype=torch.float64)
    mask[..., -3:] = 0
    vectors = {name: torch.randn(4, generator=generator, dtype=torch.float64) for name in EMOTIONS}
    spk = torch.randn(3, generator=generator, dtype=torch.float64)
    return x, mu, mask, vectors, spk


def _single(model, x, mu, mask, emotion, spk, t):
    times = torch.full((x.shape[0],), t, dtype=x.dtype)
    e = emotion.expand(x.shape[0], -1)
    s = None if spk is None else spk.expand(x.shape[0], -1)
    return model.network_output(x, mask, mu, times, e, s)


def test_batched_conditions_equal_separate_calls():
    model = ToyScoreModel()
    x, mu, mask, vectors, spk = _inputs()
    weights = {"angry": 0.5, "happy": 0.3, "sad": 0.2}
    conditions = {name: (vectors[name], spk) for name in weights}
    mixed = MixedOutput(model, mu, mask, conditions, weights)
    expected = sum(w * _single(model, x, mu, mask, vectors[n], spk, 0.4) for n, w in weights.items())
    model.batches.clear()
    out = mixed(x, 0.4)
    assert model.batches == [(3, 0)]  # one forward, M = 3 rows, x broadcast (stride 0) not copied
    assert torch.allclose(out, expected, atol=1e-12)
    sequential = MixedOutput(model, mu, mask, conditions, weights, sequential=True)
    assert torch.allclose(sequential(x, 0.4), expected, atol=1e-12)
    assert sequential.n_forward == 3 and mixed.n_forward == 1


def test_weight_one_and_zero_equals_the_single_emotion():
    model = ToyScoreModel()
    x, mu, mask, vectors, spk = _inputs()
    conditions = {n: (vectors[n], spk) for n in ("angry", "happy")}
    mixed = MixedOutput(model, mu, mask, conditions, {"angry": 1.0, "happy": 0.0})
    assert torch.allclose(mixed(x, 0.7), _single(model, x, mu, mask, vectors["angry"], spk, 0.7))


def test_two_identical_conditions_change_nothing():
    model = ToyScoreModel()
    x, mu, mask, vectors, spk = _inputs()
    conditions = {"angry": (vectors["sad"], spk), "happy": (vectors["sad"], spk)}
    mixed = MixedOutput(model, mu, mask, conditions, {"angry": 0.6, "happy": 0.4})
    assert torch.allclose(mixed(x, 0.3), _single(model, x, mu, mask, vectors["sad"], spk, 0.3),
                          atol=1e-12)


def test_mixed_score_follows_the_schedule():
    model = ToyScoreModel()
    x, mu, mask, vectors, _ = _inputs()
    weights = {"angry": 0.7, "happy": 0.3}
    conditions = {n: (vectors[n], None) for n in weights}
    mixed = MixedOutput(model, mu, mask, conditions, weights, k_max=0.6, k_min=0.2)
    single = {n: _single(model, x, mu, mask, vectors[n], None, t)
              for n, t in (("angry", 0.9), ("happy", 0.1))}
    assert torch.allclose(mixed(x, 0.9), single["angry"])
    assert torch.allclose(mixed(x, 0.1), single["happy"])
    both = 0.7 * _single(model, x, mu, mask, vectors["angry"], None, 0.5) + 0.3 * _single(
        model, x, mu, mask, vectors["happy"], None, 0.5)
    assert torch.allclose(mixed(x, 0.5), both)


def test_several_utterances_times_several_conditions():
    model = ToyScoreModel()
    x, mu, mask, vectors, spk = _inputs(batch=2)
    speakers = torch.stack([spk, -spk])  # a different speaker per utterance
    weights = {"angry": 0.6, "sad": 0.4}
    conditions = {n: (vectors[n], speakers) for n in weights}
    out = MixedOutput(model, mu, mask, conditions, weights)(x, 0.5)
    assert out.shape == x.shape
    for b in range(2):
        expected = sum(w * _single(model, x[b:b + 1], mu[b:b + 1], mask[b:b + 1], vectors[n],
                                   speakers[b], 0.5) for n, w in weights.items())
        assert torch.allclose(out[b:b + 1], expected, atol=1e-12)


def test_guided_coefficients_follow_the_guidance_formula():
    from emomix_cli.tts.mixing import guided_coefficients

    active = {"angry": 0.6, "happy": 0.4}
    assert guided_coefficients(active, 1.0) == [("angry", 0.6), ("happy", 0.4)]  # Eq. 8, no null row
    rows = dict(guided_coefficients(active, 2.0))
    assert rows["angry"] == pytest.approx(1.2) and rows["happy"] == pytest.approx(0.8)
    assert rows[None] == pytest.approx(-1.0)  # s_∅ + 2(Σγ s_i − s_∅) = 2Σγ s_i − s_∅
    for w in (0.0, 0.5, 3.0):
        assert sum(c for _, c in guided_coefficients(active, w)) == pytest.approx(1.0)
    assert dict(guided_coefficients(active, 0.0)) == {"angry": 0.0, "happy": 0.0, None: 1.0}


def test_guided_durations_extrapolate_the_log_durations_from_the_reference():
    from emomix_cli.tts.mixing import guided_durations

    neutral = torch.log(torch.tensor([[[2.0, 4.0, 3.0, 5.0]]]))
    angry = torch.log(torch.tensor([[[1.0, 4.0, 6.0, 5.0]]]))
    mask = torch.tensor([[[1.0, 1.0, 1.0, 0.0]]])  # the last token is padding
    # w = 1: the mix's own; w = 2: exp(2 log a − log n) = a² / n, rounded up
    assert guided_durations(neutral, angry, 1.0, mask).tolist() == [[[1.0, 4.0, 6.0, 0.0]]]
    assert guided_durations(neutral, angry, 2.0, mask).tolist() == [[[1.0, 4.0, 12.0, 0.0]]]
    assert guided_durations(neutral, angry, 0.0, mask, 2.0).tolist() == [[[4.0, 8.0, 6.0, 0.0]]]


def test_smoothing_along_frequency_is_a_normalised_gaussian_with_repeated_edges():
    from emomix_cli.tts.mixing import check_smoothing, smooth_frequencies

    values = torch.randn(2, 80, 7, dtype=torch.float64)
    assert smooth_frequencies(values, 0.0) is values
    flat = torch.full((1, 80, 5), 3.0, dtype=torch.float64)
    assert torch.allclose(smooth_frequencies(flat, 2.0), flat)  # a constant spectrum is kept
    ramp = torch.arange(80, dtype=torch.float64).view(1, 80, 1).expand(1, 80, 3)
    inner = smooth_frequencies(ramp, 2.0)[:, 10:70]
    assert torch.allclose(inner, ramp[:, 10:70])  # symmetric: a line stays a line inside
    impulse = torch.zeros(1, 80, 1, dtype=torch.float64)
    impulse[0, 40, 0] = 1.0
    spread = smooth_frequencies(impulse, 2.0)[0, :, 0]
    assert spread.sum().item() == pytest.approx(1.0) and int(spread.argmax()) == 40
    assert spread[42].item() == pytest.approx(spread[40].item() * math.exp(-0.5), rel=1e-9)
    assert spread[33].item() == 0.0  # truncated at 3σ
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(EmomixError, match="guidance smoothing must be a finite number of mel bins"):
            check_smoothing(bad)
