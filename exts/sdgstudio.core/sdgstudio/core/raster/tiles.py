"""The primary pass's work items and the kernel that tests them (``primary.py`` has the method).

Each triangle's pixel box is cut into ``tile`` x ``tile`` tiles; work item ``it`` is tile ``k`` of triangle ``g``
in the order of the inclusive scan ``ends`` of the triangles' tile counts. On the CPU an item table is written
once and read by every band of rows; on a GPU each thread finds its item's triangle by binary search (a table fill
would leave one thread looping over a floor triangle's thousands of tiles alone). Either way the same items are
tested with the same float operations, so both devices pick the same triangle for every pixel.
"""

from __future__ import annotations

import warp as wp

wp.set_module_options({"fuse_fp": False, "enable_backward": False})


@wp.func_native("union { float f; uint32_t u; } c; c.f = x; return c.u;")
def float_bits(x: float) -> wp.uint32: ...



@wp.func
def _fill_items_kernel_one(g: int, ntiles: wp.array(dtype=wp.int32), ends: wp.array(dtype=wp.int32),
                           item_tri: wp.array(dtype=wp.int32), item_k: wp.array(dtype=wp.int32)):
    n = ntiles[g]
    base = ends[g] - n
    for k in range(n):
        item_tri[base + k] = g
        item_k[base + k] = k


@wp.kernel
def fill_items_kernel(ntiles: wp.array(dtype=wp.int32), ends: wp.array(dtype=wp.int32),
                      item_tri: wp.array(dtype=wp.int32), item_k: wp.array(dtype=wp.int32), per: int, count: int):
    """CPU: the work item table, one (triangle, tile of its box) per item; ``ends`` is the inclusive scan of
    ``ntiles``. Written once, read by every band of rows."""
    tid = wp.tid()
    for g in range(tid * per, wp.min(count, tid * per + per)):
        _fill_items_kernel_one(g, ntiles, ends, item_tri, item_k)


@wp.func
def _first_item(ends: wp.array(dtype=wp.int32), count: int, it: int) -> int:
    """The triangle whose tiles include work item ``it``: the first ``g`` with ``ends[g] > it`` (``ends`` is the
    inclusive scan of the triangles' tile counts)."""
    lo = wp.int32(0)
    hi = count - 1
    while lo < hi:
        mid = (lo + hi) / 2
        if ends[mid] > it:
            hi = mid
        else:
            lo = mid + 1
    return lo


@wp.func
def _outside(e: wp.vec3, x0: float, x1: float, y0: float, y1: float) -> int:
    """Bit 1: the edge function ``e.(x, y, 1)`` is negative at all four corners, bit 2: positive at all four (with
    a margin far above float rounding), so no pixel of the rectangle passes the edge's test of that sign."""
    a = e[0] * x0 + e[1] * y0 + e[2]
    b = e[0] * x1 + e[1] * y0 + e[2]
    c = e[0] * x0 + e[1] * y1 + e[2]
    d = e[0] * x1 + e[1] * y1 + e[2]
    tol = 1.0e-5 * (wp.abs(e[0]) * wp.max(wp.abs(x0), wp.abs(x1)) + wp.abs(e[1]) * wp.max(wp.abs(y0), wp.abs(y1))
                    + wp.abs(e[2]))
    lo = wp.min(wp.min(a, b), wp.min(c, d))
    hi = wp.max(wp.max(a, b), wp.max(c, d))
    return wp.where(hi < -tol, 1, 0) | wp.where(lo > tol, 2, 0)


@wp.func
def _raster_kernel_one(g: int, k: int,
                       bbox: wp.array(dtype=wp.vec4i), tile: int, vcam: wp.array(dtype=wp.vec3),
                       tris: wp.array(dtype=wp.vec3i), tri_inst: wp.array(dtype=wp.int32),
                       inst_obj: wp.array(dtype=wp.int32), ray_x: wp.array(dtype=wp.float32),
                       ray_y: wp.array(dtype=wp.float32), near: float, far: float, write_depth: int,
                       cover_rect: wp.array(dtype=wp.vec4i), cover: wp.array(dtype=wp.uint8), band_y0: int,
                       band_y1: int, zbuf: wp.array2d(dtype=wp.uint64)):
    obj = inst_obj[tri_inst[g]]
    rect = wp.vec4i(0, 0, 0, -1)
    if obj >= 0:
        rect = cover_rect[obj]
    if write_depth == 0 and rect[3] < 0:
        return
    bb = bbox[g]
    tx0 = bb[0] / tile
    ntx = bb[2] / tile - tx0 + 1
    tx = (tx0 + k % ntx) * tile
    ty = (bb[1] / tile + k / ntx) * tile
    x0 = wp.max(bb[0], tx)
    x1 = wp.min(bb[2], tx + tile - 1)
    y0 = wp.max(wp.max(bb[1], ty), band_y0)
    y1 = wp.min(wp.min(bb[3], ty + tile - 1), band_y1 - 1)
    if y0 > y1:
        return
    t = tris[g]
    a = vcam[t[0]]
    b = vcam[t[1]]
    c = vcam[t[2]]
    e0 = wp.cross(b, c)
    e1 = wp.cross(c, a)
    e2 = wp.cross(a, b)
    n = wp.cross(b - a, c - a)
    nd = wp.dot(n, a)
    low = wp.uint64(g)
    # tile corners: an edge function is affine in (dx, dy), so its extremes over the tile are at the corners
    ex0 = ray_x[x0]
    ex1 = ray_x[x1]
    ey0 = ray_y[y0]
    ey1 = ray_y[y1]
    # no pixel passes when one edge is negative over the whole tile and one (maybe another) is positive
    if (x1 - x0 + 1) * (y1 - y0 + 1) > 8:
        if (_outside(e0, ex0, ex1, ey0, ey1) | _outside(e1, ex0, ex1, ey0, ey1)
                | _outside(e2, ex0, ex1, ey0, ey1)) == 3:
            return
    for i in range(y0, y1 + 1):
        dy = ray_y[i]
        for j in range(x0, x1 + 1):
            dx = ray_x[j]
            w0 = e0[0] * dx + e0[1] * dy + e0[2]
            w1 = e1[0] * dx + e1[1] * dy + e1[2]
            w2 = e2[0] * dx + e2[1] * dy + e2[2]
            if (w0 >= 0.0 and w1 >= 0.0 and w2 >= 0.0) or (w0 <= 0.0 and w1 <= 0.0 and w2 <= 0.0):
                z = nd / (n[0] * dx + n[1] * dy + n[2])
                if z >= near and z <= far:
                    if write_depth != 0:
                        wp.atomic_min(zbuf, i, j, (wp.uint64(float_bits(z)) << wp.uint64(32)) | low)
                    if rect[3] >= 0:
                        cover[rect[3] + (i - rect[1]) * rect[2] + j - rect[0]] = wp.uint8(1)


@wp.kernel
def raster_kernel(ntiles: wp.array(dtype=wp.int32), ends: wp.array(dtype=wp.int32), n_tris: int, table: int,
                  item_tri: wp.array(dtype=wp.int32), item_k: wp.array(dtype=wp.int32),
                  bbox: wp.array(dtype=wp.vec4i), tile: int, vcam: wp.array(dtype=wp.vec3),
                  tris: wp.array(dtype=wp.vec3i), tri_inst: wp.array(dtype=wp.int32),
                  inst_obj: wp.array(dtype=wp.int32), ray_x: wp.array(dtype=wp.float32),
                  ray_y: wp.array(dtype=wp.float32), near: float, far: float, write_depth: int,
                  cover_rect: wp.array(dtype=wp.vec4i), cover: wp.array(dtype=wp.uint8), band_y0: int, band_y1: int,
                  zbuf: wp.array2d(dtype=wp.uint64), per: int, count: int):
    """Exact ray-triangle test of every pixel of one tile of one triangle's box (see the module docstring). Work
    item ``it`` is tile ``k`` of triangle ``g`` in the order of the scan ``ends`` of the tile counts ``ntiles``:
    read from the item table (``table`` 1: ``item_tri``, ``item_k``; the CPU, where every band of rows reads it)
    or found by binary search (the GPU: no table to fill, where one thread would loop over a
    floor triangle's thousands of tiles alone).

    ``cover_rect[obj] = (x0, y0, width, offset)`` of the object's coverage mask, offset -1 when not in this pass.
    With ``write_depth == 0`` only the coverage masks are written (extra passes when they exceed the budget).
    Only rows ``band_y0 <= i < band_y1`` are touched (bands run in parallel CPU threads).
    """
    tid = wp.tid()
    items = wp.min(count, ends[n_tris - 1])  # count may be a bound (one_wait): the scan has the real number
    for it in range(tid * per, wp.min(items, tid * per + per)):
        g = wp.int32(0)
        k = wp.int32(0)
        if table != 0:
            g = item_tri[it]
            k = item_k[it]
        else:
            g = _first_item(ends, n_tris, it)
            k = it - (ends[g] - ntiles[g])
        _raster_kernel_one(g, k, bbox, tile, vcam, tris, tri_inst, inst_obj, ray_x, ray_y, near, far, write_depth,
                           cover_rect, cover, band_y0, band_y1, zbuf)
