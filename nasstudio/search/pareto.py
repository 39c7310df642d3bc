"""Non-dominated sets and hypervolume for two objectives, each maximised or minimised."""

from __future__ import annotations

from enum import Enum

import numpy as np
from numpy.typing import ArrayLike


class Direction(Enum):
    MINIMIZE = 1.0
    MAXIMIZE = -1.0


def _as_minimized(values: ArrayLike, direction: Direction) -> np.ndarray:
    return np.asarray(values, dtype=np.float64) * direction.value


def pareto_front_2d(
    x: ArrayLike,
    y: ArrayLike,
    x_direction: Direction = Direction.MINIMIZE,
    y_direction: Direction = Direction.MAXIMIZE,
) -> np.ndarray:
    """Indices of the non-dominated points, ordered by x (best x first). O(n log n).

    A point is dominated when another is at least as good in both objectives and better in one;
    exact duplicates of a front point are all on the front. Points with a NaN are never on it.
    """
    xs, ys = _as_minimized(x, x_direction), _as_minimized(y, y_direction)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-d of one length, got {xs.shape} and {ys.shape}")
    valid = np.flatnonzero(~(np.isnan(xs) | np.isnan(ys)))
    if valid.size == 0:
        return valid
    order = valid[np.lexsort((ys[valid], xs[valid]))]
    sx, sy = xs[order], ys[order]
    new_group = np.ones(sx.size, dtype=bool)
    new_group[1:] = (sx[1:] != sx[:-1]) | (sy[1:] != sy[:-1])
    # Best y among all points strictly before each point in (x, y) order.
    best_before = np.empty_like(sy)
    best_before[0] = np.inf
    np.minimum.accumulate(sy[:-1], out=best_before[1:])
    group_starts = np.flatnonzero(new_group)
    best_before_group = best_before[group_starts][np.cumsum(new_group) - 1]
    return order[sy < best_before_group]


def hypervolume_2d(
    x: ArrayLike,
    y: ArrayLike,
    reference: tuple[float, float],
    x_direction: Direction = Direction.MINIMIZE,
    y_direction: Direction = Direction.MAXIMIZE,
) -> float:
    """Area dominated by the points and bounded by ``reference`` (a worst-case point)."""
    xs, ys = _as_minimized(x, x_direction), _as_minimized(y, y_direction)
    ref_x, ref_y = reference[0] * x_direction.value, reference[1] * y_direction.value
    inside = (xs < ref_x) & (ys < ref_y)
    xs, ys = xs[inside], ys[inside]
    front = pareto_front_2d(xs, ys, Direction.MINIMIZE, Direction.MINIMIZE)
    fx, fy = xs[front], ys[front]
    if fx.size == 0:
        return 0.0
    widths = np.diff(np.append(fx, ref_x))
    return float(np.sum(widths * (ref_y - fy)))
