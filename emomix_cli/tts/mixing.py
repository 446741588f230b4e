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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

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
    family's time to the window's unit. ``sequential=True`` makes M separate calls instead (the
    benchmark's baseline); both give the same result. ``n_forward`` counts the model calls and
    ``n_evaluations`` the evaluations of the mix. ``guidance`` w ≠ 1 adds the ``reference`` row
    (:class:`Reference`; default: the null emotion at the same μ) to the same call.
    """

    def __init__(
        self,
        model,
        mu: torch.Tensor,
        mask: torch.Tensor,
        conditions: Mapping[str, tuple[torch.Tensor, torch.Tensor | None]],
        weights: Mapping[str, float],
        k_max: float = 1.0,
        k_min: float = 0.0,
        sequential: bool = False,
        guidance: float = 1.0,
        reference: Reference | None = None,
    ):
        _check_thresholds(k_max, k_min)
        self.reference = reference or Reference()
        check_guidance(model, guidance, self.reference.name)
        missing = [name for name, w in weights.items() if w > 0 and name not in conditions]
        if self.reference.condition is not None and self.reference.condition not in conditions:
            missing.append(self.reference.condition)
        if missing:
            raise ValueError(f"no condition vectors for {missing}")
        self.model, self.mu, self.mask = model, mu, mask
        self.mu_reference = mu if self.reference.mu is None else self.reference.mu
        self.weights = dict(weights)
        self.k_max, self.k_min, self.sequential = k_max, k_min, sequential
        self.guidance = float(guidance)
        batch = mu.shape[0]
        self.conditions = {
            name: (_per_utterance(emotion, batch), _per_utterance(spk, batch))
            for name, (emotion, spk) in conditions.items()
        }
        self.n_forward = 0
        self.n_evaluations = 0

    def active(self, t: float) -> dict[str, float]:
        """The weights in use at the model's time ``t`` (see :func:`plan_schedule`)."""
        return plan_schedule(self.weights, self.k_max, self.k_min, self.model.noise_level(float(t)))

    def __call__(self, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        t = float(t)
        rows = guided_coefficients(self.active(t), self.guidance)  # [(name | None, coefficient)]
        self.n_evaluations += 1
        if self.sequential:
            return sum(c * self._forward(x, t, [name]) for name, c in rows)
        m, batch = len(rows), x.shape[0]
        scores = self._forward(x, t, [name for name, _ in rows]).view(batch, m, *x.shape[1:])
        coefficients = torch.tensor([c for _, c in rows], dtype=x.dtype, device=x.device)
        return torch.einsum("bm...,m->b...", scores, coefficients)

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


def guided_coefficients(active: Mapping[str, float], guidance: float) -> list[tuple[str | None, float]]:
    """Rows and coefficients of ``o = o_ref + w Σ γ_i (o_i − o_ref)`` (docs/DESIGN.md §1.4), o
    the score or the velocity, o_ref the reference row (the null emotion or Neutral speech).

    w = 1 gives exactly Eq. 8, ``Σ γ_i s_i`` with no reference row; otherwise the reference row
    (None) gets ``1 − w Σ γ_i`` and each emotion ``w γ_i``."""
    rows: list[tuple[str | None, float]] = [(n, float(g)) for n, g in active.items()]
    if guidance == 1.0:
        return rows
    null = 1.0 - guidance * sum(g for _, g in rows)
    return [(n, guidance * g) for n, g in rows] + [(None, null)]


def _repeat(tensor: torch.Tensor, m: int) -> torch.Tensor:
    """[B, ...] -> [B*m, ...] utterance-major; a stride-0 view when B == 1."""
    if m == 1:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(m, *tensor.shape[1:])
    return tensor.repeat_interleave(m, dim=0)
