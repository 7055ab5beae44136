"""The light-space cells of a frame's shadow rays (``shadows.py``), built on the host by two small compiled loops.

Per light: every instance's footprint on each face (distant light: its box projected across the light direction,
one face; point light: the part of its box in front of each cube-map face, projected onto it), its *reach*
(distant: the box's highest point along the light direction; point: the box's distance from the light), a grid
per face spanning the footprints of its small instances (``HUGE``: larger ones would stretch it), and for every
cell the instances whose footprint covers it, in reach order; one more cell per face lists those reaching outside
the grid. A few dozen boxes make this a few thousand scalar steps: as numpy calls it cost more in call overhead
than in arithmetic (0.3 ms a light), so it runs as one thread of a Warp kernel on the CPU (``_grid_count``,
``_grid_fill``), in float64 without fused multiply-adds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import warp as wp

from .materials import Light

wp.set_module_options({"fuse_fp": False, "enable_backward": False})

HUGE = 0.25  #: instances whose footprint exceeds this share of a face's total footprint do not set its grid extent
_FAR = 1.0e300  #: stands for infinity in the footprint bounds


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


@wp.func
def _corner(lo: wp.vec3d, hi: wp.vec3d, c: int) -> wp.vec3d:
    """Box corner ``c`` (bit 2: x, bit 1: y, bit 0: z from ``hi``)."""
    return wp.vec3d(wp.where((c & 4) != 0, hi[0], lo[0]), wp.where((c & 2) != 0, hi[1], lo[1]),
                    wp.where((c & 1) != 0, hi[2], lo[2]))


@wp.func
def _face_rect(vlo: wp.vec3d, vhi: wp.vec3d, face: int) -> wp.vec4d:
    """Bounds ``(s0, t0, s1, t1)`` in [-1, 1] of the part of the box ``[vlo, vhi]`` (light at the origin) in front
    of cube face ``face`` (axis ``face // 2``, negative side when odd), projected onto it; a box crossing the face's
    plane reaches the face's edge on the sides its cross-section spans. s0 > s1 when no part is in front."""
    a = face // 2
    b = (a + 1) % 3
    c = (a + 2) % 3
    sign = wp.where(face % 2 == 0, wp.float64(1.0), wp.float64(-1.0))
    smin = wp.float64(_FAR)
    tmin = wp.float64(_FAR)
    smax = wp.float64(-_FAR)
    tmax = wp.float64(-_FAR)
    crossing = wp.int32(0)
    for k in range(8):
        v = _corner(vlo, vhi, k)
        depth = sign * v[a]
        if depth > wp.float64(0.0):
            s = v[b] / depth
            t = v[c] / depth
            smin = wp.min(smin, s)
            smax = wp.max(smax, s)
            tmin = wp.min(tmin, t)
            tmax = wp.max(tmax, t)
        else:
            crossing = 1
    if crossing != 0:
        if vhi[b] >= wp.float64(0.0):
            smax = wp.float64(_FAR)
        if vlo[b] <= wp.float64(0.0):
            smin = wp.float64(-_FAR)
        if vhi[c] >= wp.float64(0.0):
            tmax = wp.float64(_FAR)
        if vlo[c] <= wp.float64(0.0):
            tmin = wp.float64(-_FAR)
    one = wp.float64(1.0)
    return wp.vec4d(wp.clamp(smin, -one, one), wp.clamp(tmin, -one, one), wp.clamp(smax, -one, one),
                    wp.clamp(tmax, -one, one))


@wp.kernel
def _grid_count(kind: int, n: int, faces: int, grid: int, light: wp.vec3d, w: wp.vec3d, e1: wp.vec3d, e2: wp.vec3d,
                lo: wp.array(dtype=wp.vec3d), hi: wp.array(dtype=wp.vec3d), corners: wp.array(dtype=wp.vec3d),
                huge: wp.float64, reach: wp.array(dtype=wp.float64), order: wp.array(dtype=wp.int32),
                rect: wp.array(dtype=wp.vec4d), inside: wp.array(dtype=wp.int32), face_geo: wp.array(dtype=wp.vec3d),
                spans: wp.array(dtype=wp.vec4i), counts: wp.array(dtype=wp.int32)):
    """One thread: footprints, reach, the rank order, each face's grid, the cells each footprint covers (their
    counts, per cell) -- everything but the cell lists (``_grid_fill``)."""
    zero = wp.float64(0.0)
    for i in range(n):
        if kind == 0:
            r = wp.float64(-_FAR)
            s0 = wp.float64(_FAR)
            t0 = wp.float64(_FAR)
            s1 = wp.float64(-_FAR)
            t1 = wp.float64(-_FAR)
            for k in range(8):
                p = corners[8 * i + k]
                r = wp.max(r, wp.dot(p, w))
                s = wp.dot(p, e1)
                t = wp.dot(p, e2)
                s0 = wp.min(s0, s)
                s1 = wp.max(s1, s)
                t0 = wp.min(t0, t)
                t1 = wp.max(t1, t)
            reach[i] = r
            rect[i] = wp.vec4d(s0, t0, s1, t1)
            inside[i] = 1
        else:
            vlo = lo[i] - light
            vhi = hi[i] - light
            gap = wp.vec3d(wp.max(wp.max(vlo[0], -vhi[0]), zero), wp.max(wp.max(vlo[1], -vhi[1]), zero),
                           wp.max(wp.max(vlo[2], -vhi[2]), zero))
            reach[i] = wp.sqrt(wp.dot(gap, gap))
            for f in range(6):
                a = f // 2
                front = wp.int32(0)
                if f % 2 == 0:
                    if vhi[a] > zero:
                        front = 1
                elif vlo[a] < zero:
                    front = 1
                inside[f * n + i] = front
                rect[f * n + i] = _face_rect(vlo, vhi, f)
    # rank: by reach, descending for a distant light, ascending for a point light; ties keep the instance order
    for i in range(n):
        order[i] = i
    for i in range(1, n):
        item = order[i]
        key = wp.where(kind == 0, -reach[item], reach[item])
        j = i - 1
        while j >= 0 and wp.where(kind == 0, -reach[order[j]], reach[order[j]]) > key:
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = item
    per_face = grid * grid + 1
    grow = wp.float64(1.0e-4) * wp.float64(grid)
    gmax = wp.float64(grid - 1)
    for f in range(faces):
        # the extent of every footprint on the face, then of the small ones (those set the grid where any is)
        lo_s = wp.float64(_FAR)
        lo_t = wp.float64(_FAR)
        hi_s = wp.float64(-_FAR)
        hi_t = wp.float64(-_FAR)
        used = wp.int32(0)
        for i in range(n):
            if inside[f * n + i] != 0:
                q = rect[f * n + i]
                lo_s = wp.min(lo_s, q[0])
                lo_t = wp.min(lo_t, q[1])
                hi_s = wp.max(hi_s, q[2])
                hi_t = wp.max(hi_t, q[3])
                used = 1
        if used == 0:
            continue
        limit = huge * wp.max((hi_s - lo_s) * (hi_t - lo_t), wp.float64(1.0e-300))
        small = wp.int32(0)
        for i in range(n):
            q = rect[f * n + i]
            if inside[f * n + i] != 0 and (q[2] - q[0]) * (q[3] - q[1]) <= limit:
                small = 1
        o_s = wp.float64(_FAR)
        o_t = wp.float64(_FAR)
        e_s = wp.float64(-_FAR)
        e_t = wp.float64(-_FAR)
        for i in range(n):
            q = rect[f * n + i]
            if inside[f * n + i] != 0 and (small == 0 or (q[2] - q[0]) * (q[3] - q[1]) <= limit):
                o_s = wp.min(o_s, q[0])
                o_t = wp.min(o_t, q[1])
                e_s = wp.max(e_s, q[2])
                e_t = wp.max(e_t, q[3])
        size = wp.max(wp.max(e_s - o_s, e_t - o_t), wp.float64(1.0e-9)) * wp.float64(1.001)
        o_s = o_s - wp.float64(0.0005) * size
        o_t = o_t - wp.float64(0.0005) * size
        inv = wp.float64(grid) / size
        face_geo[f] = wp.vec3d(o_s, o_t, inv)
        base = f * per_face
        for k in range(n):
            i = order[k]
            if inside[f * n + i] == 0:
                continue
            q = rect[f * n + i]
            c0 = wp.floor((q[0] - o_s) * inv - grow)
            r0 = wp.floor((q[1] - o_t) * inv - grow)
            c1 = wp.floor((q[2] - o_s) * inv + grow)
            r1 = wp.floor((q[3] - o_t) * inv + grow)
            outside = c0 < zero or r0 < zero or c1 > gmax or r1 > gmax
            span = wp.vec4i(int(wp.clamp(c0, zero, gmax)), int(wp.clamp(r0, zero, gmax)),
                            int(wp.clamp(c1, zero, gmax)), int(wp.clamp(r1, zero, gmax)))
            spans[f * n + i] = span
            for row in range(span[1], span[3] + 1):
                for col in range(span[0], span[2] + 1):
                    counts[base + row * grid + col] += 1
            if outside:
                counts[base + grid * grid] += 1
                inside[f * n + i] = 2


@wp.kernel
def _grid_fill(n: int, faces: int, grid: int, order: wp.array(dtype=wp.int32), inside: wp.array(dtype=wp.int32),
               spans: wp.array(dtype=wp.vec4i), start: wp.array(dtype=wp.int32), filled: wp.array(dtype=wp.int32),
               items: wp.array(dtype=wp.int32)):
    """One thread: each cell's instances, in rank order (the loops of ``_grid_count``, writing instead of counting)."""
    per_face = grid * grid + 1
    for f in range(faces):
        base = f * per_face
        for k in range(n):
            i = order[k]
            flag = inside[f * n + i]
            if flag == 0:
                continue
            span = spans[f * n + i]
            for row in range(span[1], span[3] + 1):
                for col in range(span[0], span[2] + 1):
                    cell = base + row * grid + col
                    items[start[cell] + filled[cell]] = i
                    filled[cell] += 1
            if flag == 2:
                cell = base + grid * grid
                items[start[cell] + filled[cell]] = i
                filled[cell] += 1


class _Workspace:
    """One thread's buffers for ``light_grid`` (grown as needed) and the two kernels' launches, recorded once: a
    launch then costs a few microseconds instead of packing all its arguments again."""

    def __init__(self) -> None:
        self.n = self.cells = self.items = -1

    def fit(self, n: int, cells: int) -> None:
        if n <= self.n and cells <= self.cells:
            return
        self.n, self.cells = max(n, 2 * self.n, 64), max(cells, self.cells)
        n, cells = self.n, self.cells
        cpu = "cpu"
        self.lo, self.hi = wp.zeros(n, wp.vec3d, device=cpu), wp.zeros(n, wp.vec3d, device=cpu)
        self.corners, self.reach = wp.zeros(8 * n, wp.vec3d, device=cpu), wp.zeros(n, wp.float64, device=cpu)
        self.order, self.rect = wp.zeros(n, wp.int32, device=cpu), wp.zeros(6 * n, wp.vec4d, device=cpu)
        self.inside, self.spans = wp.zeros(6 * n, wp.int32, device=cpu), wp.zeros(6 * n, wp.vec4i, device=cpu)
        self.face_geo, self.counts = wp.zeros(6, wp.vec3d, device=cpu), wp.zeros(cells, wp.int32, device=cpu)
        self.start, self.filled = wp.zeros(cells + 1, wp.int32, device=cpu), wp.zeros(cells, wp.int32, device=cpu)
        zero = wp.vec3d(0.0, 0.0, 0.0)
        self.count = wp.launch(_grid_count, dim=1, device=cpu, record_cmd=True, inputs=[
            0, 0, 0, 1, zero, zero, zero, zero, self.lo, self.hi, self.corners, HUGE, self.reach, self.order,
            self.rect, self.inside, self.face_geo, self.spans, self.counts])
        self.items = -1

    def fit_items(self, count: int) -> None:
        if count <= self.items:
            return
        self.items = max(count, 2 * self.items, 1024)
        self.item_array = wp.zeros(self.items, wp.int32, device="cpu")
        self.fill = wp.launch(_grid_fill, dim=1, device="cpu", record_cmd=True, inputs=[
            0, 0, 1, self.order, self.inside, self.spans, self.start, self.filled, self.item_array])


_local = threading.local()


def light_grid(light: Light, lo: np.ndarray, hi: np.ndarray, corners: np.ndarray) -> LightGrid:
    """Cells of ``light`` over the instances' world boxes ``[lo, hi]`` (n, 3) with oriented box corners (n, 8, 3)."""
    n = len(lo)
    if light.kind == 0:
        w = light.vec / np.linalg.norm(light.vec)
        e1 = np.cross(w, np.eye(3)[int(np.argmin(np.abs(w)))])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(w, e1)
        lvec, grid, faces = np.stack([w, e1, e2]), int(np.clip(16 * np.sqrt(max(n, 1)), 64, 256)), 1
        position = np.zeros(3)
    else:
        position = np.asarray(light.vec, np.float64)
        lvec, grid, faces = np.stack([position, np.zeros(3), np.zeros(3)]), int(np.clip(8 * np.sqrt(max(n, 1)), 32,
                                                                                         128)), 6
    cells = 6 * (grid * grid + 1)
    if n == 0:
        return LightGrid(light.kind and 1, lvec, grid, np.zeros((6, 3)), np.zeros(cells + 1, np.int64),
                         np.zeros(0, np.int64), np.zeros(0))
    ws = getattr(_local, "workspace", None)
    if ws is None:
        ws = _local.workspace = _Workspace()
    ws.fit(n, cells)
    ws.lo.numpy()[:n], ws.hi.numpy()[:n] = lo, hi
    ws.corners.numpy()[:8 * n] = corners.reshape(-1, 3)
    ws.face_geo.numpy()[:] = 0.0
    counts = ws.counts.numpy()[:cells]
    counts[:] = 0
    for k, value in enumerate((int(light.kind != 0), n, faces, grid, *(wp.vec3d(*map(float, v)) for v in (
            position, *lvec)))):
        ws.count.set_param_at_index(k, value)
    ws.count.launch()
    start = ws.start.numpy()[:cells + 1]
    np.cumsum(counts, out=start[1:])
    total = int(start[-1])
    ws.fit_items(total)
    ws.filled.numpy()[:cells] = 0
    for k, value in enumerate((n, faces, grid)):
        ws.fill.set_param_at_index(k, value)
    ws.fill.launch()
    return LightGrid(0 if light.kind == 0 else 1, lvec, grid, ws.face_geo.numpy().copy(), start.copy(),
                     ws.item_array.numpy()[:total].copy(), ws.reach.numpy()[:n].copy())
