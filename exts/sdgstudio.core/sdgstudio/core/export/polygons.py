"""Binary masks <-> polygons in continuous pixel coordinates (pure numpy; used by the YOLO segment export).

Why our own tracer instead of OpenCV's ``findContours``: OpenCV's contours run through the centres of the
boundary pixels, so under our convention (pixel ``(v, u)`` covers ``[u, u+1) x [v, v+1)``) its polygons are half a
pixel too small on every side, and OpenCV would add ~60 MB of dependency for one function (scikit-image needs
SciPy). The tracer here follows the mask's pixel-edge boundary ("cracks") and returns the polygon through the
midpoints of those edges -- the marching-squares contour at level 0.5 of the pixel centres:

* every pixel centre inside the mask lies inside the polygon and every other centre outside it, at least
  ``sqrt(2)/4`` ~= 0.354 px from the outline, so filling the polygon at pixel centres gives the mask back exactly;
* straight and 45-degree staircase runs collapse to single segments (their midpoints are exactly collinear), which
  leaves 88 vertices for a disc 60 pixels across, 136 for one of 100;
* optionally the outline is simplified with Douglas-Peucker at ``tolerance`` pixels. Measured on random ellipses
  (>= 400 px): tolerance 0.25 removes < 1 % of the vertices (IoU stays 1.0), 0.5 halves them (worst IoU 0.977),
  1.0 leaves a fifth (worst IoU 0.943). Exports use 0: exact polygons.

Outer boundaries are traced clockwise on screen (positive shoelace area with y down), holes counter-clockwise.
Diagonally touching pixels are joined (8-connectivity, like OpenCV). ``merge_rings`` joins all rings of one object
into the single polygon a YOLO segment line holds, using zero-width "bridges" (each bridge is traversed once in
each direction), so even-odd and non-zero fills both give back the holes and the separate parts.
"""

from __future__ import annotations

import numpy as np

_DIRS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.int64)  # +x, +y, -x, -y (image coordinates, y down)
DEFAULT_TOLERANCE = 0.0  #: pixels, Douglas-Peucker tolerance of ``mask_to_rings`` (0: exact outline)


def _boundary_edges(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Directed unit edges between mask and non-mask pixels (mask on the right-hand side on screen).

    Returns start x, start y (lattice corners of the 1-pixel zero-padded mask), direction codes, lattice width.
    """
    p = np.pad(mask.astype(bool), 1)
    below, above = p[1:, :], p[:-1, :]  # horizontal edges on lattice row y = 1..h+1 (index + 1)
    right, left = p[:, 1:], p[:, :-1]  # vertical edges on lattice column x = 1..w+1 (index + 1)
    ty, tx = np.nonzero(below & ~above)  # top edges of mask pixels: (x, y) -> (x+1, y)
    by, bx = np.nonzero(above & ~below)  # bottom edges: (x+1, y) -> (x, y)
    ly, lx = np.nonzero(right & ~left)  # left edges: (x, y+1) -> (x, y)
    ry, rx = np.nonzero(left & ~right)  # right edges: (x, y) -> (x, y+1)
    sx = np.concatenate([tx, bx + 1, lx + 1, rx + 1])
    sy = np.concatenate([ty + 1, by + 1, ly + 1, ry])
    d = np.concatenate([np.full(len(tx), 0), np.full(len(bx), 2), np.full(len(lx), 3), np.full(len(rx), 1)])
    return sx, sy, d, p.shape[1] + 1


def _trace(mask: np.ndarray) -> list[np.ndarray]:
    """Closed rings of edge midpoints, in padded lattice coordinates; collinear midpoints already dropped."""
    sx, sy, d, lw = _boundary_edges(mask)
    n = len(d)
    if n == 0:
        return []
    start = sy * lw + sx
    end = (sy + _DIRS[d, 1]) * lw + sx + _DIRS[d, 0]
    order = np.argsort(start, kind="stable")
    sorted_start = start[order]
    lo = np.searchsorted(sorted_start, end, "left")
    nxt = order[lo]
    saddle = np.searchsorted(sorted_start, end, "right") - lo == 2  # two ways on: take the left turn (8-connected)
    if saddle.any():
        second = order[lo[saddle] + 1]
        left_turn = (d[saddle] + 3) % 4
        nxt[saddle] = np.where(d[second] == left_turn, second, nxt[saddle])
    # Midpoint i lies on the line through its neighbours exactly when the edges before and after edge i point the
    # same way (segment directions are d[prev] + d[i] and d[i] + d[next]): straight runs and 45-degree staircases.
    prev = np.empty(n, np.int64)
    prev[nxt] = np.arange(n)
    corner = d[prev] != d[nxt]
    mid = np.stack([sx + 0.5 * _DIRS[d, 0], sy + 0.5 * _DIRS[d, 1]], axis=1)
    nxt_list, corner_list = nxt.tolist(), corner.tolist()
    seen = bytearray(n)
    rings = []
    for first in range(n):
        if seen[first]:
            continue
        ring, e = [], first
        while not seen[e]:
            seen[e] = 1
            if corner_list[e]:
                ring.append(e)
            e = nxt_list[e]
        if len(ring) >= 3:
            rings.append(mid[ring])
    return rings


def simplify_ring(ring: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on a closed ring (no repeated end point); keeps at least 3 vertices.

    Level-synchronous: every pass splits all segments whose farthest vertex is beyond ``tolerance`` at once, so
    the work is a few vectorized passes instead of one Python call per segment.
    """
    n = len(ring)
    if n <= 3 or tolerance <= 0:
        return ring
    closed = np.vstack([ring, ring[:1]])  # vertex n is vertex 0 again
    far = int(np.argmax(((ring - ring[0]) ** 2).sum(1)))
    keep = np.zeros(n + 1, bool)
    keep[[0, far, n]] = True
    positions = np.arange(n + 1)
    while True:
        kept = np.flatnonzero(keep)
        seg = np.searchsorted(kept, positions, "right") - 1
        seg[-1] = len(kept) - 2
        a, b = closed[kept[seg]], closed[kept[seg + 1]]
        ab, ap = b - a, closed - a
        length = np.hypot(ab[:, 0], ab[:, 1])
        cross = np.abs(ap[:, 0] * ab[:, 1] - ap[:, 1] * ab[:, 0])
        dist = np.where(length > 0, cross / np.where(length > 0, length, 1.0), np.hypot(ap[:, 0], ap[:, 1]))
        dist[keep] = 0.0
        seg_max = np.maximum.reduceat(dist, kept[:-1])
        split = (dist > tolerance) & (dist == seg_max[seg])
        if not split.any():
            break
        first = np.unique(seg[split], return_index=True)[1]  # one vertex per segment: the first farthest
        keep[np.flatnonzero(split)[first]] = True
    out = ring[keep[:n]]
    if len(out) < 3:  # a degenerate sliver: keep the vertex farthest from the chord too
        rel, chord = ring - out[0], out[1] - out[0]
        third = int(np.argmax(np.abs(rel[:, 0] * chord[1] - rel[:, 1] * chord[0])))
        out = ring[np.unique([0, far, third])]
    return out


def ring_area(ring: np.ndarray) -> float:
    """Shoelace area in px^2: positive for outer boundaries (clockwise on screen), negative for holes."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def mask_to_rings(mask: np.ndarray, offset: tuple[float, float] = (0.0, 0.0),
                  tolerance: float = DEFAULT_TOLERANCE) -> list[np.ndarray]:
    """The outlines of a binary mask as (N, 2) float arrays of (x, y) continuous pixel coordinates.

    ``offset`` = (x, y) of the mask's top-left pixel in the full image (for masks cropped to a box). Outer rings
    come first, largest first; holes follow. Pixel centres inside a ring (even-odd) are the mask's pixels.
    """
    rings = [simplify_ring(r - 1.0 + np.asarray(offset, float), tolerance) for r in _trace(mask)]
    return sorted(rings, key=lambda r: -ring_area(r))


def merge_rings(rings: list[np.ndarray]) -> np.ndarray:
    """One closed polygon covering every ring: each further ring is attached to the polygon at its nearest vertex
    pair by a zero-width bridge (out along the bridge, around the ring, back along the bridge)."""
    if not rings:
        return np.zeros((0, 2))
    merged = rings[0]
    for ring in rings[1:]:
        d2 = ((merged[:, None, :] - ring[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d2)), d2.shape)
        loop = np.vstack([ring[j:], ring[:j + 1]])  # around the ring, back to where the bridge landed
        merged = np.vstack([merged[:i + 1], loop, merged[i:]])
    return merged


def rasterize_polygon(polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    """(height, width) bool mask of the pixels whose centre is inside ``polygon`` (even-odd rule), coordinates in
    continuous pixels. The inverse of ``mask_to_rings`` + ``merge_rings``; used to check exports."""
    out = np.zeros((height, width), bool)
    if len(polygon) < 3:
        return out
    a = np.asarray(polygon, float)
    b = np.roll(a, -1, axis=0)
    lo, hi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    centres_x = np.arange(width) + 0.5
    for v in range(max(0, int(np.floor(lo.min()))), min(height, int(np.ceil(hi.max())) + 1)):
        yc = v + 0.5
        hit = (lo <= yc) & (yc < hi)
        if not hit.any():
            continue
        pa, pb = a[hit], b[hit]
        xs = np.sort(pa[:, 0] + (yc - pa[:, 1]) * (pb[:, 0] - pa[:, 0]) / (pb[:, 1] - pa[:, 1]))
        crossings = np.searchsorted(xs, centres_x, side="right")
        out[v] = crossings % 2 == 1
    return out
