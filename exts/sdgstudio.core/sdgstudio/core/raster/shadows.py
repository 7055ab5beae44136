"""Shadow rays: one exact any-hit ray per lit pixel and light, tested only against the instances that can block it.

A shadow ray from ``o`` towards a light stays in one *light-space cell*: for a distant light all rays are parallel,
so a point's coordinates on the plane across the light direction never change along its ray; for a point light every
point of the ray has the same direction from the light (cube-map face and position on it). A face's grid spans the
footprints of its small instances (floors and walls would stretch it); each cell lists the instances whose world box
projects onto it, and one more cell per face lists those reaching outside the grid, for rays that start there. Lists
are built on the host from at most a few hundred boxes per frame and ordered by *reach* (distant: the box's highest
point along the light direction, descending; point: the box's distance from the light, ascending), so a ray stops
reading as soon as the remaining boxes lie below its origin / beyond its light.
The ray skips its own instance when the pixel's triangle lies on that mesh's convex hull and the pixel sees it from
outside (a ray leaving a hull face outwards cannot meet the mesh again; every face of a convex mesh is one),
slab-tests the rest (world box, then local box), and runs Warp's BVH any-hit
query on meshes whose local box it enters; for a Cube the local box test is the exact test.

The result equals testing every instance: the culls only drop instances the ray provably misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import warp as wp

from .materials import Light
from .scene import Instance

wp.set_module_options({"fuse_fp": False, "enable_backward": False})

_BIG = 1.0e30
HUGE = 0.25  #: instances whose footprint exceeds this share of a face's total footprint do not set its grid extent


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


@dataclass
class LightGrid:
    """Host-built cells of one light (see the module docstring)."""

    kind: int  #: 0 distant, 1 point
    lvec: np.ndarray  #: (3, 3) direction, e1, e2 (distant) or (position, 0, 0) (point)
    grid: int
    face_geo: np.ndarray  #: (6, 3) per face: origin s, origin t, cells per unit
    cell_start: np.ndarray  #: (6 * (grid**2 + 1) + 1,) int
    cell_items: np.ndarray  #: instance indices, each cell's ordered by reach
    reach: np.ndarray  #: per instance


_FACE_AXIS = np.array([0, 0, 1, 1, 2, 2])  #: cube face 2a + (negative side): its axis a and sign
_FACE_SIGN = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
_UNIT = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), -1).reshape(8, 3)  #: box corners (lo 0, hi 1)


def light_grid(light: Light, lo: np.ndarray, hi: np.ndarray, corners: np.ndarray) -> LightGrid:
    """Cells of ``light`` over the instances' world boxes ``[lo, hi]`` (n, 3) with oriented box corners (n, 8, 3).
    All faces and instances at once (a few dozen numpy calls whatever the count)."""
    n = len(lo)
    if n == 0:
        G = 64 if light.kind == 0 else 32
        return LightGrid(light.kind and 1, np.zeros((3, 3)), G, np.zeros((6, 3)),
                         np.zeros(6 * (G * G + 1) + 1, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if light.kind == 0:
        w = light.vec / np.linalg.norm(light.vec)
        e1 = np.cross(w, np.eye(3)[int(np.argmin(np.abs(w)))])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(w, e1)
        s, t = corners @ e1, corners @ e2
        rect = np.stack([s.min(1), t.min(1), s.max(1), t.max(1)], 1)[None] if n else np.zeros((1, 0, 4))
        inside = np.ones((1, n), bool)
        reach = (corners @ w).max(1) if n else np.zeros(0)
        order = np.argsort(-reach, kind="stable")
        lvec, G = np.stack([w, e1, e2]), int(np.clip(16 * np.sqrt(max(n, 1)), 64, 256))
    else:
        L = np.asarray(light.vec, np.float64)
        rect, inside = _cube_rects(lo - L, hi - L)
        reach = np.linalg.norm(np.maximum(np.maximum(lo - L, L - hi), 0.0), axis=1)
        order = np.argsort(reach, kind="stable")
        lvec, G = np.stack([L, np.zeros(3), np.zeros(3)]), int(np.clip(8 * np.sqrt(max(n, 1)), 32, 128))
    F, per_face = len(rect), G * G + 1
    rect, inside = rect[:, order], inside[:, order]  # instances by rank: each cell lists them in reach order
    lo_st, hi_st = rect[:, :, :2], rect[:, :, 2:]
    big = np.float64(np.inf)
    whole = np.prod(np.where(inside[..., None], hi_st, -big).max(1) - np.where(inside[..., None], lo_st, big).min(1),
                    axis=1)  # (F,) area of the box around all of a face's footprints
    area = np.prod(hi_st - lo_st, axis=2)
    small = inside & (area <= HUGE * np.maximum(whole, 1e-300)[:, None])
    use = np.where(small.any(1, keepdims=True), small, inside)  # footprints that set each face's grid extent
    org = np.where(use[..., None], lo_st, big).min(1)
    size = (np.where(use[..., None], hi_st, -big).max(1) - org).max(1)
    size = np.maximum(size, 1e-9) * 1.001
    org = org - 0.0005 * size[:, None]
    inv = G / size
    face_geo = np.zeros((6, 3))
    used = inside.any(1)
    face_geo[:F][used] = np.column_stack([org, inv])[used]
    grow = 1.0e-4 * G  # cells: covers float32 rounding of the kernel's cell coordinates
    f_of, k_of = np.nonzero(inside)  # (face, rank) pairs in that order
    r = rect[f_of, k_of]
    o = org[f_of]
    span = np.floor((r - np.concatenate([o, o], 1)) * inv[f_of, None] + [-grow, -grow, grow, grow])
    outside = np.any(span[:, :2] < 0, axis=1) | np.any(span[:, 2:] > G - 1, axis=1)
    span = np.clip(span, 0, G - 1).astype(np.int64)
    w_, h_ = span[:, 2] - span[:, 0] + 1, span[:, 3] - span[:, 1] + 1
    cnt = w_ * h_
    k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    row = np.repeat(span[:, 1], cnt) + k // np.repeat(w_, cnt)
    col = np.repeat(span[:, 0], cnt) + k % np.repeat(w_, cnt)
    base = f_of * per_face
    cells = np.concatenate([np.repeat(base, cnt) + row * G + col, base[outside] + G * G])
    items = np.concatenate([np.repeat(order[k_of], cnt), order[k_of][outside]])
    # a stable sort by cell keeps each cell's instances in rank (reach) order
    srt = np.argsort(cells, kind="stable")
    start = np.concatenate([[0], np.cumsum(np.bincount(cells, minlength=6 * per_face))])
    return LightGrid(0 if light.kind == 0 else 1, lvec, G, face_geo, start, items[srt], reach)


def _cube_rects(vlo: np.ndarray, vhi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cube face (6, n): whether each box (light at the origin) has a part in front of the face, and the
    bounds of that part's projection ``(s0, t0, s1, t1)`` in [-1, 1]; a box crossing the face's plane reaches
    infinity on the sides its cross-section spans (clamped to the face)."""
    a, b, c = _FACE_AXIS, (_FACE_AXIS + 1) % 3, (_FACE_AXIS + 2) % 3
    inside = np.where(_FACE_SIGN[:, None] > 0, vhi[:, a].T > 0, vlo[:, a].T < 0)  # (6, n)
    v = np.where(_UNIT[None] == 1, vhi[:, None, :], vlo[:, None, :])  # (n, 8, 3)
    depth = _FACE_SIGN[:, None, None] * np.moveaxis(v[:, :, a], 2, 0)  # (6, n, 8)
    fr = depth > 0
    safe = np.where(fr, depth, 1.0)
    s = np.moveaxis(v[:, :, b], 2, 0) / safe
    t = np.moveaxis(v[:, :, c], 2, 0) / safe
    inf = np.float64(np.inf)
    smin, smax = np.where(fr, s, inf).min(2), np.where(fr, s, -inf).max(2)
    tmin, tmax = np.where(fr, t, inf).min(2), np.where(fr, t, -inf).max(2)
    crossing = ~fr.all(2)
    smax = np.where(crossing & (vhi[:, b].T >= 0), inf, smax)
    smin = np.where(crossing & (vlo[:, b].T <= 0), -inf, smin)
    tmax = np.where(crossing & (vhi[:, c].T >= 0), inf, tmax)
    tmin = np.where(crossing & (vlo[:, c].T <= 0), -inf, tmin)
    return np.clip(np.stack([smin, tmin, smax, tmax], 2), -1.0, 1.0), inside


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
