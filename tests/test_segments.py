"""Emotion that moves within one utterance: per-frame weights (pure functions against hand-worked
values), the mix on both decoder families, the segments JSON, batch lines and the CLI."""

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from emomix_cli.audio import AudioConfig
from emomix_cli.cli import app
from emomix_cli.errors import EmomixError
from emomix_cli.segments import plan_utterance
from emomix_cli.ser.prototypes import Prototypes
from emomix_cli.synthesis import (
    SynthesisOptions,
    parse_batch_line,
    synthesize,
    synthesize_batch_file,
    synthesize_mels,
)
from emomix_cli.text import default_symbol_table
from emomix_cli.tts import TTSBundle
from emomix_cli.tts.mixing import (
    FrameMix,
    MixedOutput,
    Reference,
    cross_fade,
    cross_fade_half_width,
    plan_schedule,
    ramp_mixes,
    token_conditions,
    token_frames,
)
from emomix_cli.tts.model import EmoMixTTS, TTSConfig
from emomix_cli.vocoder import load_vocoder
from tests.test_mixing import ToyScoreModel, _inputs, _single

EMOTIONS = ["neutral", "angry", "happy"]


# ---------------------------------------------------------------- per-frame weights (pure)
def test_token_frames_follow_the_durations_and_padding_takes_the_last_token():
    assert token_frames(torch.tensor([2.0, 3.0, 1.0]), 8).tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
    assert token_frames(torch.tensor([2.0, 3.0]), 4).tolist() == [0, 0, 1, 1]


def test_cross_fade_turns_a_step_into_a_linear_ramp_centred_on_the_boundary():
    step = torch.tensor([[1.0] * 6 + [0.0] * 6, [0.0] * 6 + [1.0] * 6], dtype=torch.float64)
    faded = cross_fade(step, half_width=2)  # the change spreads over 2h + 1 = 5 frames
    # a + (b − a)(n − s + h + 1)/(2h + 1) with s = 6, h = 2: 0.8, 0.6, 0.4, 0.2 at n = 4..7
    expected = [1.0, 1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0, 0.0]
    assert torch.allclose(faded[0], torch.tensor(expected, dtype=torch.float64))
    assert torch.allclose(faded.sum(0), torch.ones(12, dtype=torch.float64))
    assert torch.equal(cross_fade(step, 0), step)  # h = 0: a hard switch


def test_cross_fade_keeps_constant_weights_exact():
    constant = torch.tensor([[0.6] * 9, [0.4] * 9], dtype=torch.float64)
    assert torch.equal(cross_fade(constant, 3), constant)  # not 7 · 0.6 / 7, which rounds


def test_transition_in_ms_becomes_a_half_width_in_frames():
    frames_per_second = 22050 / 256  # 86.1
    assert cross_fade_half_width(80, frames_per_second) == 3  # 2·3 + 1 = 7 frames = 81 ms
    assert cross_fade_half_width(0, frames_per_second) == 0
    assert cross_fade_half_width(200, frames_per_second) == 9


def test_a_ramp_interpolates_linearly_across_its_tokens():
    start, end = {"neutral": 1.0}, {"angry": 0.8, "neutral": 0.2}
    mixes = ramp_mixes(start, end, 5)
    assert mixes[0] == start and mixes[-1] == pytest.approx(end)
    assert mixes[2] == pytest.approx({"neutral": 0.6, "angry": 0.4})  # halfway: ½·1 + ½·0.2
    assert mixes[1] == pytest.approx({"neutral": 0.8, "angry": 0.2})
    assert all(sum(m.values()) == pytest.approx(1.0) for m in mixes)


def test_frame_mix_lays_each_tokens_mix_on_its_frames_under_the_window():
    tokens = [{"sad": 1.0}] * 2 + [{"angry": 0.7, "happy": 0.3}] * 2
    frame_mix = FrameMix(tokens, torch.tensor([2.0, 2.0, 3.0, 3.0]), 12)
    both = frame_mix.active(1.0, 0.0, 0.5)
    assert both["sad"].tolist() == [1.0] * 4 + [0.0] * 8
    assert torch.allclose(both["angry"], torch.tensor([0.0] * 4 + [0.7] * 8, dtype=torch.float64))
    assert torch.allclose(both["happy"], torch.tensor([0.0] * 4 + [0.3] * 8, dtype=torch.float64))
    # above k_max each token's base alone; below k_min its mixed-in emotions (sad has none)
    early = frame_mix.active(0.6, 0.2, 0.9)
    assert sorted(early) == ["angry", "sad"] and early["angry"].tolist() == [0.0] * 4 + [1.0] * 8
    late = frame_mix.active(0.6, 0.2, 0.1)
    assert sorted(late) == ["happy", "sad"] and late["happy"].tolist() == [0.0] * 4 + [1.0] * 8


def test_constant_frame_weights_are_exactly_the_global_mix():
    mix = {"angry": 0.6, "happy": 0.3, "neutral": 0.1}
    frame_mix = FrameMix([mix] * 5, torch.tensor([1.0, 2.0, 3.0, 2.0, 1.0]), 12, half_width=3)
    for level in (0.9, 0.5, 0.1):
        assert frame_mix.active(0.8, 0.2, level) == plan_schedule(mix, 0.8, 0.2, level)
        assert list(frame_mix.active(0.8, 0.2, level)) == list(plan_schedule(mix, 0.8, 0.2, level))


def _two_segment_mix(frames=12):
    tokens = [{"angry": 1.0}] * 3 + [{"happy": 0.5, "sad": 0.5}] * 3
    return FrameMix(tokens, torch.tensor([2.0] * 6), frames, half_width=1)


def test_per_frame_mix_is_each_frames_weighted_sum_in_one_call():
    model = ToyScoreModel()
    x, mu, mask, vectors, spk = _inputs()
    frame_mix = _two_segment_mix()
    conditions = {n: (vectors[n], spk) for n in ("angry", "happy", "sad")}
    mixed = MixedOutput(model, mu, mask, conditions, frame_mix)
    single = {n: _single(model, x, mu, mask, vectors[n], spk, 0.4) for n in conditions}
    gamma = frame_mix.active(1.0, 0.0, 0.4)
    expected = sum(gamma[n] * single[n] for n in conditions)  # γ_i(n) broadcast on frames
    model.batches.clear()
    out = mixed(x, 0.4)
    assert model.batches == [(3, 0)]  # one call, one row per distinct emotion
    assert torch.allclose(out, expected, atol=1e-12)
    assert torch.allclose(out[..., 0], single["angry"][..., 0], atol=1e-12)  # pure segment frames
    assert torch.allclose(out[..., 11], (single["happy"] + single["sad"])[..., 11] / 2, atol=1e-12)
    sequential = MixedOutput(model, mu, mask, conditions, frame_mix, sequential=True)
    assert torch.allclose(sequential(x, 0.4), expected, atol=1e-12)


def test_guidance_holds_frame_by_frame():
    model = ToyScoreModel()
    x, mu, mask, vectors, spk = _inputs()
    frame_mix = _two_segment_mix()
    conditions = {n: (vectors[n], spk) for n in ("angry", "happy", "sad", "neutral")}
    reference = Reference("neutral", mu)
    out = MixedOutput(model, mu, mask, conditions, frame_mix, guidance=2.0, reference=reference)(x, 0.4)
    single = {n: _single(model, x, mu, mask, vectors[n], spk, 0.4) for n in conditions}
    gamma = frame_mix.active(1.0, 0.0, 0.4)
    ref = single["neutral"]
    expected = ref + 2.0 * sum(gamma[n] * (single[n] - ref) for n in gamma)
    assert torch.allclose(out, expected, atol=1e-12)


def test_token_conditions_give_each_token_its_own_and_one_vector_when_constant():
    prototypes = {"angry": torch.tensor([1.0, 0.0]), "happy": torch.tensor([0.0, 2.0])}
    mixes = [{"angry": 1.0}, {"angry": 0.5, "happy": 0.5}, {"happy": 1.0}]
    rows = token_conditions(prototypes, mixes)
    assert rows.shape == (1, 3, 2) and torch.allclose(rows[0, 1], torch.tensor([0.5, 1.0]))
    assert token_conditions(prototypes, mixes, "base")[0, 1].tolist() == [1.0, 0.0]  # tie: first
    assert token_conditions(prototypes, [mixes[1]] * 4).shape == (1, 2)


# ---------------------------------------------------------------- on real models, both families
def _bundle(family: str) -> TTSBundle:
    torch.manual_seed(0)
    symbols = default_symbol_table()
    sizes = dict(n_vocab=len(symbols), emotion_dim=8, n_speakers=2, spk_emb_dim=4, emo_emb_dim=4,
                 n_enc_channels=16, filter_channels=32, filter_channels_dp=16, n_enc_layers=1)
    if family == "flow1d":
        sizes.update(decoder="flow1d", flow={"channels": (16, 16), "attention_head_dim": 8,
                                             "num_heads": 2, "num_mid_blocks": 1})
    else:
        sizes.update(dec_dim=8, dim_mults=(1, 2))
    cfg = TTSConfig(**sizes)
    model = EmoMixTTS(cfg).eval()
    prototypes = Prototypes(EMOTIONS, torch.randn(3, 8), [1, 1, 1])
    return TTSBundle(model, cfg, AudioConfig(), symbols, EMOTIONS, ["spk_a", "spk_b"], prototypes,
                     "table")


@pytest.fixture(scope="module", params=["score2d", "flow1d"])
def bundle(request):
    return _bundle(request.param)


@pytest.fixture(scope="module")
def vocoder():
    return load_vocoder("griffinlim", config={"n_iter": 2}, audio=AudioConfig())


OPTIONS = SynthesisOptions(steps=3, seed=7, solver="euler")


def test_constant_tags_give_the_same_bytes_as_the_global_mix(bundle):
    mix = {"angry": 0.6, "happy": 0.4}
    plain = synthesize_mels(bundle, "Hello there. Good night.", mix, OPTIONS).mel
    tagged = synthesize_mels(bundle, "[angry=0.6,happy=0.4] Hello there. Good night.", {}, OPTIONS).mel
    repeated = synthesize_mels(bundle, "[angry=0.6,happy=0.4] Hello [angry=0.6,happy=0.4] there. "
                               "Good night.", {}, OPTIONS)
    assert np.array_equal(plain, tagged)
    assert repeated.sentences == ["Hello there.", "Good night."]
    # two pieces are phonemized apart, so the ids may differ; the mix itself stays the global one
    assert repeated.weights_used == pytest.approx(mix)


def test_constant_frame_mix_samples_the_same_bytes_as_the_dict(bundle):
    model = bundle.model
    prototypes = {n: bundle.prototypes.vector(n, None) for n in ("angry", "happy")}
    spk = model.speaker_vector(torch.tensor([0]))
    conditions = {n: (v, spk[0]) for n, v in prototypes.items()}
    mu, mask = torch.randn(1, 80, 16), torch.ones(1, 1, 16)
    mix = {"angry": 0.6, "happy": 0.4}
    frame_mix = FrameMix([mix] * 4, torch.tensor([4.0] * 4), 16, half_width=3)
    with torch.inference_mode():
        mels = [model.sample(MixedOutput(model, mu, mask, conditions, weights), mu, mask, "euler", 3,
                             1.5, torch.Generator().manual_seed(1)) for weights in (mix, frame_mix)]
    assert torch.equal(mels[0], mels[1])


def _rows_per_call(model, monkeypatch):
    rows = []
    call = model.network_output

    def counting(x, *args, **kwargs):
        rows.append(x.shape[0])
        return call(x, *args, **kwargs)

    monkeypatch.setattr(model, "network_output", counting)
    return rows


def test_two_segments_cost_what_a_global_mix_of_the_same_emotions_costs(bundle, monkeypatch):
    rows = _rows_per_call(bundle.model, monkeypatch)
    tagged = synthesize_mels(bundle, "[angry] Hello there [happy] my friend.", {}, OPTIONS)
    tagged_rows = list(rows)
    rows.clear()
    synthesize_mels(bundle, "Hello there my friend.", {"angry": 0.5, "happy": 0.5}, OPTIONS)
    assert tagged_rows == rows == [2] * 3  # 3 steps, one call each, one row per emotion
    assert [s.text for s in tagged.segments] == ["Hello there", "my friend."]


def test_the_window_and_guidance_act_on_a_tagged_text(bundle):
    text = "[angry] Hello there [happy=0.5] my friend."
    plain = synthesize_mels(bundle, text, {}, OPTIONS).mel
    for options in (replace(OPTIONS, k_max=0.7, k_min=0.3),
                    replace(OPTIONS, guidance=2.0, guidance_reference="neutral"),
                    replace(OPTIONS, encoder_condition="base", transition_ms=0)):
        other = synthesize_mels(bundle, text, {}, options).mel
        assert np.isfinite(other).all() and not np.array_equal(other, plain)


def test_weighted_encoder_condition_follows_each_token(bundle):
    model = bundle.model
    utterance = plan_utterance("[angry] Hello [happy] there.", {}, EMOTIONS, bundle.symbols)
    (sentence,) = utterance.sentences
    prototypes = {n: bundle.prototypes.vector(n, None) for n in ("angry", "happy")}
    per_token = token_conditions(prototypes, sentence.mixes)
    tokens = torch.tensor([sentence.ids])
    assert per_token.shape == (1, len(sentence.ids), 8)
    spk = model.speaker_vector(torch.tensor([0]))
    with torch.inference_mode():
        mixed = model.encode(tokens, torch.tensor([len(sentence.ids)]), per_token, spk)
        same = model.encode(tokens, torch.tensor([len(sentence.ids)]),
                            prototypes["angry"].expand(1, len(sentence.ids), -1), spk)
        angry = model.encode(tokens, torch.tensor([len(sentence.ids)]), prototypes["angry"][None], spk)
    assert torch.allclose(same["mu_x"], angry["mu_x"], atol=1e-6)  # rows alike = one vector
    assert not torch.allclose(mixed["mu_x"], angry["mu_x"], atol=1e-4)


def test_per_token_conditions_enter_an_added_encoder_emotion_too():
    """Matcha-TTS's encoder adds the emotion (enc_emotion "add"): one row per token works there."""
    torch.manual_seed(0)
    model = EmoMixTTS(TTSConfig(n_vocab=12, emotion_dim=8, n_speakers=2, spk_emb_dim=4,
                                emo_emb_dim=4, n_enc_channels=16, filter_channels=32,
                                filter_channels_dp=16, n_enc_layers=1, dec_dim=8, dim_mults=(1, 2),
                                enc_emotion="add")).eval()
    with torch.no_grad():
        model.encoder.emo_in.weight.normal_()  # zero at init: make the emotion matter
    tokens, lengths = torch.tensor([[1, 2, 3, 4, 5]]), torch.tensor([5])
    spk = model.speaker_vector(torch.tensor([1]))
    a, b = torch.randn(8), torch.randn(8)
    with torch.no_grad():
        one = model.encode(tokens, lengths, a[None], spk)
        rows = model.encode(tokens, lengths, a.expand(1, 5, 8), spk)
        moving = model.encode(tokens, lengths, torch.stack([a, a, b, b, b])[None], spk)
    assert torch.allclose(one["mu_x"], rows["mu_x"], atol=1e-6)
    assert not torch.allclose(one["mu_x"], moving["mu_x"], atol=1e-4)


def test_segments_tile_the_wav_and_a_ramp_reports_both_ends(bundle, vocoder):
    text = "Hello [angry] there, my friend. [neutral>happy=0.8] How are you today?"
    result = synthesize(bundle, text, {}, replace(OPTIONS, transition_ms=40), vocoder)
    segments = result.segments
    assert [s["text"] for s in segments] == ["Hello", "there, my friend.", "How are you today?"]
    assert segments[0]["start"] == 0.0
    assert segments[-1]["end"] == pytest.approx(len(result.wav) / result.sample_rate, abs=1e-6)
    assert all(a["end"] == b["start"] for a, b in zip(segments, segments[1:], strict=False))
    assert all(a["start"] < a["end"] for a in segments)
    # the third segment starts with the second sentence, after the first and its pause
    first_frames = synthesize_mels(bundle, text, {}, OPTIONS).sentence_mels[0].shape[-1]
    pause = round(0.25 * 22050 / 256)
    assert segments[2]["start"] == pytest.approx((first_frames + pause) * 256 / 22050, abs=1e-5)
    assert segments[2]["weights"] == {"neutral": 1.0}
    assert segments[2]["weights_end"] == pytest.approx({"happy": 0.8, "neutral": 0.2})
    assert "weights_end" not in segments[1]


def test_a_sentence_with_two_segments_labels_every_token():
    utterance = plan_utterance("Hello [angry] there.", {"happy": 1}, EMOTIONS, default_symbol_table())
    (sentence,) = utterance.sentences
    labels, ids = sentence.labels, sentence.ids
    assert len(labels) == len(ids) and labels == sorted(labels) and set(labels) == {0, 1}
    assert ids[::2] == [default_symbol_table().blank_id] * (len(ids) // 2 + 1)  # still interspersed
    boundary = labels.index(1)
    assert default_symbol_table().symbols[ids[boundary + 1]] == " "  # the joining space opens it
    assert sentence.mixes[0] == {"happy": 1.0} and sentence.mixes[-1] == {"angry": 1.0}


# ---------------------------------------------------------------- batch lines
def test_batch_lines_may_hold_tags():
    assert parse_batch_line("[sad] Bye. [angry] Now!") == ({}, "[sad] Bye. [angry] Now!")
    assert parse_batch_line("|[sad] Bye.") == ({}, "[sad] Bye.")
    assert parse_batch_line("happy=0.5|Well [sad] bye.") == ({"happy": 0.5}, "Well [sad] bye.")
    with pytest.raises(EmomixError, match="no emotion weights"):
        parse_batch_line("|Bye.")


def test_batch_file_refuses_a_bad_tag_by_line_and_writes_segments(tmp_path, vocoder):
    bundle = _bundle("flow1d")
    lines = tmp_path / "lines.txt"
    lines.write_text("[angry] Hi [happy] there.\n[angy] Oops.\n")
    with pytest.raises(EmomixError, match=r"line 2: tag '\[angy\]' at character 1"):
        synthesize_batch_file(bundle, lines, tmp_path / "out", OPTIONS, vocoder)
    assert not (tmp_path / "out").exists()
    lines.write_text("[angry] Hi [happy] there.\nhappy=1|Plain.\n")
    written = synthesize_batch_file(bundle, lines, tmp_path / "out", OPTIONS, vocoder,
                                    segments_json=True)
    segments = json.loads(written[0].with_suffix(".json").read_text())["segments"]
    assert [s["weights"] for s in segments] == [{"angry": 1.0}, {"happy": 1.0}]
    assert len(json.loads(written[1].with_suffix(".json").read_text())["segments"]) == 1


# ---------------------------------------------------------------- the command line
runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_mix_with_tags_writes_the_wav_and_segments_that_tile_it(tmp_path):
    out, seg = tmp_path / "x.wav", tmp_path / "f.json"
    result = _invoke("mix", "[sad] A fine day. [angry] Be quiet!", "--steps", "2", "--vocoder",
                     "griffinlim", "--gl-iters", "2", "--segments-json", seg, "-o", out)
    assert result.exit_code == 0, result.output
    audio, rate = sf.read(out)
    segments = json.loads(seg.read_text())["segments"]
    assert [s["weights"] for s in segments] == [{"sad": 1.0}, {"angry": 1.0}]
    assert segments[0]["start"] == 0 and segments[-1]["end"] == pytest.approx(len(audio) / rate, abs=1e-5)
    assert "1.00 sad | 1.00 angry" in " ".join(result.output.split())


@pytest.mark.parametrize("text, args, fragment", [
    ("[angy] Hello.", [], "tag '[angy]' at character 1: unknown emotion 'angy'"),
    ("[sad] Hello [angry]", [], "tag '[angry]' at character 13 has no words after it"),
    ("[sad Hello.", [], "tag '[sad Hello.' at character 1 is not closed"),
    ("[sad] Hello.", ["--happy", "1"], "happy=1 is for words before the first tag"),
    ("Hello.", ["--happy", "1", "--transition-ms", "40"], "--transition-ms"),
])
def test_bad_tags_exit_non_zero_in_one_line_and_write_nothing(tmp_path, text, args, fragment):
    out, seg = tmp_path / "keep.wav", tmp_path / "seg.json"
    out.write_bytes(b"precious")
    result = _invoke("mix", text, *args, "--segments-json", seg, "-o", out)
    said = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in said and said.startswith("error:")
    assert fragment in said, said
    assert out.read_bytes() == b"precious" and not seg.exists()
