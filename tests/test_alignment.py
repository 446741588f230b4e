"""Monotonic alignment search against exhaustive enumeration; duration → path helpers."""

from __future__ import annotations

import itertools

import pytest
import torch

from emomix_cli.tts.alignment import generate_path, maximum_path, path_durations


def _compositions(total: int, parts: int):
    """All duration vectors of ``parts`` positive integers summing to ``total``."""
    for cuts in itertools.combinations(range(1, total), parts - 1):
        bounds = (0, *cuts, total)
        yield [bounds[i + 1] - bounds[i] for i in range(parts)]


def _best_score(value: torch.Tensor) -> float:
    t_x, t_y = value.shape
    best = -float("inf")
    for durations in _compositions(t_y, t_x):
        token = [x for x, d in enumerate(durations) for _ in range(d)]
        best = max(best, sum(float(value[x, y]) for y, x in enumerate(token)))
    return best


def _assert_valid_path(path: torch.Tensor, t_x: int, t_y: int) -> None:
    assert torch.all(path[t_x:] == 0) and torch.all(path[:, t_y:] == 0)
    block = path[:t_x, :t_y]
    assert torch.all(block.sum(0) == 1), "every frame belongs to exactly one token"
    token = block.argmax(0)
    steps = token[1:] - token[:-1]
    assert torch.all((steps == 0) | (steps == 1)), "monotonic, one token at a time"
    assert token[0] == 0 and token[-1] == t_x - 1


@pytest.mark.parametrize("seed", range(6))
def test_maximum_path_equals_exhaustive_search(seed):
    gen = torch.Generator().manual_seed(seed)
    t_x, t_y = 2 + seed % 3, 6 + seed % 3
    value = torch.randn(1, t_x, t_y, generator=gen)
    path = maximum_path(value, torch.ones_like(value))
    _assert_valid_path(path[0], t_x, t_y)
    assert float((value * path).sum()) == pytest.approx(_best_score(value[0]), abs=1e-5)


def test_maximum_path_respects_each_items_masked_lengths():
    gen = torch.Generator().manual_seed(10)
    lengths = [(3, 7), (2, 4), (4, 8)]
    value = torch.randn(3, 4, 9, generator=gen) * 3
    mask = torch.zeros_like(value)
    for b, (t_x, t_y) in enumerate(lengths):
        mask[b, :t_x, :t_y] = 1
    path = maximum_path(value, mask)
    for b, (t_x, t_y) in enumerate(lengths):
        _assert_valid_path(path[b], t_x, t_y)
        alone = maximum_path(value[b : b + 1, :t_x, :t_y], torch.ones(1, t_x, t_y))
        assert torch.equal(path[b, :t_x, :t_y], alone[0])
        assert float((value[b, :t_x, :t_y] * alone[0]).sum()) == pytest.approx(
            _best_score(value[b, :t_x, :t_y]), abs=1e-5
        )


def test_equal_lengths_give_the_diagonal():
    value = torch.randn(1, 5, 5)
    assert torch.equal(maximum_path(value, torch.ones_like(value))[0], torch.eye(5))


def test_a_clear_optimum_is_found():
    # token 0 likes frames 0-1, token 1 frames 2-5, token 2 frames 6-7
    value = torch.full((1, 3, 8), -5.0)
    value[0, 0, :2] = value[0, 1, 2:6] = value[0, 2, 6:] = 0.0
    path = maximum_path(value, torch.ones_like(value))
    assert path_durations(path).tolist() == [[2.0, 4.0, 2.0]]


def test_more_tokens_than_frames_is_rejected():
    with pytest.raises(ValueError, match="more tokens"):
        maximum_path(torch.zeros(1, 4, 3), torch.ones(1, 4, 3))


def test_generate_path_lays_durations_end_to_end():
    mask = torch.ones(1, 3, 8)
    mask[:, :, 7:] = 0
    path = generate_path(torch.tensor([[2.0, 1.0, 3.0]]), mask)
    expected = torch.tensor(
        [[1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0]],
        dtype=torch.float32,
    )
    assert torch.equal(path[0], expected)
