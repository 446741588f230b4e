"""The one mel PNG writer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomix_cli.plotting import save_mel_png


def test_save_mel_png_writes_a_png_atomically_from_a_tensor_or_an_array(tmp_path):
    mel = torch.randn(80, 120)
    path = save_mel_png(mel, tmp_path / "sub" / "mel.png", title="angry 0.6, sad 0.4")
    assert path == tmp_path / "sub" / "mel.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["mel.png"]  # no temp file left
    again = save_mel_png(mel.numpy().astype(np.float64), tmp_path / "array.png")
    assert again.stat().st_size > 1000


def test_save_mel_png_leaves_no_pyplot_figure_open(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    save_mel_png(np.zeros((80, 10)), tmp_path / "a.png")
    assert plt.get_fignums() == before


def test_save_mel_png_rejects_a_batch(tmp_path):
    with pytest.raises(ValueError, match=r"\[n_mels, T\]"):
        save_mel_png(torch.zeros(1, 80, 10), tmp_path / "a.png")
