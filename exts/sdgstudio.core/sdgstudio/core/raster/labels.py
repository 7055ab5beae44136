"""Per-object labels of one frame, computed for all objects at once (float64 on the host where exactness needs it).

Pixel counts, tight boxes and unoccluded coverage come from the device passes (``primary.py``); here: loose boxes
and truncation from every vertex projected in float64 (near-clipped), poses with scale removed, 3D boxes.
"""

from __future__ import annotations

import numpy as np

from ..frame import ObjectLabel
from .scene import RenderScene

__all__ = ["object_labels"]


class LabelGeometry:
    """All labelled objects' local vertices concatenated (cached by the objects' meshes)."""

    def __init__(self) -> None:
        self.key: tuple = ()
        self.points = np.zeros((0, 3))
        self.starts = np.zeros(0, np.int64)

    def update(self, sc: RenderScene) -> None:
        key = tuple(sc.instances[o.instance].entry.serial for o in sc.objects)
        if key != self.key:
            pts = [sc.instances[o.instance].entry.points for o in sc.objects]
            self.points = np.concatenate(pts) if pts else np.zeros((0, 3))
            self.starts = np.concatenate([[0], np.cumsum([len(p) for p in pts])[:-1]]).astype(np.int64)
            self.key = key


def object_labels(sc: RenderScene, counts: np.ndarray, tight: np.ndarray, unoccluded: np.ndarray,
                  geo: LabelGeometry) -> list[ObjectLabel]:
    """One :class:`ObjectLabel` per object of ``sc`` (ids 1..N in ``sc.objects`` order): ``counts`` / ``tight``
    (x0, y0, x1, y1) indexed by object id, ``unoccluded`` by object index."""
    N = len(sc.objects)
    if N == 0:
        return []
    cam = sc.camera
    W, H = cam.width, cam.height
    w2c = np.linalg.inv(cam.cam_to_world)
    l2w = np.stack([sc.instances[o.instance].local_to_world for o in sc.objects])
    geo.update(sc)
    loose, trunc = _loose_boxes(geo, w2c @ l2w, sc, cam.K, cam.near, W, H)
    lin = l2w[:, :3, :3]
    scale = np.linalg.norm(lin, axis=1)  # column norms: the scale along each local axis
    u, _, vt = np.linalg.svd(lin / np.where(scale > 0, scale, 1.0)[:, None, :])
    pose = np.tile(np.eye(4), (N, 1, 1))
    pose[:, :3, :3], pose[:, :3, 3] = u @ vt, l2w[:, :3, 3]
    pose_cam = w2c @ pose
    out = []
    for k, o in enumerate(sc.objects):
        entry = sc.instances[o.instance].entry
        pc, uc = int(counts[k + 1]), int(unoccluded[k])
        tb = tight[k + 1]
        out.append(ObjectLabel(
            instance_id=k + 1, prim_path=o.path, class_name=o.class_name, class_id=o.class_id, pixel_count=pc,
            unoccluded_pixel_count=uc, visible_fraction=pc / uc if uc else 0.0, truncation=float(trunc[k]),
            bbox_2d_tight=(float(tb[0]), float(tb[1]), float(tb[2]), float(tb[3])) if pc else None,
            bbox_2d_loose=None if loose[k] is None else tuple(float(x) for x in loose[k]),
            bbox_3d_extents=(tuple(float(x) for x in entry.lo), tuple(float(x) for x in entry.hi)),
            local_to_world=l2w[k].copy(), pose_in_camera=pose_cam[k], scale=tuple(float(s) for s in scale[k]),
            is_target=o.is_target))
    return out


def _loose_boxes(geo: LabelGeometry, obj_to_cam: np.ndarray, sc: RenderScene, K: np.ndarray, near: float, W: int,
                 H: int) -> tuple[list, np.ndarray]:
    """Projected extent of each object's vertices clipped to the image, and its truncation.

    Geometry behind the near plane is clipped away: the vertices in front plus the points where triangle edges
    cross the near plane are projected. Nothing in front -> (None, 1.0).
    """
    N = len(obj_to_cam)
    counts = np.diff(np.append(geo.starts, len(geo.points)))
    M = np.repeat(obj_to_cam, counts, axis=0)
    pc = np.einsum("nij,nj->ni", M[:, :3, :3], geo.points) + M[:, :3, 3]
    front = pc[:, 2] >= near
    lo, hi = np.full((N, 2), np.inf), np.full((N, 2), -np.inf)
    uv = pc[:, :2] / np.where(front, pc[:, 2], 1.0)[:, None] * np.diag(K)[:2] + K[:2, 2]
    whole = np.logical_and.reduceat(front, geo.starts) if len(front) else np.zeros(N, bool)
    if len(uv):
        lo_all = np.minimum.reduceat(np.where(front[:, None], uv, np.inf), geo.starts)
        hi_all = np.maximum.reduceat(np.where(front[:, None], uv, -np.inf), geo.starts)
        lo[whole], hi[whole] = lo_all[whole], hi_all[whole]
    for k in np.flatnonzero(~whole & (counts > 0)):  # crosses the near plane: add the edge crossings
        s = slice(geo.starts[k], geo.starts[k] + counts[k])
        p, tris = pc[s], sc.instances[sc.objects[k].instance].entry.tris
        a, b = p[tris.ravel()], p[np.roll(tris, -1, axis=1).ravel()]
        cross = (a[:, 2] >= near) != (b[:, 2] >= near)
        a, b = a[cross], b[cross]
        t = ((near - a[:, 2]) / (b[:, 2] - a[:, 2]))[:, None]
        q = np.concatenate([p[front[s]], a + t * (b - a)])
        if len(q):
            quv = q[:, :2] / q[:, 2:3] * np.diag(K)[:2] + K[:2, 2]
            lo[k], hi[k] = quv.min(0), quv.max(0)
    clo, chi = np.maximum(lo, 0.0), np.minimum(hi, [float(W), float(H)])
    ok = np.all(chi > clo, axis=1)
    area = np.prod(hi - lo, axis=1, where=ok[:, None]) if N else np.zeros(0)
    inside = np.prod(chi - clo, axis=1, where=ok[:, None]) if N else np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        trunc = np.where(ok, np.where(area > 0, np.maximum(1.0 - inside / np.where(area > 0, area, 1.0), 0.0), 0.0),
                         1.0)
    boxes = [(clo[k, 0], clo[k, 1], chi[k, 0], chi[k, 1]) if ok[k] else None for k in range(N)]
    return boxes, trunc
