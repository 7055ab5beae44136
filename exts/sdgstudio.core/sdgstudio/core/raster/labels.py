"""Per-object labels of one frame, computed for all objects at once.

Pixel counts, tight boxes and unoccluded coverage come from the image passes (``primary.py``, ``pixels.py``); here:
loose boxes and truncation from every vertex projected in float64 (a device kernel, queued by ``queue_loose_boxes``
with the frame's other work and read back with it; objects that cross the near plane are clipped on the host),
poses with scale removed, 3D boxes (``object_labels``).
"""

from __future__ import annotations

import numpy as np
import warp as wp

from ..frame import ObjectLabel
from .geometry import DeviceGeometry
from .scene import RenderScene
from .transfer import FrameTraffic

__all__ = ["object_labels", "queue_loose_boxes"]

wp.set_module_options({"fuse_fp": False, "enable_backward": False})


@wp.kernel
def loose_kernel(points: wp.array(dtype=wp.vec3d), vert_inst: wp.array(dtype=wp.int32),
                 inst_obj: wp.array(dtype=wp.int32), obj_to_cam: wp.array(dtype=wp.mat44d), fx: wp.float64, fy: wp.float64, cx: wp.float64,
                 cy: wp.float64, near: wp.float64, lo_u: wp.array(dtype=wp.float64), lo_v: wp.array(dtype=wp.float64),
                 hi_u: wp.array(dtype=wp.float64), hi_v: wp.array(dtype=wp.float64),
                 behind: wp.array(dtype=wp.int32), per: int, count: int):
    """Per object: extent of its vertices in front of the near plane projected to pixels; ``behind`` = 1 when
    some vertex is behind it (the host then adds the edge crossings). Vertices of unlabelled instances are
    skipped."""
    tid = wp.tid()
    for v in range(tid * per, wp.min(count, tid * per + per)):
        k = inst_obj[vert_inst[v]]
        if k < 0:
            continue
        p = wp.transform_point(obj_to_cam[k], points[v])
        if p[2] >= near:
            u = p[0] / p[2] * fx + cx
            w = p[1] / p[2] * fy + cy
            wp.atomic_min(lo_u, k, u)
            wp.atomic_min(lo_v, k, w)
            wp.atomic_max(hi_u, k, u)
            wp.atomic_max(hi_v, k, w)
        else:
            behind[k] = 1


def _object_to_camera(sc: RenderScene) -> tuple[np.ndarray, np.ndarray]:
    """Each object's local-to-world (N, 4, 4) and local-to-camera (OpenCV) transforms."""
    l2w = np.stack([sc.instances[o.instance].local_to_world for o in sc.objects])
    return l2w, np.linalg.inv(sc.camera.cam_to_world) @ l2w


def queue_loose_boxes(sc: RenderScene, geo: DeviceGeometry, inst_obj: wp.array, traffic: FrameTraffic
                      ) -> dict[str, wp.array]:
    """Queues the loose-box kernel of ``sc``'s objects over the frame's vertices (``geo``, instance -> object
    ``inst_obj``); its outputs, to read back for :func:`object_labels`."""
    N, dev, K, near = len(sc.objects), geo.device, sc.camera.K, sc.camera.near
    if N == 0:
        return {}
    out = {name: traffic.up(np.full(N, v), wp.float64)  # start values uploaded with the transforms
           for name, v in (("lo_u", np.inf), ("lo_v", np.inf), ("hi_u", -np.inf), ("hi_v", -np.inf))}
    out["behind"] = traffic.up(np.zeros(N), wp.int32)
    obj_to_cam = traffic.up(_object_to_camera(sc)[1], wp.mat44d)
    traffic.send()
    per = 4096 if dev.is_cpu else 1
    wp.launch(loose_kernel, dim=max(1, (geo.n_points + per - 1) // per), device=dev, inputs=[
        geo.points64, geo.vert_inst, inst_obj, obj_to_cam,
        *(float(x) for x in (K[0, 0], K[1, 1], K[0, 2], K[1, 2], near)), *out.values(), per, geo.n_points])
    return out


def object_labels(sc: RenderScene, counts: np.ndarray, tight: np.ndarray, unoccluded: np.ndarray,
                  loose: dict[str, np.ndarray]) -> list[ObjectLabel]:
    """One :class:`ObjectLabel` per object of ``sc`` (ids 1..N in ``sc.objects`` order): ``counts`` / ``tight``
    (x0, y0, x1, y1) indexed by object id, ``unoccluded`` by object index, ``loose`` the read-back outputs of
    :func:`queue_loose_boxes`."""
    N = len(sc.objects)
    if N == 0:
        return []
    cam = sc.camera
    l2w, obj_to_cam = _object_to_camera(sc)
    w2c = np.linalg.inv(cam.cam_to_world)
    loose_boxes, trunc = _loose_boxes(loose, obj_to_cam, sc, cam.K, cam.near, cam.width, cam.height)
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
            bbox_2d_loose=None if loose_boxes[k] is None else tuple(float(x) for x in loose_boxes[k]),
            bbox_3d_extents=(tuple(float(x) for x in entry.lo), tuple(float(x) for x in entry.hi)),
            local_to_world=l2w[k].copy(), pose_in_camera=pose_cam[k], scale=tuple(float(s) for s in scale[k]),
            is_target=o.is_target))
    return out


def _loose_boxes(loose: dict[str, np.ndarray], obj_to_cam: np.ndarray, sc: RenderScene, K: np.ndarray, near: float,
                 W: int, H: int) -> tuple[list, np.ndarray]:
    """Projected extent of each object's vertices clipped to the image, and its truncation.

    Geometry behind the near plane is clipped away: the vertices in front plus the points where triangle edges
    cross the near plane are projected. Nothing in front -> (None, 1.0).
    """
    N = len(obj_to_cam)
    lo = np.stack([loose["lo_u"], loose["lo_v"]], 1)
    hi = np.stack([loose["hi_u"], loose["hi_v"]], 1)
    for k in np.flatnonzero(loose["behind"]):  # crosses the near plane: add the edge crossings
        entry = sc.instances[sc.objects[k].instance].entry
        p = entry.points @ obj_to_cam[k, :3, :3].T + obj_to_cam[k, :3, 3]
        a, b = p[entry.tris.ravel()], p[np.roll(entry.tris, -1, axis=1).ravel()]
        cross = (a[:, 2] >= near) != (b[:, 2] >= near)
        a, b = a[cross], b[cross]
        t = ((near - a[:, 2]) / (b[:, 2] - a[:, 2]))[:, None]
        q = np.concatenate([p[p[:, 2] >= near], a + t * (b - a)])
        lo[k], hi[k] = (np.inf, np.inf), (-np.inf, -np.inf)
        if len(q):
            quv = q[:, :2] / q[:, 2:3] * np.diag(K)[:2] + K[:2, 2]
            lo[k], hi[k] = quv.min(0), quv.max(0)
    clo, chi = np.maximum(lo, 0.0), np.minimum(hi, [float(W), float(H)])
    ok = np.all(chi > clo, axis=1)
    area = np.prod(np.where(ok[:, None], hi - lo, 1.0), axis=1)
    inside = np.prod(np.where(ok[:, None], chi - clo, 1.0), axis=1)
    trunc = np.where(ok, np.where(area > 0, np.maximum(1.0 - inside / np.where(area > 0, area, 1.0), 0.0), 0.0), 1.0)
    boxes = [(clo[k, 0], clo[k, 1], chi[k, 0], chi[k, 1]) if ok[k] else None for k in range(N)]
    return boxes, trunc
