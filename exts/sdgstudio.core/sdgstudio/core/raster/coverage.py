"""Layout of the unoccluded-coverage masks of the primary pass (``primary.py``): each labelled object gets a byte
mask over its screen rectangle, packed object after object into passes of at most ``COVER_BUDGET`` bytes, and the
row table the count kernel sums them with. On a GPU the same layout is built by a kernel (one pass, in a buffer
sized from earlier frames) and summed by spans of bytes, so that the frame never waits for the device midway."""

from __future__ import annotations

import numpy as np
import warp as wp

from .search import last_at_most

wp.set_module_options({"fuse_fp": False, "enable_backward": False})

COVER_BUDGET = 1 << 26  #: bytes of unoccluded-coverage mask per pass (more objects -> more passes)


def unpack_cover(cover: np.ndarray, rect: np.ndarray, lo: np.ndarray, hi: np.ndarray, H: int, W: int
                  ) -> dict[int, np.ndarray]:
    """One pass's coverage buffer as full-image masks: ``rect[obj] = (x0, y0, width, offset)`` (-1: not here)."""
    masks = {}
    for obj in np.nonzero(rect[:, 3] >= 0)[0]:
        x0, y0, w, off = (int(v) for v in rect[obj])
        h = int(hi[obj, 1] - lo[obj, 1] + 1)
        mask = np.zeros((H, W), bool)
        mask[y0:y0 + h, x0:x0 + w] = cover[off:off + w * h].reshape(h, w) != 0
        masks[int(obj)] = mask
    return masks


def cover_passes(lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, tuple]]:
    """Coverage-mask layout per pass: ``rect[obj] = (x0, y0, width, offset)`` (offset -1: not in that pass) and
    the row table (row object, row start, row length, mask size) of the count kernel; objects in index order,
    ``COVER_BUDGET`` bytes per pass."""
    N = len(lo)
    w, h = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    seen = (w > 0) & (h > 0) & (lo[:, 0] < (1 << 30))
    area = np.where(seen, w * h, 0).astype(np.int64)
    passes, start = [], 0
    while start < N:
        csum = np.cumsum(area[start:])
        stop = start + max(1, int(np.searchsorted(csum, COVER_BUDGET, side="right")))
        rect = np.full((N, 4), -1, np.int64)
        sel = np.arange(start, stop)
        sel = sel[seen[sel]]
        off = np.concatenate([[0], np.cumsum(area[sel])])
        rect[sel, 0], rect[sel, 1], rect[sel, 2], rect[sel, 3] = lo[sel, 0], lo[sel, 1], w[sel], off[:-1]
        row_obj = np.repeat(sel, h[sel]).astype(np.int32)
        first = np.repeat(off[:-1], h[sel])
        row_in = np.arange(len(row_obj)) - np.repeat(np.cumsum(h[sel]) - h[sel], h[sel])
        rows = (row_obj, (first + row_in * np.repeat(w[sel], h[sel])).astype(np.int32),
                np.repeat(w[sel], h[sel]).astype(np.int32), int(off[-1]))
        if len(sel):
            passes.append((rect.astype(np.int32), rows))
        start = stop
    return passes


# --- the same layout built on the device, so that a GPU frame needs no wait before its raster launch ---


@wp.kernel
def cover_layout_kernel(obj_lo: wp.array(dtype=wp.vec2i), obj_hi: wp.array(dtype=wp.vec2i), n_obj: int,
                        capacity: int, rect: wp.array(dtype=wp.vec4i), starts: wp.array(dtype=wp.int32),
                        info: wp.array(dtype=wp.int32)):
    """One thread: :func:`cover_passes`' layout of every object in one buffer of ``capacity`` bytes (objects
    beyond it get offset -1); ``starts[o]`` the first byte of object o (non-decreasing, ``starts[n_obj]`` the
    end); ``info`` = (bytes needed, capped at 2**31 - 1; 1 when they fit)."""
    total = wp.int64(0)
    cap = wp.int64(capacity)
    for o in range(n_obj):
        lo = obj_lo[o]
        hi = obj_hi[o]
        w = hi[0] - lo[0] + 1
        h = hi[1] - lo[1] + 1
        starts[o] = int(wp.min(total, cap))
        rect[o] = wp.vec4i(0, 0, 0, -1)
        if w > 0 and h > 0 and lo[0] < (1 << 30):
            area = wp.int64(w) * wp.int64(h)
            if total + area <= cap:
                rect[o] = wp.vec4i(lo[0], lo[1], w, int(total))
            total = total + area
    starts[n_obj] = int(wp.min(total, cap))
    info[0] = int(wp.min(total, wp.int64(2147483647)))
    info[1] = wp.where(total <= cap, 1, 0)


@wp.kernel
def count_cover_span_kernel(cover: wp.array(dtype=wp.uint8), starts: wp.array(dtype=wp.int32), n_obj: int,
                            unoccluded: wp.array(dtype=wp.int32), per: int):
    """Sums ``per`` mask bytes per thread into ``unoccluded`` of the objects whose masks they belong to
    (:func:`cover_layout_kernel`'s ``starts``)."""
    tid = wp.tid()
    b0 = tid * per
    end = starts[n_obj]
    if b0 >= end:
        return
    o = last_at_most(starts, n_obj, b0)  # the object of byte b0 (the last such: its mask is not empty)
    s = wp.int32(0)
    for b in range(b0, wp.min(end, b0 + per)):
        while starts[o + 1] <= b:
            if s > 0:
                wp.atomic_add(unoccluded, o, s)
            s = 0
            o += 1
        s += int(cover[b])
    if s > 0:
        wp.atomic_add(unoccluded, o, s)


@wp.func
def _count_cover_kernel_one(r: int, cover: wp.array(dtype=wp.uint8), row_obj: wp.array(dtype=wp.int32),
                            row_start: wp.array(dtype=wp.int32), row_len: wp.array(dtype=wp.int32),
                            unoccluded: wp.array(dtype=wp.int32)):
    s = wp.int32(0)
    start = row_start[r]
    for x in range(row_len[r]):
        s += int(cover[start + x])
    if s > 0:
        wp.atomic_add(unoccluded, row_obj[r], s)


@wp.kernel
def count_cover_kernel(cover: wp.array(dtype=wp.uint8), row_obj: wp.array(dtype=wp.int32),
                       row_start: wp.array(dtype=wp.int32), row_len: wp.array(dtype=wp.int32),
                       unoccluded: wp.array(dtype=wp.int32), per: int, count: int):
    """Sums one row of one object's coverage mask into ``unoccluded[obj]``."""
    tid = wp.tid()
    for r in range(tid * per, wp.min(count, tid * per + per)):
        _count_cover_kernel_one(r, cover, row_obj, row_start, row_len, unoccluded)
