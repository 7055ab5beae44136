"""Light-space cells (``raster/light_grids.py``): every cell lists every instance whose footprint covers it, in reach
order, for distant and point lights, boxes inside the grid and reaching outside it."""

from __future__ import annotations

import numpy as np
import pytest
from sdgstudio.core.raster.light_grids import light_grid
from sdgstudio.core.raster.materials import Light

_UNIT = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), -1).reshape(8, 3)


def _boxes(rng, n: int):
    lo = rng.uniform(-2.0, 2.0, (n, 3))
    hi = lo + rng.uniform(0.02, 0.6, (n, 3))
    hi[0] = lo[0] + [6.0, 6.0, 0.05]  # a floor: too large to set the grid's extent, it reaches outside it
    corners = np.where(_UNIT[None] == 1, hi[:, None, :], lo[:, None, :])
    return lo, hi, corners


def _cell(grid, face: int, s: float, t: float) -> int:
    """The cell a shadow ray starting at light-space (s, t) on ``face`` reads (``shadows.light_cell``)."""
    g = grid.grid
    o_s, o_t, inv = grid.face_geo[face]
    cs, ct = (s - o_s) * inv, (t - o_t) * inv
    base = face * (g * g + 1)
    return base + int(ct) * g + int(cs) if 0 <= cs < g and 0 <= ct < g else base + g * g


@pytest.mark.parametrize("kind", [0, 1])
def test_every_cell_lists_what_covers_it_in_reach_order(kind):
    rng = np.random.default_rng(11 + kind)
    lo, hi, corners = _boxes(rng, 40)
    light = Light(0, np.ones(3), np.array([0.3, -0.4, 0.87])) if kind == 0 else Light(1, np.ones(3),
                                                                                      np.array([0.2, 0.1, 3.0]))
    grid = light_grid(light, lo, hi, corners)
    lists = {c: grid.cell_items[grid.cell_start[c]:grid.cell_start[c + 1]] for c in range(len(grid.cell_start) - 1)}
    for cell_list in lists.values():  # reach order: descending for a distant light, ascending for a point light
        r = grid.reach[cell_list]
        assert np.all(np.diff(r) <= 0) if kind == 0 else np.all(np.diff(r) >= 0)
    checked = 0
    for k in range(len(lo)):
        for _ in range(25):  # points on the box's surface and inside it: rays from there must meet this box's cell
            p = rng.uniform(lo[k], hi[k])
            if kind == 0:
                face, s, t = 0, p @ grid.lvec[1], p @ grid.lvec[2]
            else:
                v = p - grid.lvec[0]
                a = int(np.argmax(np.abs(v)))
                if abs(v[a]) == 0:
                    continue
                face, s, t = 2 * a + int(v[a] < 0), v[(a + 1) % 3] / abs(v[a]), v[(a + 2) % 3] / abs(v[a])
            assert k in lists[_cell(grid, face, s, t)], (k, face, s, t)
            checked += 1
    assert checked > 900
    outside = [c for c in lists if (c + 1) % (grid.grid ** 2 + 1) == 0 and len(lists[c])]
    assert outside or kind == 1, "the floor reaches outside the distant light's grid"


def test_no_instances():
    grid = light_grid(Light(1, np.ones(3), np.zeros(3)), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 8, 3)))
    assert len(grid.cell_items) == 0 and grid.cell_start[-1] == 0
