"""Shadow rays: one exact any-hit ray per lit pixel and light, tested only against the instances that can block it.

A shadow ray from ``o`` towards a light stays in one *light-space cell*: for a distant light all rays are parallel,
so a point's coordinates on the plane across the light direction never change along its ray; for a point light every
point of the ray has the same direction from the light (cube-map face and position on it). A face's grid spans the
footprints of its small instances (floors and walls would stretch it); each cell lists the instances whose world box
projects onto it, and one more cell per face lists those reaching outside the grid, for rays that start there. Lists
are built on the host from at most a few hundred boxes per frame (``light_grids.py``) and ordered by *reach*
(distant: the box's highest point along the light direction, descending; point: the box's distance from the
light, ascending), so a ray stops reading as soon as the remaining boxes lie below its origin / beyond its light.
The ray skips its own instance when the pixel's triangle lies on that mesh's convex hull and the pixel sees it from
outside (a ray leaving a hull face outwards cannot meet the mesh again; every face of a convex mesh is one),
slab-tests the rest (world box, then local box), and runs Warp's BVH any-hit
query on meshes whose local box it enters; for a Cube the local box test is the exact test.

The result equals testing every instance: the culls only drop instances the ray provably misses.
"""

from __future__ import annotations

import numpy as np
import warp as wp

from .light_grids import light_grid
from .materials import Light
from .scene import Instance

wp.set_module_options({"fuse_fp": False, "enable_backward": False})

_BIG = 1.0e30


@wp.func
def ray_box(o: wp.vec3, d: wp.vec3, lo: wp.vec3, hi: wp.vec3, tmax: float) -> bool:
    """Slab test of the ray segment ``o + t d``, ``t`` in ``[0, tmax]``, against the box ``[lo, hi]``."""
    return ray_box_inv(o, inverse_dir(d), lo, hi, tmax)


@wp.func
def inverse_dir(d: wp.vec3) -> wp.vec3:
    return wp.vec3(wp.where(wp.abs(d[0]) > 1.0e-30, 1.0 / d[0], _BIG),
                   wp.where(wp.abs(d[1]) > 1.0e-30, 1.0 / d[1], _BIG),
                   wp.where(wp.abs(d[2]) > 1.0e-30, 1.0 / d[2], _BIG))


@wp.func
def ray_box_inv(o: wp.vec3, inv: wp.vec3, lo: wp.vec3, hi: wp.vec3, tmax: float) -> bool:
    """:func:`ray_box` with the direction's componentwise inverse (:func:`inverse_dir`) precomputed."""
    t0 = wp.float32(0.0)
    t1 = tmax
    for a in range(3):
        ta = (lo[a] - o[a]) * inv[a]
        tb = (hi[a] - o[a]) * inv[a]
        t0 = wp.max(t0, wp.min(ta, tb))
        t1 = wp.min(t1, wp.max(ta, tb))
    return t0 <= t1


@wp.func
def occluded(items: wp.array(dtype=wp.int32), start: int, stop: int, own: int, own_hull: int,
             reach: wp.array(dtype=wp.float32),
             roff: int, level: float, sign: float, o: wp.vec3, p: wp.vec3, n: wp.vec3, ldir: wp.vec3, maxd: float,
             shape: wp.array(dtype=wp.int32), centroid: wp.array(dtype=wp.vec3), wlo: wp.array(dtype=wp.vec3),
             whi: wp.array(dtype=wp.vec3), mesh_ids: wp.array(dtype=wp.uint64), w2l: wp.array(dtype=wp.mat44),
             lo: wp.array(dtype=wp.vec3), hi: wp.array(dtype=wp.vec3)) -> int:
    """1 when one of ``items[start:stop]`` blocks the ray ``o + t ldir``, ``0 < t < maxd``; the items are ordered
    so that ``sign * reach[roff + k]`` decreases, and the loop stops at the first that cannot reach ``level``.
    The pixel's own instance ``own`` is skipped when its triangle is on the hull (``own_hull``) and seen from
    outside. ``shape`` bit 2: the mesh is its local box ``[lo, hi]`` (else that box is padded and filters the BVH
    query)."""
    inv = wp.vec3(0.0)
    have_inv = wp.int32(0)  # the inverse direction, computed on the first box test (most rays need none)
    for q in range(start, stop):
        k = items[q]
        if sign * reach[roff + k] < sign * level:
            return 0
        if k == own:
            if own_hull != 0:
                if wp.dot(n, p - centroid[k]) >= 0.0:
                    continue
        if have_inv == 0:
            inv = inverse_dir(ldir)
            have_inv = 1
        if not ray_box_inv(o, inv, wlo[k], whi[k], maxd):
            continue
        m = w2l[k]
        lo_ = wp.transform_point(m, o)
        ld = wp.transform_vector(m, ldir)
        if ray_box(lo_, ld, lo[k], hi[k], maxd):
            if (shape[k] & 2) != 0:
                return 1
            if wp.mesh_query_ray_anyhit(mesh_ids[k], lo_, ld, maxd):
                return 1
    return 0


@wp.func
def light_cell(kind: int, o: wp.vec3, light: wp.vec3, e1: wp.vec3, e2: wp.vec3, grid: int,
               face_geo: wp.array(dtype=wp.vec3), face_base: wp.array(dtype=wp.int32), face0: int) -> int:
    """Cell (index into the light's cell_start) of the shadow ray from ``o``: distant lights project ``o`` on
    (e1, e2), point lights map the direction ``o - light`` to a cube face ``2a + (v_a < 0)`` and the coordinates
    ``(v_{a+1}, v_{a+2}) / |v_a|``; outside the face's grid -> the face's last cell."""
    face = wp.int32(0)
    s = wp.float32(0.0)
    t = wp.float32(0.0)
    if kind == 0:
        s = wp.dot(o, e1)
        t = wp.dot(o, e2)
    else:
        v = o - light
        ax = wp.abs(v[0])
        ay = wp.abs(v[1])
        az = wp.abs(v[2])
        a = wp.int32(0)
        if ay > ax and ay >= az:
            a = 1
        elif az > ax and az > ay:
            a = 2
        m = wp.abs(v[a])
        if m <= 0.0:
            return -1
        s = v[(a + 1) % 3] / m
        t = v[(a + 2) % 3] / m
        face = 2 * a + wp.where(v[a] < 0.0, 1, 0)
    geo = face_geo[face0 + face]
    base = face_base[face0 + face]
    cs = (s - geo[0]) * geo[2]
    ct = (t - geo[1]) * geo[2]
    if cs >= 0.0 and ct >= 0.0 and cs < float(grid) and ct < float(grid):
        return base + int(ct) * grid + int(cs)
    return base + grid * grid


_UNIT = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), -1).reshape(8, 3)  #: box corners (lo 0, hi 1)


def shadow_tables(instances: list[Instance], l2w: np.ndarray, lights: list[Light], up) -> list:
    """The pixel kernel's shadow arguments, uploaded through ``up`` (:meth:`transfer.FrameTraffic.up`). Per light r:
    kind, grid, lvec[3r:3r+3], faces [6r:6r+6] (origin s, origin t, cells per unit) and their first cell;
    concatenated cell_start / cell_items; reach[r * n + k]; per instance: shape bits (2: box), world centroid, padded
    world box, mesh id, world->local, local box (padded unless a Cube); the instance count."""
    n = len(instances)
    lo = np.array([i.entry.lo for i in instances]).reshape(-1, 3)
    hi = np.array([i.entry.hi for i in instances]).reshape(-1, 3)
    pad = 1.0e-4 * (hi - lo).max(1, initial=0.0)[:, None] + 1.0e-6
    box = np.array([i.entry.box for i in instances], bool).reshape(-1)
    lo, hi = np.where(box[:, None], lo, lo - pad), np.where(box[:, None], hi, hi + pad)
    local = np.where(_UNIT[None] == 1, hi[:, None, :], lo[:, None, :])  # (n, 8, 3)
    corners = np.einsum("nij,nkj->nki", l2w[:, :3, :3], local) + l2w[:, None, :3, 3]
    wpad = 1.0e-6 * (1.0 + np.abs(corners).max(1))
    wlo, whi = corners.min(1) - wpad, corners.max(1) + wpad
    centroid = np.array([i.entry.centroid for i in instances]).reshape(-1, 3)
    centroid = np.einsum("nij,nj->ni", l2w[:, :3, :3], centroid) + l2w[:, :3, 3]
    grids = [light_grid(lt, wlo, whi, corners) for lt in lights]
    cell_base = np.cumsum([0] + [len(g.cell_start) - 1 for g in grids])
    item_base = np.cumsum([0] + [len(g.cell_items) for g in grids])
    starts = np.concatenate([g.cell_start[:-1] + b for g, b in zip(grids, item_base, strict=False)]
                            + [item_base[-1:]])
    face_base = np.concatenate([b + np.arange(6) * (g.grid**2 + 1) for g, b in zip(grids, cell_base, strict=False)]
                               or [np.zeros(6, np.int64)])
    return [up([g.kind for g in grids] or [0], wp.int32),
            up([g.grid for g in grids] or [0], wp.int32),
            up(np.concatenate([g.lvec for g in grids]) if grids else np.zeros((3, 3)), wp.vec3),
            up(np.concatenate([g.face_geo for g in grids]) if grids else np.zeros((6, 3)), wp.vec3),
            up(face_base, wp.int32),
            up(starts, wp.int32),
            up(np.concatenate([g.cell_items for g in grids] + [np.zeros(1)]), wp.int32),
            up(np.concatenate([g.reach for g in grids]) if grids else np.zeros(1), wp.float32),
            up(2 * box, wp.int32),
            up(centroid, wp.vec3), up(wlo, wp.vec3), up(whi, wp.vec3),
            up([i.entry.mesh.id for i in instances] or [0], wp.uint64),
            up(np.linalg.inv(l2w) if n else np.zeros((1, 4, 4)), wp.mat44), up(lo, wp.vec3),
            up(hi, wp.vec3), n]
