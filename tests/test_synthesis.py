"""synthesize() end to end on a tiny random EmoMixTTS + a short Griffin-Lim, and batch files."""

import pytest
import torch

from emomix_cli.audio import AudioConfig
from emomix_cli.errors import EmomixError
from emomix_cli.ser.prototypes import Prototypes
from emomix_cli.synthesis import (
    BATCH_MAP,
    FALLBACK_SAMPLER,
    SENTENCE_PAUSE_S,
    SynthesisOptions,
    emotion_prototypes,
    fill_padding,
    parse_batch_line,
    save_mel_png,
    split_sentences,
    synthesize,
    synthesize_batch_file,
    synthesize_mels,
)
from emomix_cli.text import default_symbol_table, text_to_ids
from emomix_cli.tts import TTSBundle
from emomix_cli.tts.mixing import MixedOutput
from emomix_cli.tts.model import EmoMixTTS, TTSConfig
from emomix_cli.vocoder import load_vocoder

EMOTIONS = ["neutral", "angry", "happy"]


@pytest.fixture(scope="module")
def bundle():
    torch.manual_seed(0)
    symbols = default_symbol_table()
    cfg = TTSConfig(n_vocab=len(symbols), emotion_dim=8, n_speakers=2, spk_emb_dim=4,
                    emo_emb_dim=4, n_enc_channels=16, filter_channels=32, filter_channels_dp=16,
                    n_enc_layers=1, dec_dim=8, dim_mults=(1, 2))
    model = EmoMixTTS(cfg).eval()
    prototypes = Prototypes(EMOTIONS, torch.randn(3, 8), [1, 1, 1],
                            per_speaker={"spk_b": torch.randn(3, 8)})
    return TTSBundle(model, cfg, AudioConfig(), symbols, EMOTIONS, ["spk_a", "spk_b"],
                     prototypes, "table")


@pytest.fixture(scope="module")
def vocoder(bundle):
    return load_vocoder("griffinlim", config={"n_iter": 2}, audio=bundle.audio)


def _say(bundle, vocoder, text="Hello there.", weights=None, **options):
    options = SynthesisOptions(**{"steps": 3, **options})
    return synthesize(bundle, text, weights or {"angry": 0.6, "happy": 0.4}, options, vocoder)


def test_result_is_consistent(bundle, vocoder):
    result = _say(bundle, vocoder, weights={"happy": 0.3, "angry": 0.5})
    assert list(result.weights_used) == ["angry", "happy", "neutral"]
    assert result.weights_used["neutral"] == pytest.approx(0.2)
    assert result.wav.dtype.name == "float32" and result.wav.ndim == 1
    assert result.mel.shape[0] == 80
    assert len(result.wav) == result.mel.shape[1] * bundle.audio.hop_length
    assert result.sample_rate == 22050
    assert result.duration_s == pytest.approx(len(result.wav) / 22050)
    assert result.rtf == pytest.approx(result.timings["total"] / result.duration_s)
    assert result.speaker == "spk_a"  # default: the first speaker


def test_same_seed_same_audio(bundle, vocoder):
    first, again = (_say(bundle, vocoder, seed=3) for _ in range(2))
    other = _say(bundle, vocoder, seed=4)
    assert (first.wav == again.wav).all() and (first.mel == again.mel).all()
    assert first.mel.shape == other.mel.shape and not (first.mel == other.mel).all()


@pytest.mark.parametrize("solver", ["euler-sde", "dpm2m"])
def test_other_solvers_run_and_are_seeded(bundle, vocoder, solver):
    first, again = (_say(bundle, vocoder, seed=1, solver=solver) for _ in range(2))
    assert (first.mel == again.mel).all()


def test_batched_conditions_equal_sequential_in_synthesis(bundle, vocoder):
    batched = _say(bundle, vocoder, weights={"angry": 0.5, "happy": 0.3, "neutral": 0.2})
    sequential = _say(bundle, vocoder, weights={"angry": 0.5, "happy": 0.3, "neutral": 0.2},
                      sequential=True)
    assert abs(batched.mel - sequential.mel).max() < 1e-4


def _prior(bundle):
    model = bundle.model
    tokens = torch.randint(1, len(bundle.symbols) - 1, (1, 9))
    spk = model.speaker_vector(torch.tensor([1]))
    encoded = model.encode(tokens, torch.tensor([9]), bundle.prototypes.vectors[:1], spk)
    return encoded["mu_y"], encoded["y_mask"], spk


def test_mixed_score_of_real_model_is_the_weighted_sum(bundle):
    model = bundle.model
    mu, mask, spk = _prior(bundle)
    x = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
    vectors = dict(zip(EMOTIONS, bundle.prototypes.vectors, strict=True))
    weights = {"angry": 0.5, "happy": 0.3, "neutral": 0.2}
    mixed = MixedOutput(model, mu, mask, {n: (vectors[n], spk[0]) for n in weights}, weights)
    t = torch.tensor([0.37])
    with torch.no_grad():
        expected = sum(w * model.score(x, mask, mu, t, vectors[n][None], spk) for n, w in weights.items())
        got = mixed(x, 0.37)
    assert torch.allclose(got, expected, atol=1e-5)


def test_identical_conditions_change_nothing_on_real_model(bundle):
    model = bundle.model
    mu, mask, spk = _prior(bundle)
    x = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1))
    same = bundle.prototypes.vectors[2]
    mixed = MixedOutput(model, mu, mask, {"angry": (same, spk[0]), "happy": (same, spk[0])},
                       {"angry": 0.6, "happy": 0.4})
    with torch.no_grad():
        single = model.score(x, mask, mu, torch.tensor([0.8]), same[None], spk)
        assert torch.allclose(mixed(x, 0.8), single, atol=1e-5)


def test_long_text_is_split_and_joined_with_a_pause(bundle, vocoder):
    one = _say(bundle, vocoder, text="Hello there.")
    two = _say(bundle, vocoder, text="Hello there. Hello there.")
    assert two.sentences == ["Hello there.", "Hello there."]
    pause = round(SENTENCE_PAUSE_S * 22050 / 256)
    assert two.mel.shape[1] == 2 * one.mel.shape[1] + pause
    start = one.mel.shape[1] * 256
    assert (two.wav[start:start + pause * 256] == 0).all()


def test_split_sentences():
    assert split_sentences("Hi Bob. It is 5 p.m. now! Really? yes.") == [
        "Hi Bob.", "It is 5 p.m. now!", "Really? yes."]
    assert split_sentences("你好。再见！") == ["你好。", "再见！"]
    assert split_sentences("  ") == []


def test_speakers_by_name_index_and_unknown(bundle, vocoder):
    assert _say(bundle, vocoder, speaker="spk_b").speaker == "spk_b"
    assert _say(bundle, vocoder, speaker="1").speaker == "spk_b"
    with pytest.raises(EmomixError, match="unknown speaker 'bob'.*spk_a, spk_b"):
        _say(bundle, vocoder, speaker="bob")
    with pytest.raises(EmomixError, match="speaker_encoder=wav2vec2"):
        _say(bundle, vocoder, speaker_wav="ref.wav")


def test_per_speaker_prototypes_are_used(bundle):
    own = emotion_prototypes(bundle, ["happy"], "spk_b")["happy"]
    assert torch.equal(own, bundle.prototypes.per_speaker["spk_b"][2])
    fallback = emotion_prototypes(bundle, ["happy"], "spk_a")["happy"]
    assert torch.equal(fallback, bundle.prototypes.vectors[2])


def test_user_errors_are_clear(bundle, vocoder):
    with pytest.raises(EmomixError, match="sum to 1.3 > 1"):
        _say(bundle, vocoder, weights={"angry": 0.7, "happy": 0.6})
    with pytest.raises(EmomixError, match="unknown solver 'rk9'.*euler"):
        _say(bundle, vocoder, solver="rk9")
    with pytest.raises(EmomixError, match="unknown emotion 'sad'"):
        _say(bundle, vocoder, weights={"sad": 1.0})
    with pytest.raises(EmomixError, match="nothing to speak"):
        _say(bundle, vocoder, text="   ")


# ---------------------------------------------------------------- batch files
def test_parse_batch_line():
    assert parse_batch_line("angry=0.6, Happy=0.4 | Hello | world") == (
        {"angry": 0.6, "happy": 0.4}, "Hello | world")
    assert parse_batch_line("sad|Bye.") == ({"sad": 1.0}, "Bye.")
    assert parse_batch_line("   ") is None
    assert parse_batch_line("# a comment|x") is None
    for bad in ("angry=0.6 Hello", "angry=x|Hi", "angry=|Hi", "|Hi", "angry=1|  "):
        with pytest.raises(EmomixError):
            parse_batch_line(bad)


def test_batch_file_writes_numbered_wavs(bundle, vocoder, tmp_path):
    batch = tmp_path / "lines.txt"
    batch.write_text("# mixes\nangry=0.6,happy=0.4|Hello there.\n\nhappy=0.5|Good.\n")
    written = synthesize_batch_file(bundle, batch, tmp_path / "out", SynthesisOptions(steps=2),
                                    vocoder, mel_png=True)
    assert [p.name for p in written] == ["001.wav", "002.wav"]
    assert all(p.read_bytes()[:4] == b"RIFF" for p in written)
    assert all(p.with_suffix(".png").read_bytes()[:4] == b"\x89PNG" for p in written)


def test_batch_file_error_names_the_line(bundle, vocoder, tmp_path):
    batch = tmp_path / "lines.txt"
    batch.write_text("angry=1|Hi.\n\nangry=0.9,happy=0.9|Too much.\n")
    with pytest.raises(EmomixError, match=r"line 3: weights sum to 1.8 > 1"):
        synthesize_batch_file(bundle, batch, tmp_path / "out", SynthesisOptions(steps=2), vocoder)
    assert not (tmp_path / "out").exists()  # checked before any audio is made


def test_text_the_voice_cannot_read_is_refused_before_sampling(bundle, vocoder):
    for text, message in (("...", "nothing to speak in '...'"), ("東京", "cannot read '東' .*'京'")):
        with pytest.raises(EmomixError, match=message):
            synthesize_mels(bundle, text, {"happy": 1.0}, SynthesisOptions(steps=2))
    spoken = synthesize_mels(bundle, "Café naïve, señor.", {"happy": 1.0}, SynthesisOptions(steps=2))
    assert spoken.mel.shape[-1] > 10
    allowed = synthesize_mels(bundle, "Hi 東京", {"happy": 1.0},
                              SynthesisOptions(steps=2, allow_foreign_text=True))
    assert allowed.mel.shape[-1] > 10  # the explicit option lets espeak read them


def test_batch_refuses_every_bad_line_at_once_and_writes_nothing(bundle, vocoder, tmp_path):
    batch = tmp_path / "lines.txt"
    batch.write_text("happy=1|Fine.\nneutral|...\nangry=1|東京\nangry=0.9,happy=0.9|Too much.\n")
    with pytest.raises(EmomixError) as caught:
        synthesize_batch_file(bundle, batch, tmp_path / "out", SynthesisOptions(steps=2), vocoder)
    message = str(caught.value)
    assert "3 bad lines, nothing written" in message and "\n" not in message
    assert "line 2: nothing to speak" in message and "line 3: the English voice cannot read '東'" in message
    assert "line 4: weights sum to 1.8 > 1" in message and "line 1" not in message
    assert not (tmp_path / "out").exists()


def test_batch_writes_a_line_to_file_map(bundle, vocoder, tmp_path):
    batch = tmp_path / "lines.txt"
    batch.write_text("# mixes\nangry=0.6,happy=0.4|Hello\tthere.\n\nhappy=0.5|Good.\n")
    written = synthesize_batch_file(bundle, batch, tmp_path / "out", SynthesisOptions(steps=2), vocoder)
    rows = [line.split("\t") for line in (tmp_path / "out" / BATCH_MAP).read_text().splitlines()]
    assert rows == [["line", "wav", "mix", "text"],
                    ["2", "001.wav", "0.60 angry + 0.40 happy", "Hello there."],
                    ["4", "002.wav", "0.50 happy + 0.50 neutral", "Good."]]
    assert [p.name for p in written] == ["001.wav", "002.wav"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_save_mel_png(tmp_path):
    path = save_mel_png(torch.randn(80, 50), tmp_path / "mel.png", "angry 0.6 / happy 0.4")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fill_padding_extends_the_last_frame_and_unmasks():
    mu = torch.arange(2 * 8, dtype=torch.float32).view(1, 2, 8)
    filled, mask = fill_padding(mu, 5)
    assert torch.equal(filled[..., :5], mu[..., :5])
    assert torch.equal(filled[..., 5:], mu[..., 4:5].expand(-1, -1, 3))
    assert torch.equal(mask, torch.ones(1, 1, 8)) and mu[0, 0, 7] == 7  # input untouched
    with pytest.raises(ValueError, match="one utterance"):
        fill_padding(torch.zeros(2, 2, 8), 5)


def test_synthesis_mel_keeps_the_utterance_length(bundle, vocoder):
    ids = torch.tensor([text_to_ids("Hello there.", bundle.symbols)])
    emotion = torch.stack([emotion_prototypes(bundle, {"angry": 1.0}, None)["angry"]])
    spk = bundle.model.speaker_vector(torch.tensor([0]))
    with torch.inference_mode():
        frames = int(bundle.model.encode(ids, torch.tensor([ids.shape[1]]), emotion, spk)["y_lengths"][0])
    assert _say(bundle, vocoder, weights={"angry": 1.0}).mel.shape[1] == frames


def test_options_left_out_take_the_models_measured_defaults(bundle, vocoder):
    from dataclasses import replace

    tuned = replace(bundle, synthesis_defaults={"steps": 2, "temperature": 1.3})
    implicit = synthesize(tuned, "Hello.", {"angry": 1.0}, vocoder=vocoder)
    explicit = synthesize(bundle, "Hello.", {"angry": 1.0},
                          SynthesisOptions(steps=2, temperature=1.3), vocoder)
    fallback = synthesize(bundle, "Hello.", {"angry": 1.0}, vocoder=vocoder)
    assert (implicit.mel == explicit.mel).all()
    assert implicit.options == explicit.options
    assert implicit.options.sampler() == {**FALLBACK_SAMPLER, "steps": 2, "temperature": 1.3}
    assert fallback.options.sampler() == FALLBACK_SAMPLER
    assert not (fallback.mel == explicit.mel).all()


def test_fallback_keys_are_the_keys_a_model_can_store():
    from emomix_cli.tts import SYNTHESIS_DEFAULT_KEYS

    assert set(FALLBACK_SAMPLER) == set(SYNTHESIS_DEFAULT_KEYS)


def test_guidance_needs_a_model_with_a_null_emotion(bundle, vocoder):
    assert _say(bundle, vocoder, guidance=1.0).options.guidance == 1.0
    with pytest.raises(EmomixError, match="condition dropout.*--guidance 1"):
        _say(bundle, vocoder, guidance=2.0)
    with pytest.raises(EmomixError, match="guidance must be a finite number"):
        _say(bundle, vocoder, guidance=float("nan"))


def test_guidance_from_neutral_needs_no_null_emotion_and_keeps_the_timing(bundle, vocoder):
    plain = _say(bundle, vocoder, seed=3)
    guided = _say(bundle, vocoder, seed=3, guidance=2.0, guidance_reference="neutral", guide_durations=False)
    assert guided.options.guidance_reference == "neutral"
    assert guided.mel.shape == plain.mel.shape  # Neutral's prior is laid on the mix's durations
    assert not (guided.mel == plain.mel).all()
    # w = 1 never evaluates the reference: the same audio whatever it is
    assert (_say(bundle, vocoder, seed=3, guidance_reference="neutral").mel == plain.mel).all()
    with pytest.raises(EmomixError, match="unknown guidance reference 'zero'; use null, neutral"):
        _say(bundle, vocoder, guidance=2.0, guidance_reference="zero")


def test_encode_lays_a_prior_on_given_durations(bundle):
    model = bundle.model
    tokens = torch.tensor([[3, 5, 7, 9]])
    lengths = torch.tensor([4])
    protos = emotion_prototypes(bundle, ["angry", "neutral"], None)
    spk = model.speaker_vector(torch.tensor([0]))
    with torch.no_grad():
        angry = model.encode(tokens, lengths, protos["angry"][None], spk)
        durations = torch.tensor([[1.0, 4.0, 2.0, 3.0]])
        neutral = model.encode(tokens, lengths, protos["neutral"][None], spk, durations=durations)
    assert int(neutral["y_lengths"][0]) == 10
    assert neutral["durations"].tolist() == durations.tolist()
    # frame j takes the μ_x of the token whose span holds it
    spans = [0] * 1 + [1] * 4 + [2] * 2 + [3] * 3
    assert torch.allclose(neutral["mu_y"][0, :, :10], neutral["mu_x"][0][:, spans])
    assert not torch.allclose(neutral["mu_x"], angry["mu_x"])


@pytest.fixture(scope="module")
def guided_bundle(bundle):
    from dataclasses import replace

    torch.manual_seed(1)
    cfg = replace(bundle.config, cond_dropout=0.2)
    model = EmoMixTTS(cfg).eval()
    with torch.no_grad():
        model.emo_null.normal_()  # a trained null vector is not zero
    return replace(bundle, model=model, config=cfg)


def test_guidance_1_is_plain_eq8_and_other_w_extrapolate(guided_bundle):
    """s = s_∅ + w Σγ_i (s_i − s_∅), checked against separate model calls."""
    model = guided_bundle.model
    x, mu = torch.randn(1, 80, 8), torch.randn(1, 80, 8)
    mask = torch.ones(1, 1, 8)
    protos = emotion_prototypes(guided_bundle, ["angry", "happy"], None)
    spk = model.speaker_vector(torch.tensor([0]))[0]
    conditions = {n: (v, spk) for n, v in protos.items()}
    weights = {"angry": 0.7, "happy": 0.3}
    t = torch.full((1,), 0.5)
    with torch.no_grad():
        per = {n: model.score(x, mask, mu, t, v[None], spk[None]) for n, v in protos.items()}
        null = model.score(x, mask, mu, t, protos["angry"][None], spk[None], torch.tensor([True]))
        plain = 0.7 * per["angry"] + 0.3 * per["happy"]
        for w in (1.0, 2.5):
            mixed = MixedOutput(model, mu, mask, conditions, weights, guidance=w)
            expected = null + w * (0.7 * (per["angry"] - null) + 0.3 * (per["happy"] - null))
            assert torch.allclose(mixed(x, 0.5), expected, atol=1e-5)
            assert mixed.n_forward == 1  # the null row rides in the same batched call
        assert torch.allclose(MixedOutput(model, mu, mask, conditions, weights)(x, 0.5), plain, atol=1e-5)
        assert not torch.allclose(null, per["angry"], atol=1e-3)  # the null row is really unconditional


def test_guidance_runs_with_every_solver_and_the_window(guided_bundle, vocoder):
    base = _say(guided_bundle, vocoder, seed=2, guidance=1.0)
    for solver in ("euler", "heun", "euler-sde", "dpm2m"):
        guided = _say(guided_bundle, vocoder, seed=2, guidance=3.0, solver=solver, k_max=0.8, k_min=0.2)
        assert guided.options.guidance == 3.0 and guided.mel.shape == base.mel.shape
        assert not (guided.mel == base.mel).all()


def test_encoder_condition_neutral_takes_neutral_for_the_text_encoder(bundle):
    options = SynthesisOptions(steps=2, encoder_condition="neutral", seed=5)
    as_neutral = synthesize_mels(bundle, "Hello there.", {"angry": 1.0}, options)
    plain_neutral = synthesize_mels(bundle, "Hello there.", {"neutral": 1.0},
                                    SynthesisOptions(steps=2, encoder_condition="base", seed=5))
    weighted = synthesize_mels(bundle, "Hello there.", {"angry": 1.0},
                               SynthesisOptions(steps=2, encoder_condition="weighted", seed=5))
    # the durations (mel length) come from the encoder: neutral's, not angry's
    assert as_neutral.mel.shape == plain_neutral.mel.shape
    assert as_neutral.options.encoder_condition == "neutral"
    assert weighted.mel.shape != as_neutral.mel.shape or not (weighted.mel == as_neutral.mel).all()
    with pytest.raises(EmomixError, match="unknown encoder condition 'fancy'"):
        synthesize_mels(bundle, "Hi.", {"angry": 1.0}, SynthesisOptions(encoder_condition="fancy"))


def test_guidance_from_neutral_moves_the_durations_by_the_same_formula(bundle, vocoder):
    """log w = log w_N + w (log w_mix − log w_N): the mel has the frames those durations give."""
    from emomix_cli.synthesis import plan_utterance, text_language
    from emomix_cli.tts.mixing import guided_durations, token_conditions

    text, weights = "Hello there.", {"angry": 1.0}
    options = SynthesisOptions(steps=2, seed=3, guidance_reference="neutral").resolve(bundle)
    sentence = plan_utterance(text, weights, bundle.emotions, bundle.symbols,
                              text_language(bundle, options), False).sentences[0]
    protos = emotion_prototypes(bundle, ["angry", "neutral"], None)
    spk = bundle.model.speaker_vector(torch.tensor([0]))
    tokens, lengths = torch.tensor([sentence.ids]), torch.tensor([len(sentence.ids)])
    with torch.no_grad():
        mix = bundle.model.encode(tokens, lengths, token_conditions(protos, sentence.mixes, "weighted"), spk)
        neutral = bundle.model.encode(tokens, lengths, protos["neutral"][None], spk)
    plain = _say(bundle, vocoder, text, weights, seed=3, steps=2)
    for w in (0.5, 2.0, 3.0):
        expected = int(guided_durations(neutral["logw"], mix["logw"], w, mix["x_mask"]).sum())
        got = _say(bundle, vocoder, text, weights, seed=3, steps=2, guidance=w, guidance_reference="neutral",
                   guide_durations=True)
        assert got.mel.shape[-1] == expected
    assert int(mix["durations"].sum()) == plain.mel.shape[-1]
    # the same at w = 1, whatever the flag
    same = _say(bundle, vocoder, text, weights, seed=3, steps=2, guidance_reference="neutral", guide_durations=True)
    assert (same.mel == plain.mel).all()


def test_guidance_interval_from_the_options_or_the_models_defaults(guided_bundle, vocoder):
    from dataclasses import replace

    plain = _say(guided_bundle, vocoder, guidance=1.0)
    everywhere = _say(guided_bundle, vocoder, guidance=2.0)
    # score2d steps sit at noise levels 1, 2/3, 1/3: an interval of 0.5 guides only the last
    late = _say(guided_bundle, vocoder, guidance=2.0, guidance_interval=0.5)
    never = _say(guided_bundle, vocoder, guidance=2.0, guidance_interval=0.0)
    assert (never.mel == plain.mel).all()
    assert not (late.mel == plain.mel).all() and not (late.mel == everywhere.mel).all()
    stored = _say(replace(guided_bundle, synthesis_defaults={"guidance_interval": 0.5}), vocoder, guidance=2.0)
    assert stored.options.guidance_interval == 0.5 and (stored.mel == late.mel).all()
    with pytest.raises(EmomixError, match="guidance interval must be a noise level"):
        _say(guided_bundle, vocoder, guidance=2.0, guidance_interval=-0.1)
