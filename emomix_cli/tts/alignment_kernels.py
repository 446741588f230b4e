"""The numba-compiled loops of :func:`~.alignment.maximum_path` (its only importer, on first use).

Compiled once per machine (``cache=True`` keeps the machine code beside this file).
"""

from __future__ import annotations

import numba

_NEG = -1e9


@numba.njit(cache=True)
def _maximum_path_each(path, value, t_x, t_y):  # pragma: no cover - compiled
    """Fill ``path[:t_x, :t_y]`` for one item; ``value`` (float64) is overwritten by the DP."""
    for y in range(t_y):
        for x in range(max(0, t_x + y - t_y), min(t_x, y + 1)):
            stay = _NEG if x == y else value[x, y - 1]
            if x == 0:
                move = 0.0 if y == 0 else _NEG
            else:
                move = value[x - 1, y - 1]
            value[x, y] += max(stay, move)
    index = t_x - 1
    for y in range(t_y - 1, -1, -1):
        path[index, y] = 1.0
        if index != 0 and (index == y or value[index, y - 1] < value[index - 1, y - 1]):
            index -= 1


@numba.njit(cache=True)
def maximum_path_batch(path, value, t_xs, t_ys):  # pragma: no cover - compiled
    """:func:`_maximum_path_each` for every item ``b`` of ``path, value [B, Tx, Ty]``."""
    for b in range(value.shape[0]):
        _maximum_path_each(path[b], value[b], t_xs[b], t_ys[b])
