"""Primary visibility: the exact closest hit of every pixel ray, found by rasterizing triangles, not by tracing rays.

Every pixel's ray leaves the camera centre through the pixel centre: ``d = (X[j], Y[i], 1)`` in the OpenCV camera
frame with ``X[j] = (j + 0.5 - cx) / fx`` and ``Y[i] = (i + 0.5 - cy) / fy``. With a triangle's vertices A, B, C in
that frame, the ray passes through the triangle iff its three edge values ``(B x C).d``, ``(C x A).d``,
``(A x B).d`` share a sign (zero counts as either, so an edge shared by two triangles is covered by both, never by
none) and meets its plane at camera depth ``z = n.A / n.d`` with ``n = (B - A) x (C - A)``; the hit counts when
``near <= z <= far``. This is the ray-triangle test of a ray caster; only the loop order differs: each triangle visits
the pixels of its projected (near-clipped) bounding box, in tiles so that a GPU thread never loops over a whole
screen. The closest hit wins through an atomic min of ``(bits(z) << 32) | triangle index``: ties go to the lower
index, i.e. to the instance first in path order. The kernels are compiled without FMA contraction, so CPU and CUDA
evaluate the same float operations and choose the same triangle for every pixel.

Cost: O(triangles + covered pixels), independent of how many instances a ray could meet.

A labelled object's *unoccluded* coverage (every pixel one of its triangles covers, occluders ignored) is marked in
a byte mask over the object's screen rectangle during the same pass and summed per object afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import warp as wp

from .bands import band_pool
from .coverage import (
    COVER_BUDGET,
    count_cover_kernel,
    count_cover_span_kernel,
    cover_layout_kernel,
    cover_passes,
    unpack_cover,
)
from .geometry import DeviceGeometry
from .scene import CameraInfo
from .tiles import fill_items_kernel, raster_kernel
from .transfer import FrameTraffic

wp.set_module_options({"fuse_fp": False, "enable_backward": False})

EMPTY = np.uint64(0xFFFFFFFFFFFFFFFF)
_BIG = 1.0e30
_MARGIN = 0.01  #: pixels added around each projected triangle's box (triangles smaller than a pixel often get none)


@wp.func
def _transform_kernel_one(v: int, points: wp.array(dtype=wp.vec3), vert_inst: wp.array(dtype=wp.int32),
                          l2c: wp.array(dtype=wp.mat44), out: wp.array(dtype=wp.vec3)):
    out[v] = wp.transform_point(l2c[vert_inst[v]], points[v])


@wp.kernel
def transform_kernel(points: wp.array(dtype=wp.vec3), vert_inst: wp.array(dtype=wp.int32),
                     l2c: wp.array(dtype=wp.mat44), out: wp.array(dtype=wp.vec3), per: int, count: int):
    """Local-frame vertices -> camera frame (OpenCV)."""
    tid = wp.tid()
    for v in range(tid * per, wp.min(count, tid * per + per)):
        _transform_kernel_one(v, points, vert_inst, l2c, out)



@wp.func
def _extend(box: wp.vec4, p: wp.vec3, fx: float, fy: float, cx: float, cy: float) -> wp.vec4:
    u = fx * p[0] / p[2] + cx
    v = fy * p[1] / p[2] + cy
    return wp.vec4(wp.min(box[0], u), wp.min(box[1], v), wp.max(box[2], u), wp.max(box[3], v))


@wp.func
def _extend_crossing(box: wp.vec4, p: wp.vec3, q: wp.vec3, near: float, fx: float, fy: float, cx: float,
                     cy: float) -> wp.vec4:
    """Adds the point where edge p-q crosses the near plane, if it does."""
    out = box
    if (p[2] >= near) != (q[2] >= near):
        s = (near - p[2]) / (q[2] - p[2])
        x = p + (q - p) * s
        out = _extend(box, wp.vec3(x[0], x[1], near), fx, fy, cx, cy)
    return out


@wp.func
def _setup_kernel_one(g: int, vcam: wp.array(dtype=wp.vec3), tris: wp.array(dtype=wp.vec3i),
                      tri_inst: wp.array(dtype=wp.int32), inst_obj: wp.array(dtype=wp.int32), fx: float, fy: float,
                      cx: float, cy: float, near: float, far: float, width: int, height: int, tile: int,
                      bbox: wp.array(dtype=wp.vec4i), ntiles: wp.array(dtype=wp.int32),
                      obj_lo: wp.array(dtype=wp.vec2i), obj_hi: wp.array(dtype=wp.vec2i), cam_rot: wp.mat33,
                      tri_plane: wp.array(dtype=wp.vec4), tri_nrm: wp.array(dtype=wp.vec3),
                      tri_e0: wp.array(dtype=wp.vec3), tri_e1: wp.array(dtype=wp.vec3)):
    ntiles[g] = 0
    t = tris[g]
    a = vcam[t[0]]
    b = vcam[t[1]]
    c = vcam[t[2]]
    if wp.max(wp.max(a[2], b[2]), c[2]) < near or wp.min(wp.min(a[2], b[2]), c[2]) > far:
        return
    box = wp.vec4(_BIG, _BIG, -_BIG, -_BIG)
    if a[2] >= near:
        box = _extend(box, a, fx, fy, cx, cy)
    if b[2] >= near:
        box = _extend(box, b, fx, fy, cx, cy)
    if c[2] >= near:
        box = _extend(box, c, fx, fy, cx, cy)
    box = _extend_crossing(box, a, b, near, fx, fy, cx, cy)
    box = _extend_crossing(box, b, c, near, fx, fy, cx, cy)
    box = _extend_crossing(box, c, a, near, fx, fy, cx, cy)
    wf = float(width)
    hf = float(height)
    # pixel centres j + 0.5 inside [box[0], box[2]] widened by _MARGIN (far above the projection's rounding)
    x0 = wp.max(int(wp.ceil(wp.clamp(box[0], -4.0, wf + 4.0) - 0.5 - _MARGIN)), 0)
    y0 = wp.max(int(wp.ceil(wp.clamp(box[1], -4.0, hf + 4.0) - 0.5 - _MARGIN)), 0)
    x1 = wp.min(int(wp.floor(wp.clamp(box[2], -4.0, wf + 4.0) - 0.5 + _MARGIN)), width - 1)
    y1 = wp.min(int(wp.floor(wp.clamp(box[3], -4.0, hf + 4.0) - 0.5 + _MARGIN)), height - 1)
    if x0 > x1 or y0 > y1:
        return
    bbox[g] = wp.vec4i(x0, y0, x1, y1)
    ntiles[g] = (x1 / tile - x0 / tile + 1) * (y1 / tile - y0 / tile + 1)
    # what the pixel pass needs of a winning triangle, with the raster kernel's own float operations
    n = wp.cross(b - a, c - a)
    nd = wp.dot(n, a)
    tri_plane[g] = wp.vec4(n[0], n[1], n[2], nd)
    tri_nrm[g] = cam_rot * (wp.normalize(n) * wp.where(nd > 0.0, -1.0, 1.0))  # world, facing the camera
    tri_e0[g] = wp.cross(b, c)
    tri_e1[g] = wp.cross(c, a)
    obj = inst_obj[tri_inst[g]]
    if obj >= 0:
        wp.atomic_min(obj_lo, obj, wp.vec2i(x0, y0))
        wp.atomic_max(obj_hi, obj, wp.vec2i(x1, y1))


@wp.kernel
def setup_kernel(vcam: wp.array(dtype=wp.vec3), tris: wp.array(dtype=wp.vec3i), tri_inst: wp.array(dtype=wp.int32),
                 inst_obj: wp.array(dtype=wp.int32), fx: float, fy: float, cx: float, cy: float, near: float,
                 far: float, width: int, height: int, tile: int, bbox: wp.array(dtype=wp.vec4i),
                 ntiles: wp.array(dtype=wp.int32), obj_lo: wp.array(dtype=wp.vec2i),
                 obj_hi: wp.array(dtype=wp.vec2i), cam_rot: wp.mat33, tri_plane: wp.array(dtype=wp.vec4),
                 tri_nrm: wp.array(dtype=wp.vec3), tri_e0: wp.array(dtype=wp.vec3), tri_e1: wp.array(dtype=wp.vec3),
                 per: int, count: int):
    """Pixel bounding box of each triangle's near-clipped projection (pixel centres inside it) and its tile count;
    labelled objects' boxes are the union of their triangles' boxes."""
    tid = wp.tid()
    for g in range(tid * per, wp.min(count, tid * per + per)):
        _setup_kernel_one(g, vcam, tris, tri_inst, inst_obj, fx, fy, cx, cy, near, far, width, height, tile, bbox,
                          ntiles, obj_lo, obj_hi, cam_rot, tri_plane, tri_nrm, tri_e0, tri_e1)



@dataclass
class Raster:
    """One frame's closest-hit keys plus what the pixel pass needs to resolve them."""

    zbuf: wp.array  #: (H, W) uint64 (bits(z) << 32 | triangle), EMPTY where nothing is hit
    planes: wp.array  #: per triangle (n, n.A) in the camera frame, n = (B - A) x (C - A) (set where it has pixels)
    normals: wp.array  #: per triangle: world unit normal on the camera's side
    e0: wp.array  #: per triangle: B x C, camera frame (barycentric weight of A: e0.d / n.d)
    e1: wp.array  #: per triangle: C x A (weight of B)
    ray_x: wp.array  #: (W,) float32 ray slopes
    ray_y: wp.array  #: (H,)
    unoccluded: wp.array  #: (max(N, 1),) int32 per object: pixels covered with every occluder removed
    inst_obj: wp.array  #: per instance: object index, -1 unlabelled
    silhouettes: dict[int, np.ndarray] | None = None  #: object -> (H, W) bool coverage, when ``run(keep_cover=True)``
    checks: dict = field(default_factory=dict)  #: sized from bounds: device values to read back and ``accept``
    bounds: tuple[int, int] = (0, 0)  #: (work items, coverage bytes) the launches were sized for


class PrimaryPass:
    """Runs the kernels above for one frame; several frames may run at once (every buffer is the frame's own).

    Exact sizing waits for the device once per frame (the tile count sizes the raster launch, the objects' screen
    boxes the coverage masks). With ``one_wait`` (CUDA) both are sized from bounds learnt from earlier frames and
    the mask layout is built on the device, so the whole frame is queued at once and waited for once: GPUs shared
    by many processes switch between them at each wait. The frame reads back the real sizes (``Raster.checks``);
    :meth:`accept` grows the bounds, and a frame that outgrew them is rendered again exactly.
    """

    def __init__(self, device: wp.context.Device, threads: int = 1) -> None:
        self.device = device
        self.tile = 16 if device.is_cpu else 8
        self.per = 256 if device.is_cpu else 1  #: elements per thread (see _launch)
        self.threads = max(1, threads) if device.is_cpu else 1
        self._pool = band_pool(self.threads)
        self.one_wait = device.is_cuda
        self.item_bound, self.cover_bound = 1 << 16, 1 << 20  #: work items, coverage bytes (grown by accept)

    def accept(self, raster: Raster, got: dict) -> bool:
        """Whether a frame sized from bounds fit them (``got``: its ``checks`` read back); grows the bounds."""
        items, (cover, fits) = int(got["check_items"][0]), (int(v) for v in got["check_cover"][:2])
        self.item_bound = max(self.item_bound, 2 * items + 1)
        self.cover_bound = max(self.cover_bound, min(COVER_BUDGET, 2 * cover + 1))
        if cover > COVER_BUDGET:  # masks that need several passes: this backend sizes exactly from now on
            self.one_wait = False
        return items <= raster.bounds[0] and fits == 1

    def _launch(self, kernel, count: int, args: list) -> None:
        """``kernel`` over ``count`` elements, ``per`` of them per thread (CPU: many, so that Warp's per-thread
        copy of the arguments is paid rarely; GPU: one)."""
        per = self.per
        wp.launch(kernel, dim=max(1, (count + per - 1) // per), device=self.device, inputs=[*args, per, count])

    def _bands(self, H: int, fn) -> None:
        """``fn(r0, r1)`` for ``threads`` bands of rows, in parallel."""
        B = self.threads
        if self._pool is None:
            fn(0, H)
        else:
            list(self._pool.map(lambda b: fn(b * H // B, (b + 1) * H // B), range(B)))

    def run(self, geo: DeviceGeometry, cam: CameraInfo, l2w: np.ndarray, inst_obj: np.ndarray,
            n_objects: int, traffic: FrameTraffic, keep_cover: bool = False, exact: bool = False) -> Raster:
        """Closest hits and unoccluded coverage; ``keep_cover`` also returns each object's full silhouette. Sized
        exactly (one wait for the device) with ``exact``, ``keep_cover`` or without ``one_wait``, else from the
        bounds (no wait; see the class docstring)."""
        dev, H, W, up = self.device, cam.height, cam.width, traffic.up
        K, c2w = cam.K, cam.cam_to_world
        fx, fy, cx, cy, near, far = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), cam.near, cam.far
        ray_x = up((np.arange(W) + 0.5 - cx) / fx, wp.float32)
        ray_y = up((np.arange(H) + 0.5 - cy) / fy, wp.float32)
        zbuf = traffic.scratch((H, W), wp.uint64)  # the frame's own: frames may overlap
        zbuf.fill_(int(EMPTY))
        N = n_objects
        obj_arr = up(inst_obj, wp.int32)
        unocc = up(np.zeros(max(N, 1)), wp.int32)  # accumulators start as uploaded values: no fill per array
        silhouettes: dict[int, np.ndarray] | None = {} if keep_cover else None
        if geo.n_tris:
            l2c = up(np.linalg.inv(c2w) @ l2w, wp.mat44)
            obj_lo, obj_hi = up(np.full((max(N, 1), 2), 1 << 30), wp.vec2i), up(np.full((max(N, 1), 2), -1), wp.vec2i)
            traffic.send()
            vcam = traffic.scratch(geo.n_points, wp.vec3)
            self._launch(transform_kernel, geo.n_points, [geo.points, geo.vert_inst, l2c, vcam])
            T = geo.n_tris
            bbox, ntiles = traffic.scratch(T, wp.vec4i), traffic.scratch(T, wp.int32)
            planes, normals, e0, e1 = (traffic.scratch(T, d) for d in (wp.vec4, wp.vec3, wp.vec3, wp.vec3))
            self._launch(setup_kernel, T, [vcam, geo.tris, geo.tri_inst, obj_arr, fx, fy, cx, cy, near, far, W, H,
                                           self.tile, bbox, ntiles, obj_lo, obj_hi, wp.mat33(*c2w[:3, :3].ravel()),
                                           planes, normals, e0, e1])
            ends = traffic.scratch(T, wp.int32)
            wp.utils.array_scan(ntiles, ends, inclusive=True)
            if self.one_wait and not (exact or keep_cover):
                return self._run_bounded(geo, traffic, (ntiles, ends, T, bbox, vcam, obj_arr, ray_x, ray_y, near, far),
                                         obj_lo, obj_hi, N, H, Raster(zbuf, planes, normals, e0, e1, ray_x, ray_y,
                                                                      unocc, obj_arr, silhouettes))
            got = traffic.fetch({"items": ends[T - 1:], "lo": obj_lo, "hi": obj_hi})  # the frame's one early wait
            n_items, lo, hi = int(got["items"][0]), got["lo"][:N], got["hi"][:N]
            if dev.is_cpu:  # an item table, read by every band
                item_tri, item_k = traffic.scratch(max(n_items, 1), wp.int32), traffic.scratch(max(n_items, 1), wp.int32)
                self._launch(fill_items_kernel, T, [ntiles, ends, item_tri, item_k])
            else:  # binary search per item
                item_tri = item_k = wp.empty(1, dtype=wp.int32, device=dev)
            passes = cover_passes(lo, hi)
            for p, (rect, rows) in enumerate(passes or [(np.full((max(N, 1), 4), -1, np.int32), None)]):
                size = int(rect[:, 3].max(initial=-1) + 1) if rows is None else int(rows[3])
                cover = wp.zeros(max(size, 1), dtype=wp.uint8, device=dev)
                rect_arr = up(rect, wp.vec4i)
                row_arrs = [up(r, wp.int32) for r in rows[:3]] if rows is not None and n_items else None
                traffic.send()
                if n_items:
                    inputs = [ntiles, ends, T, int(dev.is_cpu), item_tri, item_k, bbox, self.tile, vcam, geo.tris,
                              geo.tri_inst, obj_arr, ray_x, ray_y, near, far, int(p == 0), rect_arr, cover]
                    self._bands(H, lambda r0, r1, inputs=inputs, n=n_items: self._launch(
                        raster_kernel, n, [*inputs, r0, r1, zbuf]))
                if row_arrs is not None:  # each object is in one pass: its sum is complete there
                    self._launch(count_cover_kernel, len(rows[0]), [cover, *row_arrs, unocc])
                if silhouettes is not None and row_arrs is not None:
                    silhouettes.update(unpack_cover(traffic.fetch({"cover": cover})["cover"], rect, lo, hi, H, W))
        else:
            traffic.send()
            planes, normals, e0, e1 = (wp.zeros(1, dtype=d, device=dev) for d in (wp.vec4, wp.vec3, wp.vec3, wp.vec3))
        return Raster(zbuf, planes, normals, e0, e1, ray_x, ray_y, unocc, obj_arr, silhouettes)

    def _run_bounded(self, geo: DeviceGeometry, traffic: FrameTraffic, tables: tuple, obj_lo: wp.array,
                     obj_hi: wp.array, N: int, H: int, raster: Raster) -> Raster:
        """The rest of :meth:`run` sized from the bounds: the mask layout on the device, the raster launch over
        ``item_bound`` items (threads past the scan's count stop at once), the masks summed by spans."""
        ntiles, ends, T, bbox, vcam, obj_arr, ray_x, ray_y, near, far = tables
        items, cap = self.item_bound, self.cover_bound
        rect, starts = traffic.scratch(max(N, 1), wp.vec4i), traffic.scratch(N + 1, wp.int32)
        info = traffic.scratch(2, wp.int32)
        wp.launch(cover_layout_kernel, dim=1, device=self.device, inputs=[obj_lo, obj_hi, N, cap, rect, starts, info])
        cover = traffic.scratch(cap, wp.uint8)
        cover.zero_()
        no_table = wp.empty(1, dtype=wp.int32, device=self.device)
        self._launch(raster_kernel, items, [ntiles, ends, T, 0, no_table, no_table, bbox, self.tile, vcam, geo.tris,
                                            geo.tri_inst, obj_arr, ray_x, ray_y, near, far, 1, rect, cover, 0, H,
                                            raster.zbuf])
        span = 256  # mask bytes per thread
        wp.launch(count_cover_span_kernel, dim=(cap + span - 1) // span, device=self.device,
                  inputs=[cover, starts, N, raster.unoccluded, span])
        raster.checks, raster.bounds = {"check_items": ends[T - 1:], "check_cover": info}, (items, cap)
        return raster
