"""EmoMixTTS: shapes, masks, losses, gradients, speaker encoders, official parameter names."""

from __future__ import annotations

import math

import pytest
import torch

from emomix_cli.errors import EmomixError
from emomix_cli.tts.encoder import MultiHeadAttention
from emomix_cli.tts.model import EmoMixTTS, TTSConfig, count_parameters, preset
from emomix_cli.tts.unet import MaskedGroupNorm

EMOTION_DIM = 6


def tiny_config(**overrides) -> TTSConfig:
    sizes = dict(
        n_vocab=20,
        n_feats=16,
        emotion_dim=EMOTION_DIM,
        n_speakers=3,
        speaker_encoder="table",
        speaker_in_dim=10,
        spk_emb_dim=4,
        emo_emb_dim=4,
        n_enc_channels=16,
        filter_channels=32,
        filter_channels_dp=16,
        n_heads=2,
        n_enc_layers=2,
        enc_kernel=3,
        enc_dropout=0.1,
        window_size=4,
        dec_dim=8,
        dim_mults=(1, 2, 4),
        out_size=0,
    )
    return TTSConfig(**{**sizes, **overrides})


def tiny_model(seed: int = 0, **overrides) -> EmoMixTTS:
    torch.manual_seed(seed)
    return EmoMixTTS(tiny_config(**overrides))


def speaker_input(model: EmoMixTTS, batch: int):
    kind = model.cfg.speaker_encoder
    if kind == "table":
        return torch.arange(batch) % model.cfg.n_speakers
    if kind == "wav2vec2":
        return torch.randn(
            batch, model.cfg.speaker_in_dim, generator=torch.Generator().manual_seed(9)
        )
    return None


def batch_of(lengths_tokens, lengths_frames, n_feats=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    batch = len(lengths_tokens)
    tokens = torch.randint(1, 20, (batch, max(lengths_tokens)), generator=gen)
    mel = torch.randn(batch, n_feats, max(lengths_frames), generator=gen) - 2.0
    for b, (lt, lf) in enumerate(zip(lengths_tokens, lengths_frames, strict=True)):
        tokens[b, lt:] = 0
        mel[b, :, lf:] = 0
    emotion = torch.randn(batch, EMOTION_DIM, generator=gen)
    return tokens, torch.tensor(lengths_tokens), mel, torch.tensor(lengths_frames), emotion


# ---- encode ------------------------------------------------------------------------------
def test_encode_shapes_and_frame_count_padded_to_a_multiple_of_4():
    model = tiny_model().eval()
    tokens, token_lengths, _, _, emotion = batch_of([7, 5], [20, 20])
    out = model.encode(tokens, token_lengths, emotion, model.speaker_vector(torch.tensor([0, 2])))
    frames = out["mu_y"].shape[-1]
    assert frames % 4 == 0 and out["mu_y"].shape == (2, 16, frames)
    assert out["y_mask"].shape == (2, 1, frames) and out["mu_x"].shape == (2, 16, 7)
    assert out["durations"].shape == (2, 7) and out["x_mask"].shape == (2, 1, 7)
    assert torch.equal(out["y_lengths"], out["durations"].sum(1).long())
    assert torch.equal(out["y_mask"].sum((1, 2)).long(), out["y_lengths"])
    assert frames - int(out["y_lengths"].max()) < 4


def test_encode_durations_are_ceiled_scaled_exp_logw_and_mu_y_repeats_mu_x():
    model = tiny_model().eval()
    tokens, token_lengths, _, _, emotion = batch_of([6], [20])
    spk = model.speaker_vector(torch.tensor([1]))
    out = model.encode(tokens, token_lengths, emotion, spk, length_scale=2.5)
    expected = torch.ceil(torch.exp(out["logw"][:, 0]) * 2.5)
    assert torch.equal(out["durations"], expected)
    columns = torch.repeat_interleave(out["mu_x"][0], out["durations"][0].long(), dim=1)
    assert torch.allclose(out["mu_y"][0, :, : columns.shape[1]], columns)
    assert torch.count_nonzero(out["mu_y"][0, :, columns.shape[1] :]) == 0


def test_padding_tokens_changes_none_of_the_encoder_outputs():
    model = tiny_model().eval()
    tokens, token_lengths, _, _, emotion = batch_of([5, 11], [30, 30], seed=3)
    spk = model.speaker_vector(torch.tensor([0, 1]))
    together = model.encode(tokens, token_lengths, emotion, spk)
    alone = model.encode(tokens[:1, :5], token_lengths[:1], emotion[:1], spk[:1])
    n = int(alone["y_lengths"][0])
    assert torch.allclose(together["mu_x"][0, :, :5], alone["mu_x"][0], atol=1e-5)
    assert torch.allclose(together["logw"][0, :, :5], alone["logw"][0], atol=1e-5)
    assert torch.equal(together["durations"][0, :5], alone["durations"][0])
    assert torch.allclose(together["mu_y"][0, :, :n], alone["mu_y"][0, :, :n], atol=1e-5)


# ---- score -------------------------------------------------------------------------------
def test_score_shape_and_zero_outside_the_mask():
    model = tiny_model().eval()
    gen = torch.Generator().manual_seed(1)
    x, mu = torch.randn(2, 16, 24, generator=gen), torch.randn(2, 16, 24, generator=gen)
    mask = torch.ones(2, 1, 24)
    mask[1, :, 18:] = 0
    _, _, _, _, emotion = batch_of([3, 3], [24, 24])
    score = model.score(
        x, mask, mu, torch.tensor([0.3, 0.8]), emotion, model.speaker_vector(torch.tensor([0, 1]))
    )
    assert score.shape == (2, 16, 24)
    assert torch.count_nonzero(score[1, :, 18:]) == 0 and torch.isfinite(score).all()


def test_padding_frames_changes_no_score_on_the_valid_region():
    model = tiny_model().eval()
    gen = torch.Generator().manual_seed(2)
    valid = 18
    x, mu = torch.randn(1, 16, 20, generator=gen), torch.randn(1, 16, 20, generator=gen)
    mask = torch.ones(1, 1, 20)
    mask[..., valid:] = 0
    # the same item padded to 36 frames with junk in the padding
    x_long = torch.cat([x[..., :valid], 50 * torch.randn(1, 16, 18, generator=gen)], dim=-1)
    mu_long = torch.cat([mu[..., :valid], 50 * torch.randn(1, 16, 18, generator=gen)], dim=-1)
    mask_long = torch.zeros(1, 1, 36)
    mask_long[..., :valid] = 1
    _, _, _, _, emotion = batch_of([3], [20])
    spk = model.speaker_vector(torch.tensor([2]))
    t = torch.tensor([0.4])
    short = model.score(x, mask, mu, t, emotion, spk)
    long = model.score(x_long, mask_long, mu_long, t, emotion, spk)
    assert torch.allclose(short[..., :valid], long[..., :valid], atol=1e-5)


def test_score_rejects_a_length_that_is_not_a_multiple_of_4():
    model = tiny_model().eval()
    _, _, _, _, emotion = batch_of([3], [20])
    with pytest.raises(ValueError, match="multiple of 4"):
        model.score(
            torch.zeros(1, 16, 10),
            torch.ones(1, 1, 10),
            torch.zeros(1, 16, 10),
            0.5,
            emotion,
            model.speaker_vector(torch.tensor([0])),
        )


def test_scalar_t_equals_a_batch_of_equal_t():
    model = tiny_model().eval()
    x = torch.randn(2, 16, 8)
    _, _, _, _, emotion = batch_of([3, 3], [8, 8])
    spk = model.speaker_vector(torch.tensor([0, 1]))
    a = model.score(x, torch.ones(2, 1, 8), x, 0.5, emotion, spk)
    b = model.score(x, torch.ones(2, 1, 8), x, torch.tensor([0.5, 0.5]), emotion, spk)
    assert torch.equal(a, b)


def test_emotion_changes_the_score_of_a_fresh_model_through_its_input_channel():
    """Fresh, the zero-initialised projection into the time embedding carries nothing: the
    emotion reaches the score only as an input channel (emo_mlp), and that already counts."""
    model = tiny_model().eval()
    cond_time = model.decoder.estimator.cond_time[2]
    assert cond_time.weight.abs().sum() == 0 and cond_time.bias.abs().sum() == 0
    x = torch.randn(1, 16, 8)
    spk = model.speaker_vector(torch.tensor([0]))
    a = model.score(x, torch.ones(1, 1, 8), x, 0.5, torch.zeros(1, EMOTION_DIM), spk)
    b = model.score(x, torch.ones(1, 1, 8), x, 0.5, torch.ones(1, EMOTION_DIM), spk)
    assert not torch.allclose(a, b)


def _emotion_effect(model, x, spk):
    """score(e = 1) − score(e = 0) at one point."""
    mask = torch.ones(1, 1, x.shape[-1])
    with torch.no_grad():
        ones = model.score(x, mask, x, 0.5, torch.ones(1, EMOTION_DIM), spk)
        zeros = model.score(x, mask, x, 0.5, torch.zeros(1, EMOTION_DIM), spk)
    return ones - zeros


def test_a_few_training_steps_make_the_time_embedding_path_carry_the_emotion():
    model = tiny_model(seed=3, enc_dropout=0.0)
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([5, 4], [20, 16], seed=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(3):
        out = model.compute_loss(tokens, token_lengths, mel, mel_lengths, emotion,
                                 torch.tensor([0, 1]), generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        out["diff_loss"].backward()
        optimizer.step()
    model.eval()
    x = torch.randn(1, 16, 8, generator=torch.Generator().manual_seed(5))
    spk = model.speaker_vector(torch.tensor([0]))
    trained = _emotion_effect(model, x, spk)
    with torch.no_grad():  # switch the time-embedding path off again: the effect must change
        model.decoder.estimator.cond_time[2].weight.zero_()
        model.decoder.estimator.cond_time[2].bias.zero_()
    assert not torch.allclose(trained, _emotion_effect(model, x, spk), atol=1e-6)


# ---- condition dropout (guidance) -----------------------------------------------------------
def test_without_condition_dropout_there_is_no_null_emotion():
    model = tiny_model().eval()
    assert not hasattr(model, "emo_null") and not model.supports_guidance
    assert "emo_null" not in model.state_dict()
    assert not tiny_model(cond_dropout=0.3, emotion_dim=0).supports_guidance  # nothing to drop
    x = torch.randn(1, 16, 8)
    _, _, _, _, emotion = batch_of([3], [8])
    with pytest.raises(EmomixError, match="condition dropout"):
        model.score(x, torch.ones(1, 1, 8), x, 0.5, emotion, model.speaker_vector(torch.tensor([0])),
                    unconditional=torch.tensor([True]))


def test_unconditional_rows_are_scored_with_the_null_emotion():
    model = tiny_model(cond_dropout=0.2).eval()
    assert model.supports_guidance and "emo_null" in model.state_dict()
    with torch.no_grad():
        model.emo_null.copy_(torch.randn(model.emo_null.shape, generator=torch.Generator().manual_seed(8)))
    gen = torch.Generator().manual_seed(6)
    x, mu = torch.randn(2, 16, 8, generator=gen), torch.randn(2, 16, 8, generator=gen)
    mask, t = torch.ones(2, 1, 8), torch.tensor([0.3, 0.7])
    _, _, _, _, emotion = batch_of([3, 3], [8, 8])
    spk = model.speaker_vector(torch.tensor([0, 1]))
    with torch.no_grad():
        mixed = model.score(x, mask, mu, t, emotion, spk, unconditional=torch.tensor([True, False]))
        conditional = model.score(x, mask, mu, t, emotion, spk)
        emo = model.emotion_vector(emotion)
        null_first = torch.stack([model.emo_null, emo[1]])
        expected = model.decoder.estimator(x, mask, mu, t, spk, null_first)
    assert torch.allclose(mixed, expected, atol=1e-6)
    assert torch.allclose(mixed[1], conditional[1], atol=1e-6)
    assert not torch.allclose(mixed[0], conditional[0], atol=1e-4)


def _dropped_rows(model, seed: int) -> torch.Tensor | None:
    """The ``unconditional`` flags compute_loss hands to the decoder."""
    seen = []
    real = model.decoder_emotion

    def spy(emo, unconditional):
        seen.append(unconditional)
        return real(emo, unconditional)

    model.decoder_emotion = spy
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([4] * 8, [12] * 8, seed=2)
    model.compute_loss(tokens, token_lengths, mel, mel_lengths, emotion, torch.arange(8) % 3,
                       generator=torch.Generator().manual_seed(seed))
    del model.decoder_emotion
    return seen[0]


def test_condition_dropout_drops_some_items_in_training_and_none_in_eval():
    model = tiny_model(cond_dropout=0.5).train()
    dropped = _dropped_rows(model, seed=0)
    assert dropped is not None and dropped.dtype == torch.bool and dropped.shape == (8,)
    assert 0 < int(dropped.sum()) < 8
    assert torch.equal(dropped, _dropped_rows(model, seed=0))  # the seeded generator decides
    model.eval()
    eval_flags = _dropped_rows(model, seed=0)
    assert eval_flags is None or not eval_flags.any()
    assert _dropped_rows(tiny_model(cond_dropout=0.0).train(), seed=0) is None


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_condition_dropout_outside_0_1_is_refused(value):
    with pytest.raises(EmomixError, match="cond_dropout"):
        tiny_model(cond_dropout=value)


# ---- training ----------------------------------------------------------------------------
def test_compute_loss_shapes_and_finite_losses():
    model = tiny_model()
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([6, 4], [30, 19])
    out = model.compute_loss(
        tokens,
        token_lengths,
        mel,
        mel_lengths,
        emotion,
        torch.tensor([0, 2]),
        out_size=12,
        generator=torch.Generator().manual_seed(0),
    )
    for name in ("dur_loss", "prior_loss", "diff_loss"):
        assert out[name].dim() == 0 and torch.isfinite(out[name])
    assert out["x0_hat"].shape == out["target"].shape == (2, 16, 12)
    assert out["seg_mask"].shape == (2, 1, 12) and out["t"].shape == (2,)
    assert torch.all((out["t"] > 0) & (out["t"] < 1))
    assert torch.isfinite(out["x0_hat"]).all()
    assert out["durations"].sum(1).tolist() == [30.0, 19.0]


def test_segment_is_a_window_of_the_target_mel():
    model = tiny_model()
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([5, 4], [30, 9])
    out = model.compute_loss(
        tokens,
        token_lengths,
        mel,
        mel_lengths,
        emotion,
        torch.tensor([0, 1]),
        out_size=10,
        generator=torch.Generator().manual_seed(3),
    )
    size = out["target"].shape[-1]
    assert size == 12  # rounded up to a multiple of 4
    windows = [mel[0, :, o : o + size] for o in range(0, 30 - size + 1)]
    assert any(torch.equal(out["target"][0], w) for w in windows)
    assert out["seg_mask"][1, 0].tolist() == [1.0] * 9 + [0.0] * 3
    assert torch.equal(out["target"][1, :, :9], mel[1, :, :9])


def test_out_size_zero_trains_on_the_whole_padded_mel():
    model = tiny_model()
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([5, 4], [26, 17])
    out = model.compute_loss(
        tokens, token_lengths, mel, mel_lengths, emotion, torch.tensor([0, 1]), out_size=0
    )
    assert out["target"].shape[-1] == 28
    assert torch.equal(out["target"][:, :, :26], mel)


def test_more_tokens_than_frames_is_a_user_error():
    model = tiny_model()
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([9], [8])
    with pytest.raises(EmomixError, match="more tokens"):
        model.compute_loss(tokens, token_lengths, mel, mel_lengths, emotion, torch.tensor([0]))


def _grads(model, loss):
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {
        n: p.grad
        for n, p in model.named_parameters()
        if p.grad is not None and p.grad.abs().sum() > 0
    }


def test_diffusion_loss_reaches_the_decoder_and_duration_loss_only_the_duration_predictor():
    model = tiny_model()
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([6, 4], [24, 20])
    out = model.compute_loss(
        tokens,
        token_lengths,
        mel,
        mel_lengths,
        emotion,
        torch.tensor([0, 2]),
        generator=torch.Generator().manual_seed(0),
    )
    diff = _grads(model, out["diff_loss"])
    assert any(n.startswith("decoder.estimator.final_conv") for n in diff)
    assert any(n.startswith("decoder.estimator.emo_mlp") for n in diff)
    assert "emo_proj.weight" in diff and "spk_emb.weight" in diff
    dur = _grads(model, out["dur_loss"])
    assert dur and all(n.startswith("encoder.proj_w") for n in dur)
    style = _grads(model, (out["x0_hat"] ** 2).sum())
    assert any(n.startswith("decoder.estimator.downs") for n in style)


def test_a_tiny_model_overfits_three_utterances():
    model = tiny_model(seed=1, enc_dropout=0.0, n_enc_layers=1, dim_mults=(1, 2))
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([5, 6, 4], [24, 28, 20], seed=7)
    mel = mel + torch.linspace(-2, 2, 16).view(1, 16, 1)  # a learnable spectral shape
    mel = mel * (torch.arange(28) < mel_lengths.view(3, 1)).unsqueeze(1)
    spk = torch.tensor([0, 1, 2])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, foreach=True)

    def losses(seed):
        out = model.compute_loss(
            tokens,
            token_lengths,
            mel,
            mel_lengths,
            emotion,
            spk,
            generator=torch.Generator().manual_seed(seed),
        )
        return out, out["dur_loss"] + out["prior_loss"] + out["diff_loss"]

    model.eval()
    with torch.no_grad():
        before = [float(losses(1000 + i)[1]) for i in range(4)]
    model.train()
    for step in range(30):
        _, total = losses(step)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after_outs = [losses(1000 + i) for i in range(4)]
    after = [float(total) for _, total in after_outs]
    print("overfit: total before", before, "after", after)
    assert sum(after) < 0.5 * sum(before)
    nll_floor = math.log(2 * math.pi) / 2  # the prior NLL of a perfect mean
    assert all(float(out["prior_loss"]) < nll_floor + 1.0 for out, _ in after_outs)


# ---- speakers and conditions ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["none", "table", "wav2vec2"])
def test_every_speaker_encoder_trains_and_synthesises(kind):
    model = tiny_model(speaker_encoder=kind)
    tokens, token_lengths, mel, mel_lengths, emotion = batch_of([5, 4], [20, 16])
    spk_in = speaker_input(model, 2)
    out = model.compute_loss(tokens, token_lengths, mel, mel_lengths, emotion, spk_in)
    assert torch.isfinite(out["diff_loss"])
    model.eval()
    spk = model.speaker_vector(spk_in)
    assert (spk is None) == (kind == "none")
    if spk is not None:
        assert spk.shape == (2, 4)
    enc = model.encode(tokens, token_lengths, emotion, spk)
    score = model.score(
        enc["mu_y"], enc["y_mask"], enc["mu_y"], torch.tensor([0.5, 0.5]), emotion, spk
    )
    assert score.shape == enc["mu_y"].shape


def test_wrong_speaker_inputs_are_user_errors():
    with pytest.raises(EmomixError, match="speaker ids"):
        tiny_model().speaker_vector(torch.randn(2, 10))
    with pytest.raises(EmomixError, match="out of range"):
        tiny_model().speaker_vector(torch.tensor([3]))
    with pytest.raises(EmomixError, match="no speaker"):
        tiny_model(speaker_encoder="none").speaker_vector(torch.tensor([0]))
    with pytest.raises(EmomixError, match=r"\[B, 10\]"):
        tiny_model(speaker_encoder="wav2vec2").speaker_vector(torch.randn(2, 7))
    with pytest.raises(EmomixError, match="emotion embeddings"):
        tiny_model().emotion_vector(torch.randn(1, EMOTION_DIM + 1))


def test_bad_config_values_are_user_errors():
    with pytest.raises(EmomixError, match="speaker_encoder"):
        tiny_model(speaker_encoder="xvector")
    with pytest.raises(EmomixError, match="preset"):
        preset("huge")


# ---- official Grad-TTS compatibility -----------------------------------------------------------
def test_unconditioned_paper_model_has_the_official_grad_tts_names_and_shapes():
    model = EmoMixTTS(TTSConfig(**{**preset("paper"), "emotion_dim": 0, "speaker_encoder": "none"}))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {
        "encoder.emb.weight": (149, 192),
        "encoder.prenet.conv_layers.0.weight": (192, 192, 5),
        "encoder.prenet.norm_layers.2.gamma": (192,),
        "encoder.encoder.attn_layers.5.emb_rel_k": (1, 9, 96),
        "encoder.encoder.ffn_layers.0.conv_1.weight": (768, 192, 3),
        "encoder.proj_m.weight": (80, 192, 1),
        "encoder.proj_w.conv_1.weight": (256, 192, 3),
        "decoder.estimator.mlp.0.weight": (256, 64),
        "decoder.estimator.downs.0.0.block1.block.0.weight": (64, 2, 3, 3),
        "decoder.estimator.downs.0.0.block1.block.1.weight": (64,),
        "decoder.estimator.downs.0.0.mlp.1.weight": (64, 64),
        "decoder.estimator.downs.0.0.res_conv.weight": (64, 2, 1, 1),
        "decoder.estimator.downs.1.2.fn.g": (1,),
        "decoder.estimator.downs.1.2.fn.fn.to_qkv.weight": (384, 128, 1, 1),
        "decoder.estimator.downs.0.3.conv.weight": (64, 64, 3, 3),
        "decoder.estimator.mid_attn.fn.fn.to_out.weight": (256, 128, 1, 1),
        "decoder.estimator.ups.0.0.block1.block.0.weight": (128, 512, 3, 3),
        "decoder.estimator.ups.1.3.conv.weight": (64, 64, 4, 4),
        "decoder.estimator.final_conv.weight": (1, 64, 1, 1),
    }
    for name, shape in expected.items():
        assert shapes.get(name) == shape, name
    assert round(count_parameters(model.encoder) / 1e6, 2) == 7.20  # Grad-TTS reports 7.20 M


def test_load_matching_weights_copies_matching_and_reports_the_rest():
    source = tiny_model(seed=1, emotion_dim=0, speaker_encoder="none")
    target = tiny_model(seed=2)
    report = target.load_matching_weights(source.state_dict())
    assert "encoder.emb.weight" in report["loaded"]
    assert torch.equal(target.encoder.emb.weight, source.encoder.emb.weight)
    skipped = report["skipped"]  # the first conv has 2 input channels there, 4 here
    assert "decoder.estimator.downs.0.0.block1.block.0.weight" in skipped
    assert "emo_proj.weight" in report["missing"]


def test_masked_group_norm_equals_group_norm_without_padding():
    torch.manual_seed(0)
    norm = MaskedGroupNorm(4, 8)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    reference = torch.nn.GroupNorm(4, 8)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(2, 8, 5, 12)
    assert torch.allclose(norm(x, torch.ones(2, 1, 1, 12)), reference(x), atol=1e-5)


def _official_relative_attention(layer: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Glow-TTS's pad-and-reshape formulation, written out independently of ours."""
    b, d, t = x.shape
    h, k, w = layer.n_heads, layer.k_channels, layer.window_size
    q = layer.conv_q(x).view(b, h, k, t).transpose(2, 3)
    key = layer.conv_k(x).view(b, h, k, t).transpose(2, 3)
    v = layer.conv_v(x).view(b, h, k, t).transpose(2, 3)

    def rel_embeddings(emb):
        pad = max(t - (w + 1), 0)
        start = max((w + 1) - t, 0)
        emb = torch.nn.functional.pad(emb, (0, 0, pad, pad)) if pad > 0 else emb
        return emb[:, start : start + 2 * t - 1]

    scores = q @ key.transpose(-2, -1) / math.sqrt(k)
    rel = q @ rel_embeddings(layer.emb_rel_k).unsqueeze(0).transpose(-2, -1)
    rel = torch.nn.functional.pad(rel, (0, 1)).view(b, h, 2 * t * t)
    rel = torch.nn.functional.pad(rel, (0, t - 1)).view(b, h, t + 1, 2 * t - 1)[:, :, :t, t - 1 :]
    p = torch.softmax(scores + rel / math.sqrt(k), dim=-1)
    out = p @ v
    pr = torch.nn.functional.pad(p, (0, t - 1)).view(b, h, t * t + t * (t - 1))
    pr = torch.nn.functional.pad(pr, (t, 0)).view(b, h, t, 2 * t)[:, :, :, 1:]
    out = out + pr @ rel_embeddings(layer.emb_rel_v).unsqueeze(0)
    return layer.conv_o(out.transpose(2, 3).reshape(b, d, t))


@pytest.mark.parametrize("length", [3, 11])
def test_relative_attention_equals_the_glow_tts_formulation(length):
    torch.manual_seed(0)
    layer = MultiHeadAttention(8, 8, n_heads=2, window_size=4).eval()
    x = torch.randn(2, 8, length)
    ours = layer(x, torch.ones(2, 1, length, length))
    assert torch.allclose(ours, _official_relative_attention(layer, x), atol=1e-5)


def test_a_model_without_conditions_runs_as_plain_grad_tts():
    model = tiny_model(emotion_dim=0, speaker_encoder="none").eval()
    tokens, token_lengths, mel, mel_lengths, _ = batch_of([5, 4], [20, 16])
    out = model.compute_loss(tokens, token_lengths, mel, mel_lengths, None, None)
    assert torch.isfinite(out["diff_loss"])
    enc = model.encode(tokens, token_lengths, None, None)
    score = model.score(enc["mu_y"], enc["y_mask"], enc["mu_y"], 0.5, None, None)
    assert score.shape == enc["mu_y"].shape
    assert not any("emo" in name or "spk" in name or "cond" in name for name in model.state_dict())
