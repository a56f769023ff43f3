"""Hypervolume of a set of cost vectors (minimisation) with respect to a reference point.

Two exact methods: a sort-and-sweep for two objectives (O(n log n)) and recursive slicing
along the last objective for any small number of objectives (fine for a few hundred points
in 3-4 dimensions, which is what Pareto fronts of subnets look like).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nas.errors import ConfigError


def _filter(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rows strictly better than the reference in every objective (others add no volume)."""
    return points[(points < reference).all(axis=1)]


def hypervolume_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact 2-D hypervolume dominated by `points` (n, 2) and bounded by `reference` (2,)."""
    pts = _filter(np.asarray(points, dtype=np.float64), np.asarray(reference, dtype=np.float64))
    if pts.shape[0] == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]  # by x, then y
    volume = 0.0
    best_y = float(reference[1])
    for x, y in pts:
        if y < best_y:  # a new step of the staircase
            volume += (float(reference[0]) - x) * (best_y - y)
            best_y = float(y)
    return volume


def _slice_volume(points: np.ndarray, reference: np.ndarray) -> float:
    """Recursive slicing: sweep the last objective, measure (d-1)-D slabs."""
    dims = points.shape[1]
    if points.shape[0] == 0:
        return 0.0
    if dims == 1:
        return float(reference[0] - points[:, 0].min())
    if dims == 2:
        return hypervolume_2d(points, reference)
    order = np.argsort(points[:, -1], kind="stable")
    pts = points[order]
    volume = 0.0
    for i in range(pts.shape[0]):
        upper = pts[i + 1, -1] if i + 1 < pts.shape[0] else reference[-1]
        depth = float(upper - pts[i, -1])
        if depth > 0:
            volume += depth * _slice_volume(pts[: i + 1, :-1], reference[:-1])
    return volume


def hypervolume(
    points: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float]
) -> float:
    """Exact hypervolume of cost vectors `points` (n, m) w.r.t. `reference` (m,).

    All objectives are minimised; points not strictly better than the reference in every
    objective contribute nothing.

    Raises:
        ConfigError: when the shapes of `points` and `reference` disagree.
    """
    pts = np.asarray(points, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if pts.size == 0:
        return 0.0
    if pts.ndim != 2 or ref.ndim != 1 or pts.shape[1] != ref.shape[0]:
        raise ConfigError(
            f"hypervolume: expected points (n, m) and a reference of length m, "
            f"got {pts.shape} and {ref.shape}"
        )
    pts = _filter(pts, ref)
    if pts.shape[1] == 2:
        return hypervolume_2d(pts, ref)
    return _slice_volume(pts, ref)
