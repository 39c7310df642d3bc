import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasstudio.search import Direction, hypervolume_2d, pareto_front_2d


def brute_force_front(x, y):
    """Minimise x, maximise y, by definition."""
    return {
        i
        for i in range(len(x))
        if not any(
            x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i]) for j in range(len(x))
        )
    }


@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), max_size=40))
@settings(max_examples=200, deadline=None)
def test_front_matches_the_definition_including_ties(points):
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    front = pareto_front_2d(x, y)
    assert set(front.tolist()) == brute_force_front(x, y)
    assert list(x[front]) == sorted(x[front])


def test_directions_and_nan():
    x = np.array([1.0, 2.0, 3.0, np.nan])
    y = np.array([1.0, 2.0, 3.0, 9.0])
    assert pareto_front_2d(x, y).tolist() == [0, 1, 2]
    assert pareto_front_2d(x, y, Direction.MINIMIZE, Direction.MINIMIZE).tolist() == [0]
    assert pareto_front_2d(x, y, Direction.MAXIMIZE, Direction.MAXIMIZE).tolist() == [2]
    assert pareto_front_2d([], []).tolist() == []
    with pytest.raises(ValueError):
        pareto_front_2d([1.0], [1.0, 2.0])


def test_hypervolume_of_two_points():
    # Rectangles [1,3]x[0,2] and [2,3]x[0,3] under reference (3, 0): union area 5.
    assert hypervolume_2d([1, 2], [2, 3], reference=(3, 0)) == pytest.approx(5.0)
    # Dominated and out-of-reference points add nothing.
    assert hypervolume_2d([1, 2, 1.5, 4], [2, 3, 1, 9], reference=(3, 0)) == pytest.approx(5.0)
    assert hypervolume_2d([], [], reference=(3, 0)) == 0.0


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
@settings(max_examples=100, deadline=None)
def test_hypervolume_matches_a_grid_estimate(points):
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    grid = (np.arange(200) + 0.5) / 200
    gx, gy = np.meshgrid(grid, grid)
    covered = np.zeros_like(gx, dtype=bool)
    for px, py in points:
        covered |= (gx >= px) & (gy <= py)
    assert hypervolume_2d(x, y, reference=(1, 0)) == pytest.approx(covered.mean(), abs=0.02)
