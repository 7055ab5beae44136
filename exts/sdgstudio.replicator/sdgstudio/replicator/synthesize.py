"""The Replicator payloads a ``FrameData`` implies: the inverse of ``normalize``, for tests (pure numpy).

``payloads_from_frame`` writes what omni.replicator.core 1.12 ``get_data()`` would return for the frame (legacy
structure, ../shared/API_FACTS.md A2): RGBA images, row-vector transforms, ``renderProductResolution`` as
[W, H], structured box dtypes with ``info.idToLabels`` / ``bboxIds`` / ``primPaths``, Replicator's own ids
(``0 = BACKGROUND``, ``1 = UNLABELLED``, then ids unrelated to ours), inherited comma-joined class labels,
inclusive integer box maxima, normals of any length and side. Normalizing them back must give the frame's labels
again; pytest does that against the raster backend, the Kit tier feeds them to the Replicator stand-in.

What cannot survive the trip, by construction of Replicator's payloads: loose boxes become whole pixels (rounded
outwards) and truncation follows from those integer boxes; a fully occluded object's unoccluded pixel count is not
reported (0).
"""

from __future__ import annotations

import math

import numpy as np
from sdgstudio.core.frame import USD_TO_OPENCV, FrameData

from .normalize import BACKGROUND, UNLABELLED

BOX2D_DTYPE = np.dtype([("semanticId", "<u4"), ("x_min", "<i4"), ("y_min", "<i4"), ("x_max", "<i4"),
                        ("y_max", "<i4"), ("occlusionRatio", "<f4")])
BOX3D_DTYPE = np.dtype([("semanticId", "<u4"), ("x_min", "<f4"), ("y_min", "<f4"), ("z_min", "<f4"),
                        ("x_max", "<f4"), ("y_max", "<f4"), ("z_max", "<f4"), ("transform", "<f4", (4, 4)),
                        ("occlusionRatio", "<f4")])
#: An ancestor label Replicator would join in front of the object's own (not in any class list we use).
INHERITED_LABEL = "scene"


def camera_params(frame: FrameData, horizontal_aperture: float = 20.955) -> dict:
    """A ``camera_params`` payload for the frame's camera (``cameraViewTransform`` world -> camera, row-vector)."""
    cam = frame.camera
    W, H, K = cam.width, cam.height, cam.K
    cam_to_world_usd = cam.camera_to_world @ USD_TO_OPENCV
    view = np.linalg.inv(cam_to_world_usd).T  # row-vector world -> USD camera
    focal = K[0, 0] * horizontal_aperture / W
    offset = ((K[0, 2] - W / 2) * horizontal_aperture / W, -(K[1, 2] - H / 2) * horizontal_aperture / W)
    proj = np.zeros((4, 4))  # row-vector projection as PoseWriter reads it: clip = p_cam @ P, P[2][3] = -1
    proj[0, 0], proj[1, 1] = 2 * K[0, 0] / W, 2 * K[1, 1] / H
    proj[2, 0], proj[2, 1], proj[2, 3], proj[3, 2] = -(2 * K[0, 2] / W - 1), -(1 - 2 * K[1, 2] / H), -1.0, cam.near
    return {
        "cameraAperture": np.array([horizontal_aperture, horizontal_aperture * H / W], np.float32),
        "cameraApertureOffset": np.array(offset, np.float32),
        "cameraFisheyeMaxFOV": 0.0, "cameraFisheyeNominalHeight": 0, "cameraFisheyeNominalWidth": 0,
        "cameraFisheyeOpticalCentre": np.zeros(2, np.float32), "cameraFisheyePolynomial": np.zeros(5, np.float32),
        "cameraFocalLength": float(focal), "cameraFocusDistance": 400.0, "cameraFStop": 0.0,
        "cameraModel": "pinhole",
        "cameraNearFar": np.array([cam.near, cam.far], np.float32),
        "cameraProjection": proj.ravel(), "cameraViewTransform": view.ravel(),
        "metersPerSceneUnit": 1.0,
        "renderProductResolution": np.array([W, H], np.int32),
    }


def _unclipped(box: tuple[float, float, float, float], truncation: float, W: int, H: int) -> tuple[float, ...]:
    """A full (unclipped) box whose clipped part is ``box`` and whose truncation is ``truncation``."""
    x0, y0, x1, y1 = box
    if truncation <= 0:
        return box
    area = (x1 - x0) * (y1 - y0) / max(1.0 - truncation, 1e-6)
    left, right, top, bottom = x0 <= 0, x1 >= W, y0 <= 0, y1 >= H
    horizontal, vertical = left or right, top or bottom
    if horizontal and vertical:
        k = math.sqrt(area / ((x1 - x0) * (y1 - y0)))
        gx, gy = (x1 - x0) * (k - 1), (y1 - y0) * (k - 1)
    elif horizontal:
        gx, gy = area / (y1 - y0) - (x1 - x0), 0.0
    else:
        gx, gy = 0.0, area / (x1 - x0) - (y1 - y0)
    nx, ny = int(left) + int(right), int(top) + int(bottom)
    return (x0 - gx / nx * left if nx else x0, y0 - gy / ny * top if ny else y0,
            x1 + gx / nx * right if nx else x1, y1 + gy / ny * bottom if ny else y1)


def _int_box(box: tuple[float, ...]) -> tuple[int, int, int, int]:
    """Half-open continuous box -> Replicator's integer box (outward, inclusive maxima)."""
    return (math.floor(box[0] + 1e-9), math.floor(box[1] + 1e-9), math.ceil(box[2] - 1e-9) - 1,
            math.ceil(box[3] - 1e-9) - 1)


def payloads_from_frame(frame: FrameData, class_names: list[str], *, id_offset: int = 7,
                        horizontal_aperture: float = 20.955) -> dict[str, object]:
    """Every payload the frame implies, keyed by Replicator annotator name (needs ``frame.depth`` for the hit mask).

    Replicator ids are ``id_offset`` + a shuffled order of our ids, so nothing depends on them matching ours.
    """
    if frame.depth is None:
        raise ValueError("payloads_from_frame needs the frame's depth (what was hit)")
    W, H = frame.camera.width, frame.camera.height
    hit = np.isfinite(frame.depth)
    objects = frame.objects
    rng = np.random.default_rng(frame.index)
    rep_ids = id_offset + rng.permutation(len(objects)).astype(np.uint32)
    out: dict[str, object] = {"camera_params": camera_params(frame, horizontal_aperture)}

    ours = np.zeros(len(objects) + 1, np.uint32)
    ours[1:] = rep_ids
    inst = frame.instance_segmentation
    if inst is None:
        raise ValueError("payloads_from_frame needs the frame's instance_segmentation")
    raw = np.where(inst > 0, ours[inst], np.where(hit, 1, 0)).astype(np.uint32)
    labels = {0: BACKGROUND, 1: UNLABELLED, **{int(r): o.prim_path for r, o in zip(rep_ids, objects, strict=True)}}
    semantics = {0: {"class": BACKGROUND}, 1: {"class": UNLABELLED},
                 **{int(r): {"class": f"{INHERITED_LABEL}, {o.class_name}"} for r, o in zip(rep_ids, objects,
                                                                                           strict=True)}}
    out["instance_segmentation"] = {"data": raw, "info": {"idToLabels": labels, "idToSemantics": semantics}}

    if frame.semantic_segmentation is not None:
        sem = frame.semantic_segmentation.astype(np.uint32)
        sem_rep = np.where(sem > 0, 100 + 3 * sem, np.where(hit, 1, 0)).astype(np.uint32)
        sem_labels = {0: {"class": BACKGROUND}, 1: {"class": UNLABELLED},
                      **{100 + 3 * (i + 1): {"class": f"{INHERITED_LABEL}, {n}"} for i, n in enumerate(class_names)}}
        out["semantic_segmentation"] = {"data": sem_rep, "info": {"idToLabels": sem_labels}}

    if frame.rgb is not None:
        out["rgb"] = np.concatenate([frame.rgb, np.full((H, W, 1), 255, np.uint8)], axis=-1)
    depth = frame.depth.astype(np.float32).copy()
    depth[~hit] = np.where(np.arange(np.count_nonzero(~hit)) % 2 == 0, np.inf, np.nan)  # both no-hit spellings
    out["distance_to_image_plane"] = depth
    if frame.normals is not None:
        n = frame.normals.astype(np.float32) * 2.0
        n[::2, ::2] *= -1.0  # some facing away: normalize turns them to the camera
        out["normals"] = np.concatenate([n, np.zeros((H, W, 1), np.float32)], axis=-1)
    if frame.optical_flow is not None:
        flow = frame.optical_flow.astype(np.float32)
        out["motion_vectors"] = np.concatenate([-flow, np.zeros((H, W, 2), np.float32)], axis=-1)

    sem_of = {n: 100 + 3 * (i + 1) for i, n in enumerate(class_names)}
    id_to_labels = {sem_of[o.class_name]: {"class": o.class_name} for o in objects}

    def box2d(rows: list) -> dict:
        data = np.array([r[1] for r in rows], dtype=BOX2D_DTYPE)
        return {"data": data, "info": {"idToLabels": dict(id_to_labels), "bboxIds": np.arange(len(rows), dtype=np.uint32),
                                       "primPaths": [r[0] for r in rows]}}

    tight = [(o.prim_path, (sem_of[o.class_name], *_int_box(o.bbox_2d_tight), 1.0 - o.visible_fraction))
             for o in objects if o.pixel_count > 0 and o.bbox_2d_tight is not None]
    loose = [(o.prim_path, (sem_of[o.class_name], *_int_box(_unclipped(o.bbox_2d_loose, o.truncation, W, H)),
                            1.0 - o.visible_fraction if o.pixel_count else 1.0))
             for o in objects if o.bbox_2d_loose is not None]
    out["bounding_box_2d_tight"] = box2d(tight)
    out["bounding_box_2d_loose"] = box2d(loose)
    in_view = [o for o in objects if o.bbox_2d_loose is not None]
    b3 = np.array([(sem_of[o.class_name], *o.bbox_3d_extents[0], *o.bbox_3d_extents[1], o.local_to_world.T,
                    1.0 - o.visible_fraction if o.pixel_count else 1.0) for o in in_view], dtype=BOX3D_DTYPE)
    out["bounding_box_3d"] = {"data": b3, "info": {"idToLabels": dict(id_to_labels),
                                                   "bboxIds": np.arange(len(in_view), dtype=np.uint32),
                                                   "primPaths": [o.prim_path for o in in_view]}}
    return out
