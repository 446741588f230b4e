"""Parity of emomix's ``matcha`` preset with the official Matcha-TTS code, and the test fixture.

Builds the official Matcha-TTS text encoder and CFM decoder (the layout of its ``MatchaTTS``
state_dict: ``encoder.*``, ``decoder.*``, ``spk_emb``, ``mel_mean``/``mel_std``) with random
weights (every zero-initialised tensor perturbed, so nothing is trivially equal), saves them as
a Lightning checkpoint whose hyper-parameters are OmegaConf objects (as official checkpoints
are), loads that file with ``emomix train tts --init-from``'s loader and compares, on the same
inputs: the encoder's μ and log-durations, one velocity call, and a 10-step Euler solve.

The official code is NOT an emomix dependency. Run this in an environment that has it, e.g.
``pip install --no-deps matcha-tts==0.0.7.2`` beside torch, diffusers, conformer, einops,
omegaconf, hydra-core, lightning, gdown, matplotlib and wget (its imports), with emomix on
PYTHONPATH:

    python benchmarks/matcha_parity.py                       # official sizes, 1 and 4 speakers
    python benchmarks/matcha_parity.py --fixture tests/data/matcha_tiny   # the CI fixture
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

OFFICIAL = {"n_channels": 192, "filter_channels": 768, "filter_channels_dp": 256, "n_heads": 2,
            "n_layers": 6, "decoder_channels": [256, 256], "head_dim": 64, "dec_heads": 2}
TINY = {"n_channels": 32, "filter_channels": 64, "filter_channels_dp": 32, "n_heads": 2,
        "n_layers": 2, "decoder_channels": [32, 32], "head_dim": 16, "dec_heads": 2}
MEL_MEAN, MEL_STD = -5.536622, 2.116101


def official_model(size: dict, n_spks: int, seed: int) -> nn.Module:
    """The official modules in the official layout, with perturbed random weights."""
    from matcha.models.components.flow_matching import CFM
    from matcha.models.components.text_encoder import TextEncoder
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    encoder = OmegaConf.create({
        "encoder_type": "RoPE Encoder",
        "encoder_params": {"n_feats": 80, "n_channels": size["n_channels"],
                           "filter_channels": size["filter_channels"],
                           "filter_channels_dp": size["filter_channels_dp"],
                           "n_heads": size["n_heads"], "n_layers": size["n_layers"],
                           "kernel_size": 3, "p_dropout": 0.1, "spk_emb_dim": 64,
                           "n_spks": n_spks, "prenet": True},
        "duration_predictor_params": {"filter_channels_dp": size["filter_channels_dp"],
                                      "kernel_size": 3, "p_dropout": 0.1},
    })
    decoder = OmegaConf.create({"channels": size["decoder_channels"], "dropout": 0.05,
                                "attention_head_dim": size["head_dim"], "n_blocks": 1,
                                "num_mid_blocks": 2, "num_heads": size["dec_heads"],
                                "act_fn": "snakebeta"})
    cfm = OmegaConf.create({"name": "CFM", "solver": "euler", "sigma_min": 1e-4})

    class Matcha(nn.Module):
        def __init__(self):
            super().__init__()
            if n_spks > 1:
                self.spk_emb = nn.Embedding(n_spks, 64)
            self.encoder = TextEncoder(encoder.encoder_type, encoder.encoder_params,
                                       encoder.duration_predictor_params, 178, n_spks, 64)
            self.decoder = CFM(160, 80, cfm, decoder, n_spks, 64)
            self.register_buffer("mel_mean", torch.tensor(MEL_MEAN))
            self.register_buffer("mel_std", torch.tensor(MEL_STD))

    model = Matcha()
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.abs().sum():  # zero-initialised: biases, prenet output, SnakeBeta
                parameter.normal_(0.0, 0.05)
    model.hparams_objects = {"encoder": encoder, "decoder": decoder, "cfm": cfm}
    return model.eval()


def save_lightning(model: nn.Module, path: Path, n_spks: int) -> None:
    """A checkpoint in Lightning's layout, with the official kind of hyper-parameters."""
    from lightning.fabric.utilities.data import AttributeDict
    from omegaconf import OmegaConf

    hparams = AttributeDict(n_vocab=178, n_spks=n_spks, spk_emb_dim=64, n_feats=80,
                            data_statistics=OmegaConf.create({"mel_mean": MEL_MEAN,
                                                              "mel_std": MEL_STD}),
                            out_size=None, **model.hparams_objects)
    state = {k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 0, "global_step": 0, "pytorch-lightning_version": "2.1.0",
                "state_dict": state, "hyper_parameters": hparams}, path)


def emomix_model(size: dict, n_spks: int):
    from emomix_cli.config import from_dict
    from emomix_cli.tts.model import EmoMixTTS, TTSConfig, merge_nested, preset

    values = merge_nested(preset("matcha"), {
        "n_vocab": 178, "emotion_dim": 8, "n_speakers": max(n_spks, 1),
        "speaker_encoder": "table" if n_spks > 1 else "none",
        "n_enc_channels": size["n_channels"], "filter_channels": size["filter_channels"],
        "filter_channels_dp": size["filter_channels_dp"], "n_heads": size["n_heads"],
        "n_enc_layers": size["n_layers"],
        "flow": {"channels": size["decoder_channels"], "attention_head_dim": size["head_dim"],
                 "num_heads": size["dec_heads"]},
    })
    return EmoMixTTS(from_dict(TTSConfig, values)).eval(), values


def inputs(n_spks: int, frames: int = 256, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 178, (1, 31), generator=g)
    tokens[0, ::2] = 0  # interspersed blanks, as Matcha-TTS feeds them
    return {"tokens": tokens, "lengths": torch.tensor([31]),
            "speaker": torch.tensor([min(2, n_spks - 1)]) if n_spks > 1 else None,
            "x": torch.randn(1, 80, frames, generator=g), "mu": torch.randn(1, 80, frames, generator=g),
            "z": torch.randn(1, 80, frames, generator=g), "t": torch.tensor([0.37]),
            "emotion": torch.randn(1, 8, generator=g)}


@torch.no_grad()
def official_outputs(model: nn.Module, data: dict) -> dict:
    spks = model.spk_emb(data["speaker"]) if data["speaker"] is not None else None
    mu_x, logw, _ = model.encoder(data["tokens"], data["lengths"], spks)
    mask = torch.ones(1, 1, data["x"].shape[-1])
    velocity = model.decoder.estimator(data["x"], mask, data["mu"], data["t"], spks)
    span = torch.linspace(0, 1, 11)
    mel = model.decoder.solve_euler(data["z"], span, data["mu"], mask, spks, None)
    return {"mu_x": mu_x, "logw": logw, "velocity": velocity, "euler10": mel}


@torch.no_grad()
def emomix_outputs(model, data: dict) -> dict:
    spk = model.speaker_vector(data["speaker"])
    emo = model.emotion_vector(data["emotion"])
    mu_x, logw, _ = model._encode_tokens(data["tokens"], data["lengths"], emo, spk)
    mask = torch.ones(1, 1, data["x"].shape[-1])

    def field(x, t):
        return model.network_output(x, mask, data["mu"], t, data["emotion"], spk)

    velocity = field(data["x"], data["t"])
    mel = model.decoder.solve(field, data["mu"], mask, "euler", 10, 1.0, x_start=data["z"])
    return {"mu_x": mu_x, "logw": logw, "velocity": velocity, "euler10": mel}


def compare(size_name: str, n_spks: int, folder: Path) -> bool:
    from emomix_cli.audio import AudioConfig
    from emomix_cli.text import matcha_symbol_table
    from emomix_cli.tts.pretrained import load_init_weights

    size = OFFICIAL if size_name == "official" else TINY
    official = official_model(size, n_spks, seed=0)
    path = folder / f"matcha_{size_name}_{n_spks}spk.ckpt"
    save_lightning(official, path, n_spks)
    model, _ = emomix_model(size, n_spks)
    report = load_init_weights(model, path, matcha_symbol_table(), AudioConfig())
    n_official = len([k for k in official.state_dict() if k not in ("mel_mean", "mel_std")])
    data = inputs(n_spks)
    ours, theirs = emomix_outputs(model, data), official_outputs(official, data)
    worst = {k: (ours[k] - theirs[k]).abs().max().item() for k in theirs}
    ok = len(report.loaded) == n_official and not report.skipped and not report.unused \
        and max(worst.values()) < 1e-4
    print(f"| {size_name} | {n_spks} | {len(report.loaded)}/{n_official} | "
          + " | ".join(f"{worst[k]:.1e}" for k in ("mu_x", "logw", "velocity", "euler10"))
          + f" | {'yes' if ok else 'NO'} |")
    return ok


def write_fixture(folder: Path) -> None:
    """The CI fixture: a tiny official checkpoint (4 speakers), its inputs and outputs."""
    folder.mkdir(parents=True, exist_ok=True)
    official = official_model(TINY, 4, seed=0)
    save_lightning(official, folder / "official.ckpt", 4)
    _, config = emomix_model(TINY, 4)
    data = inputs(4, frames=64)
    torch.save({"config": config, "inputs": data, "outputs": official_outputs(official, data)},
               folder / "reference.pt")
    print(f"wrote {folder}/official.ckpt and reference.pt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixture", type=Path, help="write the CI fixture into this folder")
    args = parser.parse_args()
    try:
        import matcha  # noqa: F401
    except ImportError:
        print("the official Matcha-TTS package is not importable; see this script's docstring",
              file=sys.stderr)
        return 2
    if args.fixture:
        write_fixture(args.fixture)
        return 0
    print("| size | speakers | tensors loaded | max Δ μ | max Δ log w | max Δ v | max Δ 10 Euler | pass |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as folder:
        results = [compare(size, spk, Path(folder)) for size in ("official", "tiny")
                   for spk in (1, 4)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
