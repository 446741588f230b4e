"""The shipped demo model: it loads to the weights it holds, and its embedded conditions unpack
to checkpoints training can use."""

import dataclasses

import torch

from emomix_cli.assets import DEMO_MODEL
from emomix_cli.checkpoint import load_checkpoint
from emomix_cli.ser import load_ser
from emomix_cli.ser.prototypes import load_prototypes
from emomix_cli.synthesis import SynthesisOptions, synthesize_mels
from emomix_cli.tts import load_tts, unpack_conditioning
from emomix_cli.tts.model import EmoMixTTS


def test_unpacked_ser_and_prototypes_equal_the_embedded_ones(tmp_path):
    unpack_conditioning(DEMO_MODEL, tmp_path / "ser.pt", tmp_path / "prototypes.pt")
    bundle = load_tts(DEMO_MODEL)
    prototypes = load_prototypes(tmp_path / "prototypes.pt")
    assert prototypes.emotions == bundle.emotions
    assert torch.equal(prototypes.vectors, bundle.prototypes.vectors)
    assert prototypes.per_speaker.keys() == bundle.prototypes.per_speaker.keys()
    ser = load_ser(tmp_path / "ser.pt")
    assert list(ser.emotions) == bundle.emotions and ser.embed_dim == bundle.config.emotion_dim


def test_loading_gives_the_model_built_by_copying_the_weights_in():
    """load_tts puts the file's (fp16 -> fp32) tensors in place rather than copying them into a
    fresh model: same weights, same layout, same mel, bit for bit."""
    bundle = load_tts(DEMO_MODEL)
    usual = EmoMixTTS(bundle.config)
    usual.load_state_dict(load_checkpoint(DEMO_MODEL, "tts")["state_dict"])  # copy_ casts to fp32
    if usual.family == "score2d":  # load_tts's layout for the 2-D U-Net on CPU
        usual.decoder.estimator.use_channels_last(True)
    usual.eval().requires_grad_(False)
    for (name, loaded), copied in zip(bundle.model.state_dict().items(), usual.state_dict().values(), strict=True):
        assert loaded.dtype == torch.float32 and torch.equal(loaded, copied), name
        assert loaded.stride() == copied.stride(), name
    assert not any(p.requires_grad for p in bundle.model.parameters()) and not bundle.model.training
    options = SynthesisOptions(steps=4, seed=1)
    mel = synthesize_mels(bundle, "Hello there.", {"happy": 0.7}, options).mel
    expected = synthesize_mels(dataclasses.replace(bundle, model=usual), "Hello there.", {"happy": 0.7}, options).mel
    assert (mel == expected).all()
