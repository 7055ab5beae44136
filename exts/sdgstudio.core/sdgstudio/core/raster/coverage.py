"""Layout of the unoccluded-coverage masks of the primary pass (``primary.py``): each labelled object gets a byte
mask over its screen rectangle, packed object after object into passes of at most ``COVER_BUDGET`` bytes, and the
row table the count kernel sums them with."""

from __future__ import annotations

import numpy as np

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
