"""Emotion mixing (EmoMix Eq. 8) as a wrapper around the score model.

``s_mix(x_t, t) = Σ_i γ_i s_θ(x_t, t, μ, s, e_i)``: the reverse update is linear in the score,
so mixing scores equals mixing noise predictions. :class:`MixedScore` is a plain callable
``(x, t) -> score`` (the k-diffusion pattern), so every sampler in :mod:`.sampling` mixes for
free. The active conditions at ``t`` follow :func:`plan_schedule` (two thresholds on t):

- ``t > k_max``: the base emotion alone (the largest weight; ties: the first given);
- ``k_min <= t <= k_max``: the full combination;
- ``t < k_min``: the mixed-in emotions alone, renormalised (the base when there are none).

Intensity is mixing with Neutral: :func:`normalise_weights` gives a sum ``w < 1`` the
remainder ``1 − w`` on Neutral; sums above 1 are an error, never silently renormalised.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

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
    """The emotions active at diffusion time ``t`` and their weights (summing to 1)."""
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


def condition_for_encoder(
    prototypes: Mapping[str, torch.Tensor], weights: Mapping[str, float], mode: str = "weighted"
) -> torch.Tensor:
    """The encoder/duration condition: ``Σ γ_i p_i`` ("weighted") or the base's prototype ("base")."""
    if mode == "base":
        return prototypes[base_emotion(weights)].clone()
    if mode != "weighted":
        raise EmomixError(f"unknown encoder condition mode '{mode}'; use 'weighted' or 'base'")
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


class MixedScore:
    """Callable ``(x[B,80,T], t) -> Σ_i γ_i(t) s_θ(x, t, μ, s, e_i)`` for the conditions active at t.

    ``conditions`` maps each emotion name to ``(emotion_vec [D] or [B, D], spk_vec [S] or
    [B, S] or None)``. ``model.score(x, mask, mu, t, emotion, spk)`` is called ONCE per step on
    a batch of ``B × M`` rows (M = active conditions; utterance-major), with x, μ and mask
    broadcast across conditions (a view when B = 1). ``sequential=True`` makes M separate calls
    instead (the benchmark's baseline); both give the same result. ``n_forward`` counts the
    model calls and ``n_evaluations`` the score evaluations.
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
    ):
        _check_thresholds(k_max, k_min)
        missing = [name for name, w in weights.items() if w > 0 and name not in conditions]
        if missing:
            raise ValueError(f"no condition vectors for {missing}")
        self.model, self.mu, self.mask = model, mu, mask
        self.weights = dict(weights)
        self.k_max, self.k_min, self.sequential = k_max, k_min, sequential
        batch = mu.shape[0]
        self.conditions = {
            name: (_per_utterance(emotion, batch), _per_utterance(spk, batch))
            for name, (emotion, spk) in conditions.items()
        }
        self.n_forward = 0
        self.n_evaluations = 0

    def active(self, t: float) -> dict[str, float]:
        """The weights in use at time ``t`` (see :func:`plan_schedule`)."""
        return plan_schedule(self.weights, self.k_max, self.k_min, float(t))

    def __call__(self, x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
        t = float(t)
        active = self.active(t)
        self.n_evaluations += 1
        if self.sequential:
            return sum(gamma * self._forward(x, self.mu, self.mask, t, *self.conditions[name], 1)
                       for name, gamma in active.items())
        names = list(active)
        m, batch = len(names), x.shape[0]
        emotion = torch.stack([self.conditions[n][0] for n in names], dim=1).flatten(0, 1)
        spks = [self.conditions[n][1] for n in names]
        spk = None if spks[0] is None else torch.stack(spks, dim=1).flatten(0, 1)
        scores = self._forward(_repeat(x, m), _repeat(self.mu, m), _repeat(self.mask, m), t,
                               emotion, spk, m)
        gammas = torch.tensor([active[n] for n in names], dtype=x.dtype, device=x.device)
        scores = scores.view(batch, m, *x.shape[1:])
        return torch.einsum("bm...,m->b...", scores, gammas)

    def _forward(self, x, mu, mask, t, emotion, spk, m):
        self.n_forward += 1
        times = torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)
        return self.model.score(x, mask, mu, times, emotion, spk)


def _repeat(tensor: torch.Tensor, m: int) -> torch.Tensor:
    """[B, ...] -> [B*m, ...] utterance-major; a stride-0 view when B == 1."""
    if m == 1:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(m, *tensor.shape[1:])
    return tensor.repeat_interleave(m, dim=0)
