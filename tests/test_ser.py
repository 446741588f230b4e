"""SER: masking, gradients, training on a tiny store, prototypes, user errors."""

from __future__ import annotations

import pytest
import torch
import yaml

from emomix_cli.audio import AudioConfig, mel_with_deltas
from emomix_cli.checkpoint import load_checkpoint, save_checkpoint
from emomix_cli.errors import EmomixError
from emomix_cli.ser import (
    SER,
    SERConfig,
    compute_prototypes,
    load_prototypes,
    load_ser,
    mel_deltas,
    train_ser,
)
from emomix_cli.ser.train import open_store, ser_payload

EMOTIONS = ["angry", "neutral", "sad"]


def tiny_config(**kw) -> SERConfig:
    values = dict(emotions=EMOTIONS, conv1_channels=4, conv_channels=8, n_conv=3, linear_dim=32,
                  lstm_hidden=16, embed_dim=12)
    return SERConfig.compact(**{**values, **kw})


def test_output_shapes_and_padding_does_not_change_an_items_outputs():
    torch.manual_seed(0)
    ser = SER(tiny_config()).eval()
    ser.set_normalization(torch.randn(3, 80), torch.rand(3, 80) + 0.5)
    short, long = torch.randn(1, 80, 37), torch.randn(1, 80, 60)
    padded = torch.cat([torch.nn.functional.pad(short, (0, 23), value=5.0), long])
    out = ser(padded, torch.tensor([37, 60]))
    assert out["logits"].shape == (2, 3) and out["embedding"].shape == (2, 12)
    alone = ser(short, torch.tensor([37]))
    assert torch.allclose(out["embedding"][0], alone["embedding"][0], atol=1e-5)
    assert torch.allclose(out["logits"][0], alone["logits"][0], atol=1e-5)
    assert torch.allclose(ser.predict_proba(padded, torch.tensor([37, 60])).sum(-1), torch.ones(2))
    maps = ser.feature_maps(padded, torch.tensor([37, 60]))
    assert [tuple(m.shape) for m in maps] == [(2, 4, 80, 60), (2, 8, 20, 30), (2, 8, 20, 30)]
    assert maps[0][0, :, :, 37:].abs().max() == 0 and maps[1][0, :, :, 18:].abs().max() == 0


def test_length_aware_deltas_equal_audio_deltas_of_the_unpadded_mel():
    mel = torch.randn(1, 80, 25)
    padded = torch.nn.functional.pad(mel, (0, 7), value=-3.0)
    ours = mel_deltas(padded, torch.tensor([25]))[..., :25]
    assert torch.allclose(ours, mel_with_deltas(mel), atol=1e-6)


def test_gradient_reaches_the_input_mel_through_feature_maps():
    ser = SER(tiny_config())
    ser.requires_grad_(False)
    mel = torch.randn(2, 80, 30, requires_grad=True)
    maps = ser.feature_maps(mel, torch.tensor([30, 22]))
    sum(m.pow(2).mean() for m in maps).backward()
    assert mel.grad is not None and mel.grad[:, :, :22].abs().sum() > 0
    assert mel.grad[1, :, 22:].abs().max() == 0  # padding gets no gradient


def write_config(tmp_path, store, **train) -> str:
    model = {k: v for k, v in tiny_config().__dict__.items() if k != "emotions"}
    config = {
        "features": str(store),
        "run_dir": str(tmp_path / "run"),
        "crop_frames": 48,
        "model": model,
        "train": {"steps": 60, "batch_size": 12, "lr": 3e-3, "log_every": 20, "val_every": 20,
                  "ckpt_every": 1000, "device": "cpu", "seed": 0, **train},
    }
    path = tmp_path / "ser.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_tiny_ser_trains_on_the_tiny_store_and_beats_chance(tmp_path, tiny_store):
    ser_path = train_ser(write_config(tmp_path, tiny_store))
    run = tmp_path / "run"
    assert ser_path == run / "ser.pt"
    blob = load_checkpoint(ser_path, "ser")
    assert blob["emotions"] == EMOTIONS and blob["norm"]["mean"].shape == (3, 80)
    assert blob["metrics"]["test"]["ua"] >= 0.66  # chance is 1/3
    assert (run / "confusion_test.png").stat().st_size > 1000
    assert (run / "best.pt").is_file() and (run / "config.yaml").is_file()
    log = (run / "train.log").read_text()
    assert "val step 20" in log and "true \\ pred" in log
    ser = load_ser(ser_path)
    assert not ser.training and not any(p.requires_grad for p in ser.parameters())


def make_ser_checkpoint(path, embed_dim=12):
    torch.manual_seed(0)
    ser = SER(tiny_config(embed_dim=embed_dim))
    save_checkpoint(path, "ser", ser_payload(ser, AudioConfig()))
    return path


def test_prototypes_are_per_emotion_means_and_round_trip(tmp_path, tiny_store, tiny_wav):
    ser_path = make_ser_checkpoint(tmp_path / "ser.pt")
    out = compute_prototypes(tiny_store, ser_path, tmp_path / "protos.pt", per_speaker=True,
                             add={"tone": [tiny_wav]}, batch_size=5)
    protos = load_prototypes(out)
    assert protos.emotions == EMOTIONS + ["tone"] and protos.reference_only == ["tone"]
    assert protos.vectors.shape == (4, 12) and protos.counts == [12, 12, 12, 1]
    assert set(protos.per_speaker) == {"spk_a", "spk_b"}
    ser, store = load_ser(ser_path), open_store(tiny_store)
    sad = [it for it in store.items("train") if it["emotion"] == "sad" and it["speaker"] == "spk_b"]
    by_hand = torch.stack([ser.embed(torch.from_numpy(store.mel(it["id"]))[None])[0] for it in sad])
    assert torch.allclose(protos.vector("sad", "spk_b"), by_hand.mean(0), atol=1e-5)
    assert not torch.allclose(protos.vector("sad", "spk_b"), protos.vector("sad"))
    assert (tmp_path / "protos_pca.png").stat().st_size > 1000
    with pytest.raises(EmomixError, match="unknown emotion 'joy'"):
        protos.vector("joy")


def test_empty_features_dir_is_a_user_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmomixError, match="emomix prep"):
        train_ser(write_config(tmp_path, empty))
    with pytest.raises(EmomixError, match="emomix prep"):
        compute_prototypes(empty, make_ser_checkpoint(tmp_path / "ser.pt"), tmp_path / "p.pt")


def test_a_checkpoint_of_another_kind_is_rejected(tmp_path, tiny_store):
    save_checkpoint(tmp_path / "protos.pt", "prototypes", {"emotions": [], "vectors": torch.zeros(0, 2)})
    with pytest.raises(EmomixError, match="'prototypes' checkpoint"):
        load_ser(tmp_path / "protos.pt")
    make_ser_checkpoint(tmp_path / "ser.pt")
    with pytest.raises(EmomixError, match="'ser' checkpoint"):
        load_prototypes(tmp_path / "ser.pt")
