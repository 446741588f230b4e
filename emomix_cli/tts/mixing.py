"""Emotion mixing (EmoMix Eq. 8) as a wrapper around the decoder's network output.

``o_mix(x_t, t) = Σ_i γ_i o_θ(x_t, t, μ, s, e_i)``, where o is the score (score2d) or the
velocity (flow1d). Each solver step is linear in o, so mixing scores equals mixing noise
predictions, and mixing velocities mixes the flow the same way (docs/DESIGN.md §1.6).
:class:`MixedOutput` is a plain callable ``(x, t) -> o`` (the k-diffusion pattern), so every
solver of either family mixes for free. The active conditions follow :func:`plan_schedule`,
two thresholds on the *noise level* n ∈ [0, 1] (1 = pure noise at the start of sampling, 0 =
data), the same user unit in both families (score2d: n = t; flow1d: n = 1 − t):

- ``n > k_max``: the base emotion alone (the largest weight; ties: the first given);
- ``k_min <= n <= k_max``: the full combination;
- ``n < k_min``: the mixed-in emotions alone, renormalised (the base when there are none).

Intensity is mixing with Neutral: :func:`normalise_weights` gives a sum ``w < 1`` the
remainder ``1 − w`` on Neutral; sums above 1 are an error, never silently renormalised.

The weights may also change along the mel frames, γ_i(n) (inline tags, docs/DESIGN.md §1.3):
:class:`FrameMix` lays each token's mix on its frames (:func:`token_frames`), applies the
window per token and cross-fades the changes (:func:`cross_fade`); the sum stays one batched
call with a row per emotion, each row weighted frame by frame. Constant weights are the global
mix, computed exactly as one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import EmomixError

WEIGHT_TOLERANCE = 1e-6


def normalise_weights(
    weights: Mapping[str, float], emotions: list[str], neutral: str = "neutral"
) -> dict[str, float]:
    """Validated mixing weights summing to 1, ordered base first (largest; ties: first given).

    Zero weights are dropped; a sum ``w < 1`` gets ``1 − w`` on ``neutral`` (intensity), which
    counts as given last when breaking ties. Raises :class:`EmomixError` for unknown emotions,
    negative/non-finite weights, no positive weight, or a sum above 1.
    """
    known = ", ".join(emotions)
    cleaned: dict[str, float] = {}
    for name, value in weights.items():
        if name not in emotions:
            raise EmomixError(f"unknown emotion '{name}'; this model knows: {known}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise EmomixError(f"weight of '{name}' is not a number: {value!r}; give e.g. 0.5") from None
        if not math.isfinite(value) or value < 0:
            raise EmomixError(f"weight of '{name}' must be a finite number >= 0, got {value}")
        if value > 0:
            cleaned[name] = cleaned.get(name, 0.0) + value
    if not cleaned:
        raise EmomixError(f"no emotion weight given; give at least one positive weight (one of: {known})")
    total = sum(cleaned.values())
    if total > 1 + WEIGHT_TOLERANCE:
        given = ", ".join(f"{k}={v:g}" for k, v in cleaned.items())
        raise EmomixError(
            f"weights sum to {total:g} > 1 ({given}); make them sum to at most 1 "
            f"(a sum below 1 fills the rest with {neutral})"
        )
    remainder = 1.0 - total
    if remainder > WEIGHT_TOLERANCE:
        if neutral not in emotions:
            raise EmomixError(
                f"weights sum to {total:g} < 1 but this model has no '{neutral}' emotion to fill "
                f"the rest; make the weights sum to 1 (known: {known})"
            )
        cleaned[neutral] = cleaned.get(neutral, 0.0) + remainder
    total = sum(cleaned.values())
    ordered = sorted(cleaned.items(), key=lambda item: -item[1])  # stable: ties keep given order
    return {name: value / total for name, value in ordered}


def _check_thresholds(k_max: float, k_min: float) -> None:
    if not (1.0 >= k_max >= k_min >= 0.0):
        raise EmomixError(
            f"need 1 >= k_max >= k_min >= 0, got k_max={k_max}, k_min={k_min}; "
            "k_max=1, k_min=0 mixes at every step"
        )


def base_emotion(weights: Mapping[str, float]) -> str:
    """The largest positive weight's name; ties go to the first given."""
    positive = [(name, w) for name, w in weights.items() if w > 0]
    if not positive:
        raise EmomixError("no positive emotion weight; give at least one positive weight")
    return max(positive, key=lambda item: item[1])[0]  # max keeps the first of equal keys


def plan_schedule(weights: Mapping[str, float], k_max: float, k_min: float, t: float) -> dict[str, float]:
    """The emotions active at noise level ``t`` (1 = noise) and their weights (summing to 1)."""
    _check_thresholds(k_max, k_min)
    base = base_emotion(weights)
    active = {name: float(w) for name, w in weights.items() if w > 0}
    if t > k_max:
        return {base: 1.0}
    if t >= k_min:
        total = sum(active.values())
        return {name: w / total for name, w in active.items()}
    others = {name: w for name, w in active.items() if name != base}
    if not others:
        return {base: 1.0}
    total = sum(others.values())
    return {name: w / total for name, w in others.items()}


ENCODER_CONDITIONS = ("weighted", "base", "neutral")
NEUTRAL = "neutral"
NULL = "null"
# what guidance extrapolates away from (docs/DESIGN.md §1.4): the decoder's learned null emotion
# at the mix's own μ, or Neutral speech (Neutral's prototype in the decoder and in the encoder)
GUIDANCE_REFERENCES = (NULL, NEUTRAL)


@dataclass(frozen=True)
class Reference:
    """Guidance's reference row o_ref in ``o_ref + w Σ γ_i (o_i − o_ref)``.

    ``condition``: the key of ``MixedOutput``'s conditions evaluated in that row (``neutral``),
    or None for the learned null emotion; ``mu``: that row's prior (the same shape as the mix's μ,
    on the same durations), or None for the mix's own μ."""

    condition: str | None = None
    mu: torch.Tensor | None = None

    @property
    def name(self) -> str:
        """The reference as :data:`GUIDANCE_REFERENCES` names it."""
        return NULL if self.condition is None else self.condition


def condition_for_encoder(
    prototypes: Mapping[str, torch.Tensor], weights: Mapping[str, float], mode: str = "weighted"
) -> torch.Tensor:
    """The encoder/duration condition (docs/DESIGN.md §1.3): ``Σ γ_i p_i`` ("weighted", mixing
    in the embedding space), the base emotion's prototype ("base", the paper: blending happens in
    the noise space only) or Neutral's ("neutral", EmoDiff: the decoder alone carries the
    emotion; ``prototypes`` must then hold "neutral")."""
    if mode == "base":
        return prototypes[base_emotion(weights)].clone()
    if mode == NEUTRAL:
        if NEUTRAL not in prototypes:
            raise EmomixError("encoder condition 'neutral' needs a 'neutral' emotion in the model")
        return prototypes[NEUTRAL].clone()
    if mode != "weighted":
        raise EmomixError(f"unknown encoder condition '{mode}'; use {', '.join(ENCODER_CONDITIONS)}")
    total = sum(w for w in weights.values() if w > 0)
    return sum(prototypes[name] * (w / total) for name, w in weights.items() if w > 0)


def token_conditions(prototypes: Mapping[str, torch.Tensor], mixes: list[Mapping[str, float]],
                     mode: str = "weighted") -> torch.Tensor:
    """The encoder condition of each token, :func:`condition_for_encoder` of its own mix:
    ``[1, D]`` when every token's is the same (a global mix, computed exactly as one), else
    ``[1, L, D]`` (one row per token, which :meth:`~.model.EmoMixTTS.encode` accepts)."""
    if all(mix == mixes[0] for mix in mixes[1:]):
        return condition_for_encoder(prototypes, mixes[0], mode)[None]
    rows = [condition_for_encoder(prototypes, mix, mode) for mix in mixes]
    if all(torch.equal(row, rows[0]) for row in rows[1:]):  # e.g. one base under "base"
        return rows[0][None]
    return torch.stack(rows)[None]


# ---------------------------------------------------------------- weights per frame
def interpolate_mix(start: Mapping[str, float], end: Mapping[str, float],
                    fraction: float) -> dict[str, float]:
    """``(1 − f)·start + f·end`` over both mixes' emotions (start's first); zeros dropped."""
    names = dict.fromkeys([*start, *end])
    mixed = {n: (1.0 - fraction) * start.get(n, 0.0) + fraction * end.get(n, 0.0) for n in names}
    return {name: value for name, value in mixed.items() if value > 0}


def ramp_mixes(start: Mapping[str, float], end: Mapping[str, float], n: int) -> list[dict[str, float]]:
    """The mixes of a ramp's ``n`` tokens: token j gets :func:`interpolate_mix` at ``j / (n − 1)``,
    so the first token has the start mix and the last the end mix (one token: the start)."""
    return [interpolate_mix(start, end, j / (n - 1) if n > 1 else 0.0) for j in range(n)]


def token_frames(durations: torch.Tensor, frames: int) -> torch.Tensor:
    """``LongTensor [frames]``: the token each mel frame belongs to, from ``durations [L]``
    (frames per token, the encoder's alignment); frames past the last token (padding) belong to
    the last token."""
    counts = durations.detach().round().long().cpu().clamp_min(0)
    index = torch.repeat_interleave(torch.arange(len(counts)), counts)[:frames]
    return torch.cat([index, index.new_full((frames - len(index),), len(counts) - 1)])


def cross_fade(weights: torch.Tensor, half_width: int) -> torch.Tensor:
    """``weights [M, T]`` with each change along the frames spread over ``2h + 1`` frames: the
    mean over frames ``n − h … n + h`` (edges repeated), taken only where that window sees a
    change, so constant stretches keep their exact values. A step from a (frames < s) to b
    (frames ≥ s) becomes ``a + (b − a)(n − s + h + 1)/(2h + 1)`` for ``s − h ≤ n < s + h``."""
    if half_width <= 0 or weights.shape[-1] < 2:
        return weights
    width = 2 * half_width + 1
    padded = F.pad(weights[None], (half_width, half_width), mode="replicate")[0]
    windows = padded.unfold(-1, width, 1)  # [M, T, 2h + 1]
    changing = windows.amax(-1) != windows.amin(-1)
    return torch.where(changing, windows.mean(-1), weights)


def cross_fade_half_width(transition_ms: float, frames_per_second: float) -> int:
    """h of :func:`cross_fade` for a transition of ``transition_ms``: ``2h + 1`` frames as close
    to it as can be, ``round(ms · fps / 2000)``; 0 (a hard switch) below about two frames."""
    return max(0, round(float(transition_ms) * frames_per_second / 2000.0))


class FrameMix:
    """Mixing weights that change along one utterance's mel frames, γ_i(n).

    ``token_mixes``: each token's normalised mix (e.g. from inline tags; a ramp's interpolated);
    ``durations [L]``: frames per token (the encoder's); ``frames``: the mel length T (padding
    frames take the last token's mix); ``half_width``: changes cross-fade over ``2h + 1`` frames
    (:func:`cross_fade`). :meth:`active` applies the k_max/k_min window to each token's mix
    (:func:`plan_schedule`), then lays the result on the frames and cross-fades it; an emotion
    whose weight is the same on every frame comes back as a plain float, so constant weights
    are exactly the global mix."""

    def __init__(self, token_mixes: list[Mapping[str, float]], durations: torch.Tensor,
                 frames: int, half_width: int = 0):
        if len(token_mixes) != len(durations):
            raise ValueError(f"{len(token_mixes)} token mixes for {len(durations)} durations")
        self.token_mixes = [dict(mix) for mix in token_mixes]
        self.index = token_frames(durations, frames)
        self.half_width = int(half_width)
        self._laid: dict[tuple, dict[str, float | torch.Tensor]] = {}

    @property
    def emotions(self) -> list[str]:
        """Every emotion with a positive weight somewhere, in order of appearance."""
        return list(dict.fromkeys(n for mix in self.token_mixes for n, w in mix.items() if w > 0))

    def active(self, k_max: float, k_min: float, level: float) -> dict[str, float | torch.Tensor]:
        """The weights at noise level ``level``: a float (the same on every frame) or a float64
        ``[T]`` per emotion, summing to 1 on each frame."""
        plans = [plan_schedule(mix, k_max, k_min, level) for mix in self.token_mixes]
        key = tuple(tuple(plan.items()) for plan in plans)
        if key not in self._laid:  # one lay-out per window regime
            names = list(dict.fromkeys(n for plan in plans for n in plan))
            per_token = torch.tensor([[plan.get(n, 0.0) for plan in plans] for n in names],
                                     dtype=torch.float64)  # [M, L]
            laid = cross_fade(per_token[:, self.index], self.half_width)  # [M, T]
            self._laid[key] = {n: float(row[0]) if bool((row == row[0]).all()) else row
                               for n, row in zip(names, laid, strict=True)}
        return self._laid[key]


def _per_utterance(vector: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    """[D] or [B, D] -> [B, D]."""
    if vector is None:
        return None
    if vector.dim() == 1:
        return vector.unsqueeze(0).expand(batch, -1)
    if vector.shape[0] != batch:
        raise ValueError(f"condition batch {vector.shape[0]} != utterance batch {batch}")
    return vector


class MixedOutput:
    """Callable ``(x[B,80,T], t) -> Σ_i γ_i(t) o_θ(x, t, μ, s, e_i)`` for the conditions active
    at t (o: score or velocity, whichever the model's family outputs).

    ``conditions`` maps each emotion name to ``(emotion_vec [D] or [B, D], spk_vec [S] or
    [B, S] or None)``. ``model.network_output(x, mask, mu, t, emotion, spk)`` is called ONCE per
    evaluation on a batch of ``B × M`` rows (M = active conditions; utterance-major), with x, μ
    and mask broadcast across conditions (a view when B = 1); ``model.noise_level(t)`` maps the
    family's time to the window's unit. ``weights``: one mix, or a :class:`FrameMix` whose
    weights change along the frames (one utterance: every row is weighted frame by frame). ``sequential=True`` makes M separate calls instead (the
    benchmark's baseline); both give the same result. ``n_forward`` counts the model calls and
    ``n_evaluations`` the evaluations of the mix. ``guidance`` w ≠ 1 adds the ``reference`` row
    (:class:`Reference`; default: the null emotion at the same μ) to the same call.
    ``smoothing`` σ > 0 (mel bins) smooths the guidance term along frequency:
    ``o = o_mix + (w − 1)·G_σ(o_mix − o_ref)`` (:func:`smooth_frequencies`; σ = 0 is the plain
    ``o_ref + w(o_mix − o_ref)``), so guidance moves the spectral envelope and leaves the harmonics
    to the mix (docs/DESIGN.md §1.4). ``interval`` g: guidance acts only at the steps whose noise
    level is ≤ g (1 = every step); above it the output is plain Eq. 8 and no reference row is
    computed (:func:`guidance_at`).
    """

    def __init__(
        self,
        model,
        mu: torch.Tensor,
        mask: torch.Tensor,
        conditions: Mapping[str, tuple[torch.Tensor, torch.Tensor | None]],
        weights: Mapping[str, float] | FrameMix,
        k_max: float = 1.0,
        k_min: float = 0.0,
        sequential: bool = False,
        guidance: float = 1.0,
        reference: Reference | None = None,
        smoothing: float = 0.0,
        interval: float = 1.0,
    ):
        _check_thresholds(k_max, k_min)
        check_smoothing(smoothing)
        check_interval(interval)
        self.smoothing, self.interval = float(smoothing), float(interval)
        self.reference = reference or Reference()
        check_guidance(model, guidance, self.reference.name)
        per_frame = isinstance(weights, FrameMix)
        names = weights.emotions if per_frame else [n for n, w in weights.items() if w > 0]
        missing = [name for name in names if name not in conditions]
        if self.reference.condition is not None and self.reference.condition not in conditions:
            missing.append(self.reference.condition)
        if missing:
            raise ValueError(f"no condition vectors for {missing}")
        self.model, self.mu, self.mask = model, mu, mask
        self.mu_reference = mu if self.reference.mu is None else self.reference.mu
        self.weights = weights if per_frame else dict(weights)
        self.k_max, self.k_min, self.sequential = k_max, k_min, sequential
        self.guidance = float(guidance)
        batch = mu.shape[0]
        self.conditions = {
            name: (_per_utterance(emotion, batch), _per_utterance(spk, batch))
            for name, (emotion, spk) in conditions.items()
        }
        self.n_forward = 0
        self.n_evaluations = 0

    def active(self, t: float) -> dict[str, float | torch.Tensor]:
        """The weights in use at the model's time ``t`` (see :func:`plan_schedule`); with a
        :class:`FrameMix`, a ``[T]`` tensor for each weight that changes along the frames."""
        level = self.model.noise_level(float(t))
        if isinstance(self.weights, FrameMix):
            return self.weights.active(self.k_max, self.k_min, level)
        return plan_schedule(self.weights, self.k_max, self.k_min, level)

    def __call__(self, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        t = float(t)
        active = self.active(t)
        guidance = guidance_at(self.guidance, self.interval, self.model.noise_level(t))
        rows = guided_coefficients(active, guidance)  # [(name | None, coefficient)]
        self.n_evaluations += 1
        names = [name for name, _ in rows]
        if self.sequential:
            outputs = torch.stack([self._forward(x, t, [name]) for name in names], dim=1)
        else:
            outputs = self._forward(x, t, names).view(x.shape[0], len(rows), *x.shape[1:])
        if self.smoothing > 0 and guidance != 1.0:  # the last row is the reference
            mix = _combine(outputs[:, :-1], [c for _, c in guided_coefficients(active, 1.0)], x)
            return mix + (guidance - 1.0) * smooth_frequencies(mix - outputs[:, -1], self.smoothing)
        return _combine(outputs, [c for _, c in rows], x)

    def _forward(self, x: torch.Tensor, t: float, names: list[str | None]) -> torch.Tensor:
        """One model call on ``B × len(names)`` rows (utterance-major); ``None`` is guidance's
        reference row: the learned null emotion (which borrows any condition's vectors and is
        masked out), or the reference condition at the reference μ (:class:`Reference`)."""
        self.n_forward += 1
        m, batch = len(names), x.shape[0]
        ref = self.reference.condition or next(iter(self.conditions))
        picked = [self.conditions[n if n is not None else ref] for n in names]
        emotion = torch.stack([e for e, _ in picked], dim=1).flatten(0, 1)
        spk = None if picked[0][1] is None else torch.stack([s for _, s in picked], dim=1).flatten(0, 1)
        extra = {}  # only null-guided calls pass the null-row flags (any callable works otherwise)
        if None in names and self.reference.condition is None:
            flags = torch.tensor([n is None for n in names], device=x.device)
            extra["unconditional"] = flags.repeat(batch)
        if None in names and self.mu_reference is not self.mu:
            mu = torch.stack([self.mu_reference if n is None else self.mu for n in names], dim=1).flatten(0, 1)
        else:
            mu = _repeat(self.mu, m)
        times = torch.full((batch * m,), t, dtype=x.dtype, device=x.device)
        return self.model.network_output(_repeat(x, m), _repeat(self.mask, m), mu,
                                         times, emotion, spk, **extra)


def _combine(outputs: torch.Tensor, coefficients: list, x: torch.Tensor) -> torch.Tensor:
    """Σ_m c_m · outputs[:, m] for outputs ``[B, M, ...]``; a c may be a ``[T]`` tensor (one
    weight per frame, on the last axis)."""
    if any(isinstance(c, torch.Tensor) for c in coefficients):  # per frame: γ_i(n)
        frames = torch.stack([torch.as_tensor(c).to(x).expand(x.shape[-1]) for c in coefficients])
        return torch.einsum("bm...t,mt->b...t", outputs, frames)
    weights = torch.tensor(coefficients, dtype=x.dtype, device=x.device)
    return torch.einsum("bm...,m->b...", outputs, weights)


def smooth_frequencies(values: torch.Tensor, sigma: float) -> torch.Tensor:
    """``values [B, F, T]`` convolved along F (the mel bins) with a normalised Gaussian of std
    ``sigma`` bins, truncated at 3σ, the edge bins repeated; σ = 0 returns ``values``."""
    if sigma <= 0:
        return values
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=values.dtype, device=values.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    batch, bins, frames = values.shape
    flat = values.transpose(1, 2).reshape(batch * frames, 1, bins)
    flat = F.conv1d(F.pad(flat, (radius, radius), mode="replicate"), kernel)
    return flat.reshape(batch, frames, bins).transpose(1, 2)


def check_smoothing(smoothing: float) -> None:
    """EmomixError unless the guidance smoothing is a finite number of mel bins ≥ 0."""
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise EmomixError(f"guidance smoothing must be a finite number of mel bins ≥ 0, got {smoothing}; "
                          f"0 turns it off")


def guidance_at(guidance: float, interval: float, level: float) -> float:
    """The guidance w in use at noise ``level`` (1 = noise, 0 = data): ``guidance`` inside the
    interval ``level ≤ interval``, else 1 (plain Eq. 8). Guidance in a limited interval
    (Kynkäänniemi et al., 2024): at high noise levels its push drives the sample off the data
    (docs/DESIGN.md §1.4). The comparison allows float rounding (1 − 0.3 is 0.7000000000000001)."""
    return float(guidance) if level <= interval + 1e-6 else 1.0


def check_interval(interval: float) -> None:
    """EmomixError unless the guidance interval is a noise level in [0, 1]."""
    if not (math.isfinite(interval) and 0.0 <= interval <= 1.0):
        raise EmomixError(f"guidance interval must be a noise level in [0, 1], got {interval}; "
                          "1 guides every step, 0.6 only the quieter steps")


def check_guidance(model, guidance: float, reference: str = NULL) -> None:
    """Guidance w must be finite and ≥ 0 and the reference one of :data:`GUIDANCE_REFERENCES`;
    w ≠ 1 from the null reference needs a model trained with condition dropout."""
    if not math.isfinite(guidance) or guidance < 0:
        raise EmomixError(f"guidance must be a finite number ≥ 0, got {guidance}")
    if reference not in GUIDANCE_REFERENCES:
        raise EmomixError(f"unknown guidance reference '{reference}'; use {', '.join(GUIDANCE_REFERENCES)}")
    if guidance != 1.0 and reference == NULL and not getattr(model, "supports_guidance", False):
        raise EmomixError(
            f"guidance {guidance:g} from the null emotion needs a model trained with condition "
            "dropout (model.cond_dropout > 0); use --guidance-reference neutral or --guidance 1"
        )


def guided_coefficients(active: Mapping[str, float | torch.Tensor],
                        guidance: float) -> list[tuple[str | None, float | torch.Tensor]]:
    """Rows and coefficients of ``o = o_ref + w Σ γ_i (o_i − o_ref)`` (docs/DESIGN.md §1.4), o
    the score or the velocity, o_ref the reference row (the null emotion or Neutral speech).

    w = 1 gives exactly Eq. 8, ``Σ γ_i s_i`` with no reference row; otherwise the reference row
    (None) gets ``1 − w Σ γ_i`` and each emotion ``w γ_i``. A γ may be a ``[T]`` tensor (one
    weight per frame, :class:`FrameMix`); the formula then holds frame by frame."""
    rows: list[tuple[str | None, float | torch.Tensor]] = [
        (n, g if isinstance(g, torch.Tensor) else float(g)) for n, g in active.items()]
    if guidance == 1.0:
        return rows
    null = 1.0 - guidance * sum(g for _, g in rows)
    return [(n, guidance * g) for n, g in rows] + [(None, null)]


def guided_durations(logw_reference: torch.Tensor, logw_mix: torch.Tensor, guidance: float,
                     x_mask: torch.Tensor, length_scale: float = 1.0) -> torch.Tensor:
    """Frames per token under guidance from a reference timing (docs/DESIGN.md §1.4):
    ``ceil(exp(log w_ref + w (log w_mix − log w_ref)) · length_scale)`` on the tokens of
    ``x_mask``, 0 elsewhere; all ``[B, 1, L]``. w = 1 gives the mix's own durations."""
    logw = logw_reference + guidance * (logw_mix - logw_reference)
    return torch.ceil(torch.exp(logw) * x_mask * length_scale)


def _repeat(tensor: torch.Tensor, m: int) -> torch.Tensor:
    """[B, ...] -> [B*m, ...] utterance-major; a stride-0 view when B == 1."""
    if m == 1:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(m, *tensor.shape[1:])
    return tensor.repeat_interleave(m, dim=0)
