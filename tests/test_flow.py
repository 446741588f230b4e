"""The flow1d family: OT-CFM against its equations, the ODE solvers, the 1-D U-Net, and the
family inside the model, mixing and checkpoints (docs/DESIGN.md §1.6)."""

from __future__ import annotations

import math

import pytest
import torch

from emomix_cli.errors import EmomixError
from emomix_cli.tts import flow
from emomix_cli.tts.mixing import MixedOutput
from emomix_cli.tts.model import EmoMixTTS, TTSConfig
from emomix_cli.tts.unet1d import FlowEstimator1d, SelfAttention

EMOTION_DIM = 6


def flow_config(**overrides) -> TTSConfig:
    sizes = dict(n_vocab=20, n_feats=16, emotion_dim=EMOTION_DIM, n_speakers=3, spk_emb_dim=4,
                 emo_emb_dim=4, n_enc_channels=16, filter_channels=32, filter_channels_dp=16,
                 n_heads=2, n_enc_layers=1, out_size=0, decoder="flow1d",
                 flow={"channels": (16, 16), "attention_head_dim": 8, "num_heads": 2,
                       "num_mid_blocks": 1})
    from emomix_cli.config import from_dict

    return from_dict(TTSConfig, {**sizes, **overrides})


def flow_model(seed: int = 0, **overrides) -> EmoMixTTS:
    torch.manual_seed(seed)
    return EmoMixTTS(flow_config(**overrides))


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- the equations
def test_the_path_runs_from_noise_to_data():
    x1, z = _randn(3, 16, 10), _randn(3, 16, 10, seed=1)
    sigma = 1e-4
    assert torch.allclose(flow.interpolate(x1, z, torch.zeros(3), sigma), z)
    assert torch.allclose(flow.interpolate(x1, z, torch.ones(3), sigma), x1 + sigma * z)


def test_the_target_is_the_time_derivative_of_the_path():
    x1, z = _randn(2, 16, 8), _randn(2, 16, 8, seed=1)
    t, h = torch.tensor([0.3, 0.8], dtype=torch.float64), 1e-6
    numeric = (flow.interpolate(x1, z, t + h, 0.01) - flow.interpolate(x1, z, t - h, 0.01)) / (2 * h)
    assert torch.allclose(numeric, flow.target_velocity(x1, z, 0.01), atol=1e-7)


@pytest.mark.parametrize("sigma", [1e-4, 0.1])
def test_the_one_step_estimate_is_exact_for_the_true_velocity(sigma):
    x1, z = _randn(4, 16, 8), _randn(4, 16, 8, seed=1)
    t = torch.tensor([0.0, 0.2, 0.7, 0.99], dtype=torch.float64)
    xt = flow.interpolate(x1, z, t, sigma)
    estimate = flow.clean_estimate(xt, flow.target_velocity(x1, z, sigma), t, sigma)
    assert torch.allclose(estimate, x1, atol=1e-12)


def test_the_loss_counts_only_real_frames():
    v, u = _randn(2, 16, 8), _randn(2, 16, 8, seed=1)
    mask = torch.ones(2, 1, 8, dtype=torch.float64)
    mask[1, :, 5:] = 0
    expected = sum(((v[b, :, :n] - u[b, :, :n]) ** 2).sum() for b, n in ((0, 8), (1, 5))) / (13 * 16)
    assert torch.allclose(flow.flow_matching_loss(v, u, mask), expected)
    garbage = u.clone()
    garbage[1, :, 5:] = 1e6
    assert torch.allclose(flow.flow_matching_loss(v, garbage, mask), expected)


# ---------------------------------------------------------------- solvers
@pytest.mark.parametrize("name", list(flow.SOLVERS))
def test_a_constant_velocity_is_integrated_exactly(name):
    x0, u = _randn(1, 16, 8), _randn(1, 16, 8, seed=2)
    mask = torch.ones(1, 1, 8, dtype=torch.float64)
    out = flow.SOLVERS[name](lambda x, t: u, x0, mask, 3, x_start=x0)
    assert torch.allclose(out, x0 + u)


def test_second_order_solvers_converge_faster_than_euler():
    x0 = _randn(1, 16, 8)
    mask = torch.ones(1, 1, 8, dtype=torch.float64)
    exact = x0 * math.exp(1.0) + (math.exp(1.0) - 2.0)  # dx/dt = x + t from t = 0 to 1

    def field(x, t):
        return x + t

    errors = {name: (solver(field, x0, mask, 8, x_start=x0) - exact).abs().max().item()
              for name, solver in flow.SOLVERS.items()}
    assert errors["midpoint"] < errors["euler"] / 5 and errors["heun"] < errors["euler"] / 5
    fine = (flow.euler(field, x0, mask, 400, x_start=x0) - exact).abs().max().item()
    assert fine < errors["euler"] / 20  # first order: 50x the steps, about 1/50 of the error


def test_solvers_evaluate_on_the_uniform_grid_from_noise():
    seen = []
    flow.euler(lambda x, t: seen.append(t) or torch.zeros_like(x), torch.zeros(1, 16, 4),
               torch.ones(1, 1, 4), 4)
    assert seen == [0.0, 0.25, 0.5, 0.75]


def test_temperature_divides_the_initial_noise_and_the_seed_fixes_it():
    mu, mask = torch.zeros(1, 16, 4000), torch.ones(1, 1, 4000)
    noise = flow.initial_noise(mu, mask, 2.0, torch.Generator().manual_seed(3))
    assert noise.std().item() == pytest.approx(0.5, rel=0.05)
    again = flow.initial_noise(mu, mask, 2.0, torch.Generator().manual_seed(3))
    assert torch.equal(noise, again)


# ---------------------------------------------------------------- the network
def _estimator(**overrides) -> FlowEstimator1d:
    torch.manual_seed(0)
    sizes = dict(n_feats=16, channels=(16, 16), spk_emb_dim=4, emo_emb_dim=4, dropout=0.0,
                 attention_head_dim=8, num_heads=2, num_mid_blocks=1)
    return FlowEstimator1d(**{**sizes, **overrides}).eval()


def _net_inputs(batch=2, frames=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, mu = torch.randn(batch, 16, frames, generator=g), torch.randn(batch, 16, frames, generator=g)
    return x, mu, torch.rand(batch, generator=g), torch.randn(batch, 4, generator=g), \
        torch.randn(batch, 4, generator=g)


def test_the_velocity_is_zero_outside_the_mask_and_independent_of_padding():
    net = _estimator()
    x, mu, t, spk, emo = _net_inputs(batch=1, frames=8)
    alone = net(x, torch.ones(1, 1, 8), mu, t, spk, emo)
    padded_x = torch.nn.functional.pad(x, (0, 8), value=3.0)
    padded_mu = torch.nn.functional.pad(mu, (0, 8), value=-2.0)
    mask = torch.zeros(1, 1, 16)
    mask[..., :8] = 1
    with torch.enable_grad():  # the general masked path (no inference shortcut)
        padded = net(padded_x, mask, padded_mu, t, spk, emo)
    assert torch.allclose(padded[..., :8], alone, atol=1e-5)
    assert padded[..., 8:].abs().max() == 0


def test_the_dense_path_equals_the_masked_path():
    net = _estimator()
    x, mu, t, spk, emo = _net_inputs()
    with torch.no_grad():
        dense = net(x, torch.ones(2, 1, 12), mu, t, spk, emo)
    with torch.enable_grad():  # masked GroupNorm statistics and masked attention, all ones
        from emomix_cli.tts import unet1d

        original = unet1d._has_padding
        unet1d._has_padding = lambda mask: True
        try:
            masked = net(x, torch.ones(2, 1, 12), mu, t, spk, emo)
        finally:
            unet1d._has_padding = original
    assert torch.allclose(dense, masked, atol=1e-5)


def test_fused_attention_equals_the_softmax_formula_with_masked_keys():
    torch.manual_seed(0)
    layer = SelfAttention(8, heads=2, dim_head=4).eval()
    x = torch.randn(2, 6, 8)
    keys = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    q, k, v = (proj(x).view(2, 6, 2, 4).transpose(1, 2) for proj in
               (layer.to_q, layer.to_k, layer.to_v))
    logits = q @ k.transpose(-1, -2) / 2.0  # √d = 2
    logits = logits.masked_fill(~keys[:, None, None, :], float("-inf"))
    expected = layer.to_out((logits.softmax(-1) @ v).transpose(1, 2).reshape(2, 6, 8))
    assert torch.allclose(layer(x, keys), expected, atol=1e-6)


def test_a_fresh_emotion_path_changes_nothing_until_it_trains():
    net = _estimator()
    x, mu, t, spk, emo = _net_inputs()
    mask = torch.ones(2, 1, 12)
    assert torch.equal(net(x, mask, mu, t, spk, emo), net(x, mask, mu, t, spk, -emo))
    with torch.no_grad():
        net.emo_time[2].weight.normal_()
    assert not torch.allclose(net(x, mask, mu, t, spk, emo), net(x, mask, mu, t, spk, -emo))


def test_a_length_that_is_not_a_multiple_of_the_downsampling_is_refused():
    net = _estimator(channels=(16, 16, 16))
    x, mu, t, spk, emo = _net_inputs(frames=10)
    with pytest.raises(ValueError, match="multiple of 4"):
        net(x, torch.ones(2, 1, 10), mu, t, spk, emo)


# ---------------------------------------------------------------- the family in the model
def test_the_model_exposes_velocity_and_refuses_score():
    model = flow_model().eval()
    x, mask = torch.randn(1, 16, 8), torch.ones(1, 1, 8)
    spk = model.speaker_vector(torch.tensor([0]))
    v = model.velocity(x, mask, x, 0.5, torch.randn(1, EMOTION_DIM), spk)
    assert v.shape == x.shape and model.family == "flow1d"
    with pytest.raises(EmomixError, match="flow1d model, which has no score"):
        model.score(x, mask, x, 0.5, torch.randn(1, EMOTION_DIM), spk)
    score_model = EmoMixTTS(flow_config(decoder="score2d", dec_dim=8, dim_mults=(1, 2)))
    with pytest.raises(EmomixError, match="score2d model, which has no velocity"):
        score_model.velocity(x, mask, x, 0.5, torch.randn(1, EMOTION_DIM), spk)


def test_flow_training_losses_are_finite_and_reach_the_emotion_path():
    model = flow_model(cond_dropout=0.2).train()
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 20, (2, 5), generator=g)
    mel = torch.randn(2, 16, 20, generator=g) - 5
    out = model.compute_loss(tokens, torch.tensor([5, 4]), mel, torch.tensor([20, 17]),
                             torch.randn(2, EMOTION_DIM, generator=g), torch.tensor([0, 1]),
                             generator=torch.Generator().manual_seed(1))
    total = out["dur_loss"] + out["prior_loss"] + out["diff_loss"] + (out["x0_hat"] ** 2).mean()
    assert torch.isfinite(total)
    assert out["style_weight"].shape == (2,) and torch.allclose(out["style_weight"], out["t"] ** 2)
    total.backward()
    grad = model.decoder.estimator.emo_time[2].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_mel_statistics_normalise_what_the_decoder_sees_and_sample_denormalises():
    model = flow_model(mel_mean=-5.0, mel_std=2.0).eval()
    mel = torch.full((1, 16, 4), -3.0)
    assert torch.allclose(model.normalise(mel), torch.ones_like(mel))
    mu, mask = torch.zeros(1, 16, 8), torch.ones(1, 1, 8)
    zero_field = lambda x, t: torch.zeros_like(x)  # noqa: E731
    out = model.sample(zero_field, mu, mask, "euler", 2, 1.0, x_start=torch.ones_like(mu))
    assert torch.allclose(out, torch.full_like(mu, -3.0))


def test_encoder_emotion_dropout_shows_the_encoder_neutral_and_the_decoder_the_emotion():
    model = flow_model(enc_cond_dropout=0.999).train()
    emotion, neutral = torch.randn(3, EMOTION_DIM), torch.randn(3, EMOTION_DIM)
    picked = model._encoder_emotion(emotion, neutral, torch.Generator().manual_seed(0))
    assert torch.equal(picked, neutral)
    model.eval()
    assert torch.equal(model._encoder_emotion(emotion, neutral, None), emotion)
    model.train()
    with pytest.raises(EmomixError, match="Neutral prototype"):
        model._encoder_emotion(emotion, None, None)


# ---------------------------------------------------------------- mixing velocities
def _mix_inputs(model):
    g = torch.Generator().manual_seed(4)
    x, mu, mask = torch.randn(1, 16, 8, generator=g), torch.randn(1, 16, 8, generator=g), \
        torch.ones(1, 1, 8)
    vectors = {n: torch.randn(EMOTION_DIM, generator=g) for n in ("angry", "happy", "sad")}
    spk = model.speaker_vector(torch.tensor([1]))[0]
    return x, mu, mask, vectors, spk


def _perturbed_flow_model(**overrides):
    model = flow_model(**overrides).eval()
    with torch.no_grad():  # make the emotion matter (fresh paths are zero)
        model.decoder.estimator.emo_time[2].weight.normal_(0, 0.5)
        model.decoder.estimator.emo_mlp[2].weight.normal_(0, 0.5)
    return model


def test_batched_velocities_equal_separate_calls_and_w1_is_eq8():
    model = _perturbed_flow_model()
    x, mu, mask, vectors, spk = _mix_inputs(model)
    weights = {"angry": 0.5, "happy": 0.3, "sad": 0.2}
    conditions = {n: (vectors[n], spk) for n in weights}
    with torch.no_grad():
        separate = sum(w * model.velocity(x, mask, mu, 0.4, vectors[n][None], spk[None])
                       for n, w in weights.items())
        batched = MixedOutput(model, mu, mask, conditions, weights)
        assert torch.allclose(batched(x, 0.4), separate, atol=1e-5)
        assert batched.n_forward == 1
        sequential = MixedOutput(model, mu, mask, conditions, weights, sequential=True)
        assert torch.allclose(sequential(x, 0.4), separate, atol=1e-5)


def test_guided_velocities_follow_the_guidance_formula():
    model = _perturbed_flow_model(cond_dropout=0.1)
    x, mu, mask, vectors, spk = _mix_inputs(model)
    weights = {"angry": 0.6, "happy": 0.4}
    conditions = {n: (vectors[n], spk) for n in weights}
    with torch.no_grad():
        per = {n: model.velocity(x, mask, mu, 0.3, vectors[n][None], spk[None]) for n in weights}
        null = model.velocity(x, mask, mu, 0.3, vectors["angry"][None], spk[None],
                              torch.tensor([True]))
        for w in (0.0, 2.0, 3.5):
            expected = null + w * sum(g * (per[n] - null) for n, g in weights.items())
            got = MixedOutput(model, mu, mask, conditions, weights, guidance=w)(x, 0.3)
            # batched and one-row calls round differently: ~3e-6 of |v| ~ 4 on a CPU without AVX-512 bf16
            assert torch.allclose(got, expected, rtol=1e-5, atol=3e-5)


def _neutral_reference_case():
    """A flow model, a 0.6 angry + 0.4 happy mix, Neutral (the "sad" vector) at its own μ as the
    reference, and each row's velocity at t = 0.3 from separate calls."""
    from emomix_cli.tts.mixing import Reference

    model = _perturbed_flow_model()
    x, mu, mask, vectors, spk = _mix_inputs(model)
    mu_neutral = mu.flip(-1) + 0.5
    weights = {"angry": 0.6, "happy": 0.4}
    conditions = {"angry": (vectors["angry"], spk), "happy": (vectors["happy"], spk),
                  "neutral": (vectors["sad"], spk)}
    with torch.no_grad():
        per = {n: model.velocity(x, mask, mu, 0.3, vectors[n][None], spk[None]) for n in weights}
        ref = model.velocity(x, mask, mu_neutral, 0.3, vectors["sad"][None], spk[None])
        at_own_mu = model.velocity(x, mask, mu, 0.3, vectors["sad"][None], spk[None])
    return model, x, mu, mask, conditions, weights, Reference("neutral", mu_neutral), per, ref, at_own_mu


def test_guidance_from_neutral_uses_neutral_at_its_own_prior():
    """o = o_N(μ_N) + w Σ γ_i (o_i(μ) − o_N(μ_N)): the reference row is Neutral's condition at
    Neutral's μ, in the same single call, and needs no condition dropout."""
    model, x, mu, mask, conditions, weights, reference, per, ref, at_own_mu = _neutral_reference_case()
    with torch.no_grad():
        for w in (0.0, 2.0):
            mixed = MixedOutput(model, mu, mask, conditions, weights, guidance=w, reference=reference)
            expected = ref + w * sum(g * (per[n] - ref) for n, g in weights.items())
            assert torch.allclose(mixed(x, 0.3), expected, atol=1e-5)
            assert mixed.n_forward == 1
    assert not torch.allclose(ref, at_own_mu, atol=1e-3)  # μ_N really reaches the reference row


@pytest.mark.parametrize("k_max,k_min", [(0.6, 0.2), (1.0, 0.0), (0.35, 0.35)])
def test_the_window_means_the_same_noise_level_in_both_families(k_max, k_min):
    flow_mixer = MixedOutput(flow_model(), torch.zeros(1, 16, 8), torch.ones(1, 1, 8),
                             {"angry": (torch.zeros(EMOTION_DIM), None),
                              "happy": (torch.zeros(EMOTION_DIM), None)},
                             {"angry": 0.7, "happy": 0.3}, k_max, k_min)
    score_model = EmoMixTTS(flow_config(decoder="score2d", dec_dim=8, dim_mults=(1, 2)))
    score_mixer = MixedOutput(score_model, torch.zeros(1, 16, 8), torch.ones(1, 1, 8),
                              flow_mixer.conditions, flow_mixer.weights, k_max, k_min)
    for level in (1.0, 0.9, 0.6, 0.5, 0.35, 0.2, 0.1, 0.0):
        assert flow_mixer.active(1.0 - level) == score_mixer.active(level)
    assert flow_mixer.active(0.0) == {"angry": 1.0} or k_max == 1.0  # the start is pure noise


# ---------------------------------------------------------------- end to end
FLOW_TRAIN_MODEL = {"n_enc_channels": 32, "filter_channels": 64, "filter_channels_dp": 32,
                    "n_heads": 2, "n_enc_layers": 1, "spk_emb_dim": 8, "emo_emb_dim": 8,
                    "decoder": "flow1d", "cond_dropout": 0.2, "enc_cond_dropout": 0.3,
                    "flow": {"channels": [16, 16], "attention_head_dim": 8, "num_mid_blocks": 1}}


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
    """A flow1d model trained for 3 steps on the tiny store: (checkpoint, store, its SER)."""
    from emomix_cli.audio import AudioConfig
    from emomix_cli.checkpoint import save_checkpoint
    from emomix_cli.ser.train import ser_payload
    from emomix_cli.tts.train import train_tts
    from tests.conftest import make_tiny_store
    from tests.test_tts_train import tiny_ser, write_config

    root = tmp_path_factory.mktemp("flow_run")
    store = make_tiny_store(root / "features")
    ser = save_checkpoint(root / "ser.pt", "ser", ser_payload(tiny_ser(), AudioConfig()))
    checkpoint = train_tts(write_config(root, store, ser, name="flow", steps=3,
                                        model=FLOW_TRAIN_MODEL, normalise_mels=True))
    return checkpoint, store, ser


@pytest.fixture
def flow_checkpoint(flow_run):
    return flow_run[0]


def test_a_flow_model_trains_records_its_family_and_speaks_from_the_cli(tmp_path, flow_checkpoint):
    from typer.testing import CliRunner

    from emomix_cli.checkpoint import load_checkpoint
    from emomix_cli.cli import app
    from emomix_cli.tts import load_tts

    assert load_checkpoint(flow_checkpoint, "tts")["config"]["decoder"] == "flow1d"
    bundle = load_tts(flow_checkpoint)
    assert bundle.model.family == "flow1d" and bundle.model.cfg.enc_cond_dropout == 0.3
    assert -9 < bundle.model.cfg.mel_mean < -5 and bundle.model.cfg.mel_std > 0.5  # the store's
    runner = CliRunner()
    out = tmp_path / "blend.wav"
    base = ["mix", "Hello there.", "--model", str(flow_checkpoint), "--angry", "0.6", "--sad",
            "0.4", "--vocoder", "griffinlim", "--gl-iters", "2", "--steps", "2"]
    result = runner.invoke(app, [*base, "--solver", "midpoint", "--guidance", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.stat().st_size > 1000
    refused = tmp_path / "refused.wav"
    result = runner.invoke(app, [*base, "--solver", "dpm2m", "-o", str(refused)])
    assert result.exit_code != 0 and not refused.exists()
    assert "for score2d models" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_snake_beta_is_the_official_formula_and_its_gradient_is_exact():
    from emomix_cli.tts.unet1d import _SnakeBeta, snake_beta

    g = torch.Generator().manual_seed(0)
    y = torch.randn(2, 5, 6, generator=g, dtype=torch.float64)
    alpha = 0.3 * torch.randn(6, generator=g, dtype=torch.float64)
    beta = 0.3 * torch.randn(6, generator=g, dtype=torch.float64)
    official = y + torch.sin(y * alpha.exp()).pow(2) / (beta.exp() + 1e-9)
    assert torch.allclose(snake_beta(y, alpha, beta), official, atol=1e-12)
    inputs = tuple(t.clone().requires_grad_() for t in (y, alpha, beta))
    assert torch.autograd.gradcheck(_SnakeBeta.apply, inputs)


def test_normalise_mels_stores_the_train_splits_statistics(tmp_path, tiny_store):
    import numpy as np

    from emomix_cli.datasets import FeatureStore
    from emomix_cli.tts.train import mel_statistics

    store = FeatureStore(tiny_store)
    items = store.items("train")
    values = np.concatenate([store.mel(i["id"]).ravel() for i in items]).astype(np.float64)
    mean, std = mel_statistics(store, items)
    assert mean == pytest.approx(values.mean(), abs=1e-5) and std == pytest.approx(values.std(), abs=1e-5)


@pytest.mark.parametrize("model,message", [
    ({"flow": {"channels": [64, 64]}}, "model.flow is an option of the flow1d decoder"),
    ({"decoder": "flow1d", "dec_dim": 16}, "model.dec_dim is an option of the score2d decoder"),
])
def test_an_option_of_the_other_family_is_refused_at_training(model, message):
    from emomix_cli.tts.train import TTSTrainConfig, build_model_config

    with pytest.raises(EmomixError, match=message):
        build_model_config(TTSTrainConfig(model=model), 40, 2, 8, 0)


def test_eval_refuses_a_solver_of_the_other_family_before_writing(tmp_path, flow_checkpoint):
    from typer.testing import CliRunner

    from emomix_cli.cli import app

    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", "--model", str(flow_checkpoint), "--solver", "dpm2m",
                                      "--out", str(out), "--no-whisper", "--no-dnsmos"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "for score2d models" in " ".join(result.output.split())
    assert not out.exists()


def test_eval_runs_a_flow_model_with_its_guidance_sweep(tmp_path, flow_run):
    from emomix_cli.evaluate import run_eval
    from emomix_cli.synthesis import SynthesisOptions
    from tests.test_eval import ToneVocoder, fake_judges

    out = tmp_path / "eval_flow"
    checkpoint, store, ser = flow_run
    report = run_eval(checkpoint, ser, out, features=store, split="val",
                      max_sentences=1, options=SynthesisOptions(steps=2, solver="heun"),
                      vocoder=ToneVocoder(), judges=fake_judges(), progress=False,
                      guidance_levels=[1.0, 2.0])
    assert report.config.solver == "heun"
    assert [row.w for row in report.guidance.rows] == [1.0, 2.0]
    assert (out / "report.json").is_file() and (out / "guidance.png").is_file()


def test_smoothed_guidance_pushes_the_envelope_and_keeps_the_mix_harmonics():
    """o = o_mix + (w − 1)·G_σ(o_mix − o_ref), batched or one call per row; w = 1 is Eq. 8."""
    from emomix_cli.tts.mixing import smooth_frequencies

    model, x, mu, mask, conditions, weights, reference, per, ref, _ = _neutral_reference_case()
    with torch.no_grad():
        mix = sum(g * per[n] for n, g in weights.items())
        for w in (0.0, 2.0, 3.0):
            expected = mix + (w - 1) * smooth_frequencies(mix - ref, 1.5)
            for sequential in (False, True):
                mixed = MixedOutput(model, mu, mask, conditions, weights, sequential=sequential,
                                    guidance=w, reference=reference, smoothing=1.5)
                assert torch.allclose(mixed(x, 0.3), expected, atol=1e-5)
            plain = MixedOutput(model, mu, mask, conditions, weights, guidance=w, reference=reference)
            assert not torch.allclose(plain(x, 0.3), expected, atol=1e-3)  # σ really changes it
        at_one = MixedOutput(model, mu, mask, conditions, weights, guidance=1.0, reference=reference,
                             smoothing=1.5)
        assert torch.allclose(at_one(x, 0.3), mix, atol=1e-6)


def test_the_voicing_probe_samples_the_decoder_on_the_real_timing(flow_run):
    import numpy as np

    from benchmarks.voicing_probe import model_mels, probe_items
    from emomix_cli.datasets import FeatureStore
    from emomix_cli.tts import load_tts

    checkpoint, root, _ = flow_run
    store = FeatureStore(root)
    items = probe_items(store, ("neutral", "sad", "happy"))  # the tiny store has no happy
    assert [(it["speaker"], it["emotion"], it["split"]) for it in items] == [
        ("spk_a", "neutral", "val"), ("spk_a", "sad", "val"), ("spk_b", "neutral", "val"), ("spk_b", "sad", "val")]
    mels = model_mels(load_tts(checkpoint), store, items[0], [1.5, 3.0], 2, seed=0)
    assert set(mels) == {"prior", "free τ1.5", "free τ3", "forced τ1.5", "forced τ3"}
    frames = store.mel(items[0]["id"]).shape[-1]
    assert mels["prior"].shape == mels["forced τ3"].shape == (80, frames)  # MAS: the real timing
    assert not np.allclose(mels["forced τ1.5"], mels["forced τ3"])  # τ changes the start noise


def test_val_loss_scores_training_states_on_equal_terms(flow_run, tmp_path):
    from benchmarks.val_loss import prepare, val_losses
    from emomix_cli.checkpoint import load_checkpoint

    checkpoint, _, _ = flow_run
    run_dir = checkpoint.parent
    training = prepare(run_dir.parent / "flow.yaml", [f"prototypes={run_dir / 'prototypes.pt'}"], 0,
                       tmp_path / "unused")
    state = load_checkpoint(run_dir / "last.pt", "train-state")
    ema, again, raw = (val_losses(training, state[k]) for k in ("ema", "ema", "model"))
    assert ema == again  # seeded noise and times: a state's score is reproducible
    assert ema["loss"] == pytest.approx(ema["dur_loss"] + ema["prior_loss"] + ema["diff_loss"])
    assert ema["diff_loss"] != raw["diff_loss"]  # 3 steps at EMA 0.9: two different weight sets
    assert not (tmp_path / "unused").exists()  # nothing written


def test_guidance_acts_only_inside_its_noise_interval():
    """--guidance-interval g: plain Eq. 8 (and no reference row) at steps whose noise level is
    above g; the guidance formula at and below it. Flow time t is noise level 1 − t."""
    from emomix_cli.errors import EmomixError
    from emomix_cli.tts.mixing import guidance_at

    model = _perturbed_flow_model(cond_dropout=0.1)
    x, mu, mask, vectors, spk = _mix_inputs(model)
    weights = {"angry": 0.6, "happy": 0.4}
    conditions = {n: (vectors[n], spk) for n in weights}
    with torch.no_grad():
        for t in (0.2, 0.3, 0.7):  # noise levels 0.8, 0.7 (the edge, rounded), 0.3
            plain = MixedOutput(model, mu, mask, conditions, weights)(x, t)
            guided = MixedOutput(model, mu, mask, conditions, weights, guidance=2.5)(x, t)
            windowed = MixedOutput(model, mu, mask, conditions, weights, guidance=2.5, interval=0.7)
            got = windowed(x, t)
            inside = 1.0 - t <= 0.7 + 1e-6
            assert torch.allclose(got, guided if inside else plain, rtol=1e-5, atol=3e-5)
            assert not torch.allclose(guided, plain, atol=1e-3)  # the two cases really differ
    assert guidance_at(3.0, 0.6, 0.6000000001) == 3.0 and guidance_at(3.0, 0.6, 0.61) == 1.0
    assert guidance_at(3.0, 1.0, 1.0) == 3.0  # 1: every step, as before
    with pytest.raises(EmomixError, match="noise level in"):
        MixedOutput(model, mu, mask, conditions, weights, guidance=2.0, interval=1.5)
