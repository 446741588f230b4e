"""TTS training: style loss, caches, warm start, speaker encoders, train/resume/export end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from emomix_cli.audio import AudioConfig
from emomix_cli.checkpoint import load_checkpoint, save_checkpoint
from emomix_cli.datasets import FeatureStore
from emomix_cli.errors import EmomixError
from emomix_cli.ser.model import SER, SERConfig
from emomix_cli.ser.train import ser_payload
from emomix_cli.tts import export_for_shipping, load_tts
from emomix_cli.tts.model import EmoMixTTS, TTSConfig, preset
from emomix_cli.tts.pretrained import load_init_weights
from emomix_cli.tts.speaker import Wav2Vec2SpeakerEncoder, store_speaker_embeddings
from emomix_cli.tts.train import (
    gram,
    sample_prototypes,
    sample_vocoder,
    ser_embeddings,
    style_loss,
    train_tts,
    write_samples,
)

TINY_MODEL = {
    "n_enc_channels": 32, "filter_channels": 64, "filter_channels_dp": 32, "n_heads": 2,
    "n_enc_layers": 1, "spk_emb_dim": 8, "emo_emb_dim": 8, "dec_dim": 8, "dim_mults": [1, 2],
}


def tiny_ser(emotions=("angry", "neutral", "sad"), seed: int = 0) -> SER:
    torch.manual_seed(seed)
    cfg = SERConfig.compact(emotions=list(emotions), conv1_channels=4, conv_channels=8, n_conv=2,
                            linear_dim=16, lstm_hidden=8, embed_dim=8)
    return SER(cfg).eval()


@pytest.fixture
def ser_path(tmp_path):
    return save_checkpoint(tmp_path / "ser.pt", "ser", ser_payload(tiny_ser(), AudioConfig()))


def write_config(tmp_path, store, ser, name="run", steps=4, **extra) -> str:
    config = {
        "features": str(store), "ser": str(ser), "preset": "small", "model": TINY_MODEL,
        "out_size": 32, "n_val_steps": 2, "run_dir": str(tmp_path / name),
        "train": {"steps": steps, "batch_size": 4, "lr": 1e-3, "ema_decay": 0.9, "log_every": 1,
                  "ckpt_every": 2, "val_every": 0, "device": "cpu", "seed": 7},
    }
    config.update(extra)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def tiny_tts(speaker_encoder="table", emotion_dim=8, **overrides) -> EmoMixTTS:
    values = {**preset("small"), **TINY_MODEL, "n_vocab": 40, "n_speakers": 2,
              "emotion_dim": emotion_dim, "speaker_encoder": speaker_encoder, **overrides}
    return EmoMixTTS(TTSConfig(**values))


# ---------------------------------------------------------------- style loss
def test_gram_is_normalised_by_valid_positions_and_ignores_padding():
    features = torch.ones(1, 2, 3, 8)
    features[..., 4:] = 100.0  # padding: must not count
    mask = torch.zeros(1, 1, 8)
    mask[..., :4] = 1.0
    expected = torch.ones(1, 2, 2)  # Σ 1·1 over 3×4 valid positions / 12
    assert torch.allclose(gram(features, mask), expected)
    assert torch.allclose(gram(features[..., :4]), expected)


def test_gram_resizes_a_frame_mask_to_the_feature_map_length():
    features = torch.randn(2, 3, 4, 5)
    mask = torch.ones(2, 1, 10)  # mel frame rate; the map is pooled 2x in time
    assert torch.allclose(gram(features, mask), gram(features))


def test_style_loss_is_zero_for_the_reference_and_positive_otherwise():
    ser = tiny_ser()
    target = torch.randn(2, 80, 16)
    mask = torch.ones(2, 1, 16)
    with torch.no_grad():
        assert float(style_loss(ser, target.clone(), target, mask)) == pytest.approx(0.0, abs=1e-8)
        assert float(style_loss(ser, target + torch.randn_like(target), target, mask)) > 0


def test_style_loss_gradient_reaches_the_decoder_but_not_the_frozen_ser():
    ser = tiny_ser().requires_grad_(False)
    model = tiny_tts()
    tokens = torch.randint(1, 40, (2, 6))
    mel = torch.randn(2, 80, 24)
    out = model.compute_loss(tokens, torch.tensor([6, 5]), mel, torch.tensor([24, 20]),
                             torch.randn(2, 8), torch.tensor([0, 1]), out_size=16)
    style_loss(ser, out["x0_hat"], out["target"], out["seg_mask"]).backward()
    decoder_grads = [p.grad for p in model.decoder.parameters() if p.grad is not None]
    assert decoder_grads and any(float(g.abs().sum()) > 0 for g in decoder_grads)
    assert all(p.grad is None for p in ser.parameters())


def test_style_loss_weight_zero_items_do_not_count():
    ser = tiny_ser()
    target = torch.randn(2, 80, 16)
    mask = torch.ones(2, 1, 16)
    fake = target.clone()
    fake[1] += 5.0  # only item 1 differs
    assert float(style_loss(ser, fake, target, mask, weight=torch.tensor([1.0, 0.0])).detach()) == 0.0
    assert float(style_loss(ser, fake, target, mask, weight=torch.tensor([0.0, 1.0])).detach()) > 0.0


# ---------------------------------------------------------------- caches
def test_ser_embeddings_are_cached_per_ser_checkpoint(tiny_store, ser_path, monkeypatch):
    store = FeatureStore(tiny_store)
    ser = tiny_ser()
    first = ser_embeddings(store, ser, ser_path)
    assert len(first) == len(store.items()) and next(iter(first.values())).shape == (8,)
    assert len(list((tiny_store / "cache").glob("ser_emb_*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("cache hit expected: the SER must not run again")

    monkeypatch.setattr(ser, "embed", fail)
    second = ser_embeddings(store, ser, ser_path)
    assert all(np.array_equal(first[k], second[k]) for k in first)


def _tone_wavs(store_root):
    """Give every manifest row of the tiny store a real wav (pitch per speaker)."""
    rows = [json.loads(line) for line in (store_root / "manifest.jsonl").read_text().splitlines()]
    (store_root / "wavs").mkdir(exist_ok=True)
    t = np.arange(11025) / 22050
    for row in rows:
        pitch = 150.0 if row["speaker"] == "spk_a" else 260.0
        path = store_root / "wavs" / f"{row['id']}.wav"
        sf.write(path, (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), 22050)
        row["wav"] = str(path)
    (store_root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def wav2vec2_dir(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, vocab_size=10)
    Wav2Vec2Model(cfg).save_pretrained(tmp_path / "w2v")
    return tmp_path / "w2v"


def test_wav2vec2_speaker_embedding_is_deterministic_and_cached(tiny_store, tiny_wav,
                                                                wav2vec2_dir, monkeypatch):
    encoder = Wav2Vec2SpeakerEncoder(wav2vec2_dir, layer=1)
    vector = encoder.embed_wav(tiny_wav)
    assert vector.shape == (32,) and np.isfinite(vector).all()
    assert np.array_equal(vector, encoder.embed_wav(tiny_wav))

    _tone_wavs(tiny_store)
    store = FeatureStore(tiny_store)
    items = store.items()[:3]
    first = store_speaker_embeddings(store, encoder, items, progress=False)
    assert sorted(first) == sorted(i["id"] for i in items)
    monkeypatch.setattr(encoder, "embed_wav", lambda path: pytest.fail("recomputed a cached vector"))
    second = store_speaker_embeddings(store, encoder, items, progress=False)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    other_layer = Wav2Vec2SpeakerEncoder(wav2vec2_dir, layer=-1)
    assert other_layer.fingerprint != encoder.fingerprint  # another layer, another cache


@pytest.fixture
def pickled_wav2vec2_dir(tmp_path, wav2vec2_dir):
    """The same model with only pickled weights (pytorch_model.bin), as older tools saved it."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    folder = tmp_path / "w2v_bin"
    Wav2Vec2Config.from_pretrained(wav2vec2_dir).save_pretrained(folder)
    model = Wav2Vec2Model.from_pretrained(wav2vec2_dir, local_files_only=True)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


def test_wav2vec2_with_only_pickled_weights_is_refused_unless_allowed(pickled_wav2vec2_dir,
                                                                      wav2vec2_dir, tiny_wav):
    with pytest.raises(EmomixError, match=r"only pickled weights.*wav2vec2_allow_pickle: true"):
        Wav2Vec2SpeakerEncoder(pickled_wav2vec2_dir)
    allowed = Wav2Vec2SpeakerEncoder(pickled_wav2vec2_dir, allow_pickle=True)
    safe = Wav2Vec2SpeakerEncoder(wav2vec2_dir)
    assert np.allclose(allowed.embed_wav(tiny_wav), safe.embed_wav(tiny_wav), atol=1e-6)


def test_wav2vec2_safetensors_are_preferred_to_a_pickle_beside_them(wav2vec2_dir, tiny_wav):
    expected = Wav2Vec2SpeakerEncoder(wav2vec2_dir).embed_wav(tiny_wav)
    (wav2vec2_dir / "pytorch_model.bin").write_bytes(b"never unpickled")
    assert np.array_equal(Wav2Vec2SpeakerEncoder(wav2vec2_dir).embed_wav(tiny_wav), expected)


def test_wav2vec2_bad_folder_or_layer_is_a_user_error(tmp_path, wav2vec2_dir):
    with pytest.raises(EmomixError, match="not found"):
        Wav2Vec2SpeakerEncoder(tmp_path / "nowhere")
    with pytest.raises(EmomixError, match="out of range"):
        Wav2Vec2SpeakerEncoder(wav2vec2_dir, layer=5)


# ---------------------------------------------------------------- validation samples
class _Prototypes:
    emotions = ["angry", "sad"]
    vectors = torch.randn(2, 8, generator=torch.Generator().manual_seed(4))


def test_validation_samples_use_the_library_sampler_with_the_models_beta_range():
    from emomix_cli.tts.sampling import euler

    model = tiny_tts(beta_min=0.2, beta_max=8.0).eval()
    tokens = torch.randint(1, 40, (7,), generator=torch.Generator().manual_seed(2))
    speaker = torch.tensor([1])
    mels = sample_prototypes(model, tokens, _Prototypes, speaker, n_steps=3, temperature=1.5, seed=5)
    assert list(mels) == ["angry", "sad"]

    def by_hand(beta_min, beta_max):
        with torch.no_grad():
            spk = model.speaker_vector(speaker.expand(2))
            enc = model.encode(tokens[None].expand(2, -1), torch.tensor([7, 7]), _Prototypes.vectors, spk)
            mu, mask = enc["mu_y"], enc["y_mask"]
            score = lambda x, t: model.score(x, mask, mu, t, _Prototypes.vectors, spk)  # noqa: E731
            mel = euler(score, mu, mask, 3, 1.5, torch.Generator().manual_seed(5),
                        beta_min=beta_min, beta_max=beta_max)
        return mel[0, :, : int(mask[0].sum())]

    assert torch.allclose(mels["angry"], by_hand(0.2, 8.0), atol=1e-5)
    assert not torch.allclose(mels["angry"], by_hand(0.05, 20.0), atol=1e-3)  # not the defaults


def test_a_missing_vocoder_package_is_said_once_and_skips_only_the_wavs(monkeypatch, capsys, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "emomix_cli.vocoder", None)  # import fails like a missing dep
    assert sample_vocoder(AudioConfig()) is None
    message = capsys.readouterr().err
    assert "no wavs" in message and "install" in message and message.count("\n") == 1
    write_samples(tmp_path, {"angry": torch.randn(80, 12)}, AudioConfig(), vocoder=None)
    assert [p.name for p in tmp_path.iterdir()] == ["angry.png"]


def test_tts_losses_do_not_see_the_mel_pad_value():
    from emomix_cli.datasets import SILENCE_LOG_MEL

    model = tiny_tts().eval()
    tokens = torch.randint(1, 40, (2, 6), generator=torch.Generator().manual_seed(0))
    mel = torch.randn(2, 80, 24, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([24, 17])
    losses = []
    for pad in (0.0, SILENCE_LOG_MEL):
        padded = mel.clone()
        padded[1, :, 17:] = pad
        with torch.no_grad():
            out = model.compute_loss(tokens, torch.tensor([6, 5]), padded, lengths, torch.randn(
                2, 8, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1]), out_size=16,
                generator=torch.Generator().manual_seed(3))
        losses.append([float(out[k]) for k in ("dur_loss", "prior_loss", "diff_loss")])
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


# ---------------------------------------------------------------- warm start
def test_init_from_copies_matching_tensors_and_reports_new_and_skipped(tmp_path):
    source = tiny_tts().state_dict()
    renamed = "encoder.proj_m.weight"
    reshaped = "spk_emb.weight"
    state = dict(source)
    state["old." + renamed] = state.pop(renamed)
    state[reshaped] = torch.zeros(5, state[reshaped].shape[1])
    torch.save({"state_dict": state}, tmp_path / "grad-tts.pt")

    target = tiny_tts()
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_init_weights(target, tmp_path / "grad-tts.pt")
    assert report.new == [renamed] and report.skipped == [reshaped]
    assert report.unused == ["old." + renamed]
    after = target.state_dict()
    for key in report.loaded:
        assert torch.equal(after[key], source[key])
    assert torch.equal(after[renamed], before[renamed])
    assert torch.equal(after[reshaped], before[reshaped])


def test_init_from_rejects_a_file_without_matching_tensors(tmp_path):
    torch.save({"unrelated.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(EmomixError, match="no tensor name/shape matches"):
        load_init_weights(tiny_tts(), tmp_path / "other.pt")


# ---------------------------------------------------------------- end to end
def _log_values(run_dir, key):
    values = []
    for line in (run_dir / "train.log").read_text().splitlines():
        words = line.split()
        if " step " in f" {line} " and key in words:
            values.append(float(words[words.index(key) + 1]))
    return values


def test_train_tts_writes_a_checkpoint_that_load_tts_reads(tmp_path, tiny_store, ser_path):
    checkpoint = train_tts(write_config(tmp_path, tiny_store, ser_path))
    run_dir = tmp_path / "run"
    assert checkpoint == run_dir / "tts.pt" and (run_dir / "config.yaml").is_file()
    for key in ("dur_loss", "prior_loss", "diff_loss", "style_loss", "loss"):
        values = _log_values(run_dir, key)
        assert len(values) >= 4 and all(math.isfinite(v) for v in values), key
    assert max(_log_values(run_dir, "style_loss")) > 0
    samples = run_dir / "samples" / "step_4"
    assert sorted(p.name for p in samples.glob("*.png")) == ["angry.png", "neutral.png", "sad.png"]
    assert sorted(p.name for p in samples.glob("*.wav")) == ["angry.wav", "neutral.wav", "sad.wav"]

    bundle = load_tts(checkpoint)
    store = FeatureStore(tiny_store)
    assert bundle.symbols == store.symbols and bundle.speakers == ["spk_a", "spk_b"]
    assert bundle.prototypes.emotions == ["angry", "neutral", "sad"]
    assert bundle.ser_payload["emotions"] == ["angry", "neutral", "sad"]
    assert not bundle.model.training
    ema = load_checkpoint(run_dir / "last.pt", "train-state")["ema"]
    assert all(torch.equal(bundle.model.state_dict()[k], v) for k, v in ema.items())
    spk = bundle.model.speaker_vector(bundle.resolve_speaker("spk_b")[1])
    enc = bundle.model.encode(torch.tensor([store.tokens(store.items()[0])]), torch.tensor([9]),
                              bundle.prototypes.vectors[:1], spk)
    assert enc["mu_y"].shape[1] == 80 and torch.isfinite(enc["mu_y"]).all()


def test_resume_reproduces_the_step_count_and_the_ema(tmp_path, tiny_store, ser_path):
    straight = train_tts(write_config(tmp_path, tiny_store, ser_path, name="straight", steps=2))
    shared = {"prototypes": str(tmp_path / "straight" / "prototypes.pt")}  # given, not recomputed
    train_tts(write_config(tmp_path, tiny_store, ser_path, name="split", steps=1, **shared))
    resumed = train_tts(write_config(tmp_path, tiny_store, ser_path, name="split", steps=2, **shared),
                        resume=tmp_path / "split" / "last.pt")
    assert load_checkpoint(tmp_path / "split" / "last.pt", "train-state")["step"] == 2
    a = load_checkpoint(straight, "tts")["state_dict"]
    b = load_checkpoint(resumed, "tts")["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_a_snapshot_is_fp16_without_adam_and_resumes_at_its_step(tmp_path, tiny_store, ser_path):
    from emomix_cli.train_loop import write_snapshot

    first = train_tts(write_config(tmp_path, tiny_store, ser_path, name="series", steps=2))
    shared = {"prototypes": str(tmp_path / "series" / "prototypes.pt")}
    snapshot = write_snapshot(tmp_path / "series" / "last.pt", tmp_path / "snap.pt", hours=0.25)
    blob = load_checkpoint(snapshot, "train-state")
    assert blob["optimizer"] is None and blob["snapshot"] == {"hours": 0.25}
    assert all(v.dtype == torch.float16 for v in blob["model"].values() if v.is_floating_point())
    assert snapshot.stat().st_size < (tmp_path / "series" / "last.pt").stat().st_size / 2
    resumed = train_tts(write_config(tmp_path, tiny_store, ser_path, name="carried", steps=3,
                                     **shared), resume=snapshot)
    assert load_checkpoint(tmp_path / "carried" / "last.pt", "train-state")["step"] == 3
    assert load_checkpoint(resumed, "tts")["config"] == load_checkpoint(first, "tts")["config"]


def test_train_tts_with_wav2vec2_speakers(tmp_path, tiny_store, ser_path, wav2vec2_dir, tiny_wav):
    _tone_wavs(tiny_store)
    config = write_config(tmp_path, tiny_store, ser_path, steps=2, speaker_encoder="wav2vec2",
                          wav2vec2_path=str(wav2vec2_dir), wav2vec2_layer=1)
    bundle = load_tts(train_tts(config))
    assert bundle.speaker_encoder == "wav2vec2" and bundle.wav2vec2["layer"] == 1
    assert bundle.model.cfg.speaker_in_dim == 32
    assert set(bundle.speaker_vectors) == {"spk_a", "spk_b"}
    vector = Wav2Vec2SpeakerEncoder(bundle.wav2vec2["path"], bundle.wav2vec2["layer"]).embed_wav(tiny_wav)
    assert bundle.model.speaker_vector(torch.from_numpy(vector)[None]).shape == (1, 8)


def test_shipped_copy_has_fp16_weights_and_loads_as_fp32(tmp_path, tiny_store, ser_path):
    source = train_tts(write_config(tmp_path, tiny_store, ser_path, steps=1))
    shipped = export_for_shipping(source, tmp_path / "demo.pt")
    blob = load_checkpoint(shipped, "tts")
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    assert shipped.stat().st_size < source.stat().st_size
    full, half = load_tts(source).model, load_tts(shipped).model
    for key, value in half.state_dict().items():
        assert value.dtype == full.state_dict()[key].dtype
        assert torch.allclose(value, full.state_dict()[key], atol=1e-2, rtol=1e-2)


def test_export_takes_the_ema_or_raw_weights_of_a_last_pt(tmp_path, tiny_store, ser_path):
    source = train_tts(write_config(tmp_path, tiny_store, ser_path, steps=2))
    last = source.parent / "last.pt"
    state = load_checkpoint(last, "train-state")
    for key, kwargs in (("ema", {"ema_from": last}), ("model", {"raw_from": last})):
        blob = load_checkpoint(export_for_shipping(source, tmp_path / f"{key}.pt", half=False, **kwargs), "tts")
        assert all(torch.equal(blob["state_dict"][k], v) for k, v in state[key].items())
    with pytest.raises(EmomixError, match="not both"):
        export_for_shipping(source, tmp_path / "x.pt", raw_from=last, ema_from=last)
    other = save_checkpoint(tmp_path / "other_last.pt", "train-state",
                            {**state, "ema": dict(list(state["ema"].items())[1:])})  # a tensor short
    with pytest.raises(EmomixError, match="holds no ema weights"):
        export_for_shipping(source, tmp_path / "x.pt", ema_from=other)


def test_load_tts_rejects_a_checkpoint_of_another_kind(ser_path):
    with pytest.raises(EmomixError, match="'ser' checkpoint"):
        load_tts(ser_path)


def _count_training_style_losses(monkeypatch) -> list[int]:
    """Patch ``style_loss`` to count its calls in training steps (grad on; validation has none)."""
    import emomix_cli.tts.train as tts_train

    calls = []

    def counting(*args, **kwargs):
        if torch.is_grad_enabled():
            calls.append(1)
        return style_loss(*args, **kwargs)

    monkeypatch.setattr(tts_train, "style_loss", counting)
    return calls


def test_style_every_is_validated(tmp_path, tiny_store, ser_path):
    with pytest.raises(EmomixError, match="style_every must be ≥ 1"):
        train_tts(write_config(tmp_path, tiny_store, ser_path, style_every=0))


def test_style_every_2_runs_the_style_loss_on_half_of_the_steps(tmp_path, tiny_store, ser_path,
                                                               monkeypatch):
    calls = _count_training_style_losses(monkeypatch)
    train_tts(write_config(tmp_path, tiny_store, ser_path, steps=4, style_every=2))
    assert len(calls) == 2  # steps 0 and 2
    logged = [line.split()[3] for line in (tmp_path / "run" / "train.log").read_text().splitlines()
              if line.split()[2] == "step" and "style_loss" in line.split()]
    assert logged == ["1", "3"]  # the log's step numbers count from 1; skipped steps log no style
    assert all(math.isfinite(v) for v in _log_values(tmp_path / "run", "loss"))


def test_style_every_keeps_its_schedule_across_a_resume(tmp_path, tiny_store, ser_path,
                                                        monkeypatch):
    calls = _count_training_style_losses(monkeypatch)
    train_tts(write_config(tmp_path, tiny_store, ser_path, name="split", steps=1, style_every=2))
    assert len(calls) == 1  # step 0
    calls.clear()
    shared = {"prototypes": str(tmp_path / "split" / "prototypes.pt"), "style_every": 2}
    train_tts(write_config(tmp_path, tiny_store, ser_path, name="split", steps=4, **shared),
              resume=tmp_path / "split" / "last.pt")
    assert len(calls) == 1  # steps 1, 2, 3: only step 2 (a fresh count would pick 1 and 3)


def test_unknown_config_key_is_rejected_by_name(tmp_path, tiny_store, ser_path):
    with pytest.raises(EmomixError, match="style_wieght"):
        train_tts(write_config(tmp_path, tiny_store, ser_path, style_wieght=1.0))


def test_data_decided_model_keys_cannot_be_overridden(tmp_path, tiny_store, ser_path):
    with pytest.raises(EmomixError, match="model.n_vocab"):
        train_tts(write_config(tmp_path, tiny_store, ser_path), overrides=["model.n_vocab=10"])
