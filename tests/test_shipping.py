"""The shipped demo model: its embedded conditions unpack to checkpoints training can use."""

import torch

from emomix_cli.assets import DEMO_MODEL
from emomix_cli.ser import load_ser
from emomix_cli.ser.prototypes import load_prototypes
from emomix_cli.tts import load_tts, unpack_conditioning


def test_unpacked_ser_and_prototypes_equal_the_embedded_ones(tmp_path):
    unpack_conditioning(DEMO_MODEL, tmp_path / "ser.pt", tmp_path / "prototypes.pt")
    bundle = load_tts(DEMO_MODEL)
    prototypes = load_prototypes(tmp_path / "prototypes.pt")
    assert prototypes.emotions == bundle.emotions
    assert torch.equal(prototypes.vectors, bundle.prototypes.vectors)
    assert prototypes.per_speaker.keys() == bundle.prototypes.per_speaker.keys()
    ser = load_ser(tmp_path / "ser.pt")
    assert list(ser.emotions) == bundle.emotions and ser.embed_dim == bundle.config.emotion_dim
