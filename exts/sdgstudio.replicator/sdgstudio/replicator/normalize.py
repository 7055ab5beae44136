"""Replicator annotator payloads -> ``FrameData``, with pure functions (numpy only: no Kit, no pxr).

Payload formats are those of omni.replicator.core 1.12 ``Annotator.get_data()`` (legacy structure) and of a legacy
writer payload, as ../shared/API_FACTS.md A2 records them from the 1.12 source and its annotator docstrings. The
result follows the conventions of ``sdgstudio.core.frame`` (the raster backend's), field by field:

* **camera** (``camera_params``): ``cameraViewTransform`` is world -> USD camera, row-vector (``p_cam = p_w @ V``),
  so the USD camera-to-world is ``inv(V.T)`` and ours is that times ``USD_TO_OPENCV``. ``fx = fy =
  cameraFocalLength * W / cameraAperture[0]``, the principal point is the image centre moved by
  ``cameraApertureOffset`` (as ``read_camera`` of the raster backend). ``renderProductResolution`` is [W, H].
  Only ``cameraModel == "pinhole"`` is accepted.
* **objects** are those of a :class:`Scene` (read from the stage: every visible prim with a ``class`` label in the
  class list that has geometry below it, sorted by path, exactly the raster backend's set); object ``k`` gets
  instance id ``k + 1``. A Replicator entity (a prim path in ``idToLabels`` / ``primPaths``) belongs to the object
  that is its nearest class-labelled ancestor-or-self; entities of unknown classes and unlabelled geometry become
  0 and count in ``unlabeled_pixel_count``. So several Replicator ids (instance proxies, leaf meshes) can fold
  into one object, and an object of several meshes is one object.
* **instance / semantic images**: ids 0 (``BACKGROUND``) = nothing hit. ``idToLabels`` keys may be ints (get_data)
  or strings (JSON). A semantic id's ``class`` labels are comma-joined with inherited ones (``"table, mug"``,
  ancestors first): the **last** label in the class list wins, the others are ignored.
* **2D boxes**: Replicator's ``x_max``/``y_max`` are read as the last covered pixel (inclusive, ``BOX_MAX_INCLUSIVE``;
  unconfirmed by the sources, checked against the instance mask by the Isaac Sim tier) and become our half-open
  continuous boxes (``x_max + 1``). Loose boxes are clipped to the image; ``truncation`` = 1 - clipped area /
  full area. Objects missing from the loose payload are out of view: loose box None, truncation 1. Without a
  ``bounding_box_2d_tight`` payload tight boxes come from the instance mask (as the raster backend computes them).
* **visibility**: ``occlusionRatio`` (loose box, else tight box) gives ``unoccluded_pixel_count =
  round(pixel_count / (1 - occlusionRatio))`` and ``visible_fraction = pixel_count / unoccluded_pixel_count``.
  Replicator reports -1 (or nan) when it cannot tell (several meshes, labelled children): then
  ``unoccluded_pixel_count = pixel_count`` and the prim path is listed in ``extra["occlusion_unknown"]``. A fully
  occluded object (ratio 1) has ``unoccluded_pixel_count`` 0: Replicator does not report its unoccluded area.
* **3D boxes**: bounds are local-frame, stage units; ``transform`` is local -> world, row-vector, so
  ``local_to_world = transform.T``. Objects not in the payload (out of view, or the annotator not attached) take
  their bounds and transform from the :class:`Scene`. ``pose_in_camera`` and ``scale`` as the raster backend.
* **depth** (``distance_to_image_plane``): non-finite and non-positive values become ``inf`` (no hit).
* **normals**: xyz of the (H, W, 4) payload, renormalized, turned to face the camera, 0 where nothing is hit.
  Replicator's normals space is not documented; they are taken as world space (unconfirmed).
* **optical flow** (``motion_vectors``): Replicator's x is positive for motion to the left and y for motion to the
  top, so our flow (+u right, +v down) is ``-motion_vectors[..., :2]``: the motion from the previous frame to
  this one, in pixels (units unconfirmed).

Lengths stay in stage units (meters on every stage SDG Studio builds); ``metersPerSceneUnit`` other than 1 is
recorded in ``extra["meters_per_unit"]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sdgstudio.core.frame import USD_TO_OPENCV, CameraData, FrameData, ObjectLabel
from sdgstudio.core.sensors import view_rays_world

from .objects import Scene, SceneObject  # noqa: F401  (re-exported: normalize's inputs)

#: Replicator's ``x_max`` / ``y_max`` are the last covered pixel (see the module docstring).
BOX_MAX_INCLUSIVE = True
#: Labels Replicator gives to "nothing hit" and "hit, but no label" (RC annotator docstrings).
BACKGROUND, UNLABELLED = "BACKGROUND", "UNLABELLED"


class PayloadError(ValueError):
    """A payload that does not have the documented Replicator layout (the message names annotator and field)."""


# --------------------------------------------------------------------------------------------- payload access


def split_payload(payload: Any, annotator: str) -> tuple[Any, dict]:
    """``(data, info)`` of a payload in the legacy structure (array / ``{"data", "info"}`` / dict of fields) or
    the flat non-legacy one (``{"data", field: ...}``)."""
    if isinstance(payload, np.ndarray):
        return payload, {}
    if isinstance(payload, Mapping):
        if isinstance(payload.get("info"), Mapping):
            return payload.get("data"), dict(payload["info"])
        return payload.get("data"), {k: v for k, v in payload.items() if k != "data"}
    raise PayloadError(f"{annotator}: expected an array or a dict, got {type(payload).__name__}")


def _int_keys(mapping: Any, annotator: str) -> dict[int, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise PayloadError(f"{annotator}: info.idToLabels must be a dict, got {type(mapping).__name__}")
    try:
        return {int(k): v for k, v in mapping.items()}
    except (TypeError, ValueError):
        raise PayloadError(f"{annotator}: info.idToLabels keys must be ids, got {sorted(map(str, mapping))}") from None


def class_labels(labels: Any) -> list[str]:
    """The ``class`` labels of an ``idToLabels`` value (``{"class": "table, mug"}`` or ``"table, mug"``)."""
    if isinstance(labels, Mapping):
        labels = labels.get("class", "")
    if not isinstance(labels, str):
        return []
    return [s.strip() for s in labels.split(",") if s.strip()]


def class_of_labels(labels: Any, class_ids: Mapping[str, int]) -> int:
    """Our class id of a Replicator label set: the last label in the class list (inherited labels come first)."""
    for name in reversed(class_labels(labels)):
        if name in class_ids and name not in (BACKGROUND, UNLABELLED):
            return class_ids[name]
    return 0


def _image(data: Any, annotator: str, height: int, width: int, *, channels: bool = False) -> np.ndarray:
    """``data`` as an (H, W) array (a trailing axis of 1 dropped), or (H, W, C) with ``channels``."""
    arr = np.asarray(data)
    if not channels and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.shape[:2] != (height, width) or arr.ndim != (3 if channels else 2):
        want = f"({height}, {width}{', C' if channels else ''})"
        raise PayloadError(f"{annotator}: expected shape {want} for a {width}x{height} render product, got {arr.shape}")
    return arr


# --------------------------------------------------------------------------------------------- camera and layers


def camera_from_params(params: Any, prim_path: str = "") -> CameraData:
    """``CameraData`` (OpenCV frame, column-vector pose, K in pixels) of a ``camera_params`` payload."""
    _, p = split_payload(params, "camera_params")
    try:
        model = str(p.get("cameraModel", "pinhole"))
        width, height = (int(v) for v in np.asarray(p["renderProductResolution"]).ravel()[:2])
        view = np.asarray(p["cameraViewTransform"], dtype=np.float64).reshape(4, 4)
        focal = float(p["cameraFocalLength"])
        aperture = np.asarray(p["cameraAperture"], dtype=np.float64).ravel()
        offset = np.asarray(p.get("cameraApertureOffset", (0.0, 0.0)), dtype=np.float64).ravel()
        near, far = (float(v) for v in np.asarray(p.get("cameraNearFar", (0.01, 1.0e6))).ravel()[:2])
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"camera_params: missing or malformed field ({type(exc).__name__}: {exc})") from None
    if model != "pinhole":
        raise PayloadError(f"camera_params: cameraModel '{model}' is not supported (pinhole cameras only)")
    if width < 1 or height < 1 or focal <= 0 or aperture[0] <= 0:
        raise PayloadError(f"camera_params: resolution {width}x{height}, focal length {focal:g} and aperture "
                           f"{aperture[0]:g} must be positive")
    cam_to_world = np.linalg.inv(view.T)  # USD camera frame -> world, column-vector
    u, _, vt = np.linalg.svd(cam_to_world[:3, :3])
    cam_to_world[:3, :3] = u @ vt
    f = focal * width / aperture[0]
    K = np.array([[f, 0.0, width / 2 + offset[0] * width / aperture[0]],
                  [0.0, f, height / 2 - offset[1] * width / aperture[0]],
                  [0.0, 0.0, 1.0]])
    return CameraData(width, height, K, cam_to_world @ USD_TO_OPENCV, prim_path, near, far)


def rgb_from_payload(data: Any, height: int, width: int) -> np.ndarray:
    """(H, W, 4) RGBA uint8 -> (H, W, 3) uint8."""
    arr = _image(data, "rgb", height, width, channels=True)
    if arr.dtype != np.uint8 or arr.shape[2] not in (3, 4):
        raise PayloadError(f"rgb: expected (H, W, 4) uint8, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr[..., :3])


def depth_from_payload(data: Any, height: int, width: int) -> np.ndarray:
    """Distance to the image plane, float32, ``inf`` where nothing is hit (non-finite or non-positive)."""
    d = _image(data, "distance_to_image_plane", height, width).astype(np.float32, copy=False)
    return np.where(np.isfinite(d) & (d > 0), d, np.float32(np.inf)).astype(np.float32)


def normals_from_payload(data: Any, camera: CameraData, hit: np.ndarray) -> np.ndarray:
    """Unit normals facing the camera, (H, W, 3) float32, 0 where ``hit`` is False or the normal is degenerate."""
    arr = _image(data, "normals", camera.height, camera.width, channels=True).astype(np.float64)
    if arr.shape[2] < 3:
        raise PayloadError(f"normals: expected (H, W, 4) float32, got {arr.shape}")
    n = arr[..., :3]
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    valid = hit & np.isfinite(length[..., 0]) & (length[..., 0] > 1e-8)
    n = np.where(valid[..., None], n / np.where(length > 1e-8, length, 1.0), 0.0)
    away = np.sum(n * view_rays_world(camera), axis=-1) > 0
    n[away] = -n[away]
    return n.astype(np.float32)


def flow_from_motion_vectors(data: Any, height: int, width: int) -> np.ndarray:
    """(H, W, 4) motion vectors (+x left, +y up) -> (H, W, 2) flow (+u right, +v down), float32 pixels."""
    arr = _image(data, "motion_vectors", height, width, channels=True).astype(np.float32, copy=False)
    if arr.shape[2] < 2:
        raise PayloadError(f"motion_vectors: expected (H, W, 4) float32, got {arr.shape}")
    return np.ascontiguousarray(-arr[..., :2]).astype(np.float32)


def semantic_from_payload(payload: Any, class_names: list[str], height: int, width: int) -> np.ndarray:
    """Our stable class ids (uint16, 0 = background or no class in the list) of a ``semantic_segmentation``."""
    data, info = split_payload(payload, "semantic_segmentation")
    ids = _image(data, "semantic_segmentation", height, width)
    if ids.dtype.kind not in "ui":
        raise PayloadError(f"semantic_segmentation: expected uint32 ids (colorize=False), got {ids.dtype}")
    class_ids = {n: i + 1 for i, n in enumerate(class_names)}
    labels = _int_keys(info.get("idToLabels"), "semantic_segmentation")
    uniq, inverse = np.unique(ids, return_inverse=True)
    lut = np.array([class_of_labels(labels.get(int(u)), class_ids) for u in uniq], dtype=np.uint16)
    return lut[inverse].reshape(ids.shape)


@dataclass
class InstanceImage:
    """Instance ids of our objects per pixel (0 = none) and what the pixels hit."""

    ids: np.ndarray  #: (H, W) uint32, object k -> k + 1
    hit: np.ndarray  #: (H, W) bool, anything rendered there
    counts: np.ndarray  #: (N + 1,) pixels per id
    unlabeled: int  #: pixels that hit geometry of no object


def instances_from_payload(payload: Any, scene: Scene, height: int, width: int) -> InstanceImage:
    """Map ``instance_segmentation`` (or ``instance_id_segmentation``) ids to our objects."""
    data, info = split_payload(payload, "instance_segmentation")
    raw = _image(data, "instance_segmentation", height, width)
    if raw.dtype.kind not in "ui":
        raise PayloadError(f"instance_segmentation: expected uint32 ids (colorize=False), got {raw.dtype}")
    labels = _int_keys(info.get("idToLabels"), "instance_segmentation")
    uniq, inverse = np.unique(raw, return_inverse=True)
    ours = np.zeros(len(uniq), np.uint32)
    hit = np.ones(len(uniq), bool)
    for k, rid in enumerate(uniq.tolist()):
        label = labels.get(rid)
        if label == BACKGROUND or (rid == 0 and label is None):
            hit[k] = False
        elif isinstance(label, str):
            ours[k] = scene.object_index(label) + 1  # -1 + 1 = 0: unlabelled / unknown class
    ids = ours[inverse].reshape(raw.shape)
    hits = hit[inverse].reshape(raw.shape)
    counts = np.bincount(ids.ravel(), minlength=len(scene.objects) + 1)
    return InstanceImage(ids, hits, counts, int(np.count_nonzero(hits & (ids == 0))))


# --------------------------------------------------------------------------------------------- boxes


@dataclass
class Box:
    """One object's box from a Replicator box payload (several entities of one object are merged)."""

    lo: np.ndarray  #: 2D: (x_min, y_min) half-open continuous pixels; 3D: local (x, y, z) min
    hi: np.ndarray
    occlusion: float  #: occlusionRatio; nan when unknown (Replicator -1, or merged entities)
    transform: np.ndarray | None = None  #: 3D: local -> world, column-vector


def boxes_from_payload(payload: Any, annotator: str, scene: Scene) -> dict[int, Box]:
    """Boxes of a ``bounding_box_2d_*`` / ``bounding_box_3d`` payload by object index (other entities dropped)."""
    data, info = split_payload(payload, annotator)
    rows = np.asarray(data) if data is not None else np.zeros(0)
    paths = list(info.get("primPaths", []))
    if len(rows) and (rows.dtype.names is None or len(paths) != len(rows)):
        raise PayloadError(f"{annotator}: expected a structured array with one info.primPaths entry per box, got "
                           f"{rows.dtype} x {len(rows)} and {len(paths)} paths")
    three_d = annotator.startswith("bounding_box_3d")
    fields = ("x_min", "y_min", "z_min", "x_max", "y_max", "z_max") if three_d else ("x_min", "y_min", "x_max", "y_max")
    missing = [f for f in (*fields, "occlusionRatio") if len(rows) and f not in rows.dtype.names]
    if missing or (three_d and len(rows) and "transform" not in rows.dtype.names):
        raise PayloadError(f"{annotator}: fields {missing or ['transform']} missing from {rows.dtype}")
    out: dict[int, Box] = {}
    pad = 1.0 if BOX_MAX_INCLUSIVE and not three_d else 0.0
    for row, path in zip(rows, paths, strict=True):
        k = scene.object_index(str(path))
        if k < 0:
            continue
        n = 3 if three_d else 2
        lo = np.array([float(row[f]) for f in fields[:n]])
        hi = np.array([float(row[f]) for f in fields[n:]]) + pad
        occ = float(row["occlusionRatio"])
        occ = occ if np.isfinite(occ) and 0.0 <= occ <= 1.0 else float("nan")
        transform = np.asarray(row["transform"], dtype=np.float64).reshape(4, 4).T if three_d else None
        if k in out:  # a second entity of the same object: merge, occlusion unknown
            prev = out[k]
            lo, hi, occ = np.minimum(prev.lo, lo), np.maximum(prev.hi, hi), float("nan")
            transform = prev.transform
        out[k] = Box(lo, hi, occ, transform)
    return out


def _tight_from_mask(ids: np.ndarray, n: int) -> list[tuple[float, float, float, float] | None]:
    H, W = ids.shape
    ids64 = ids.astype(np.int64)
    cols = np.bincount((ids64 * W + np.arange(W)).ravel(), minlength=(n + 1) * W).reshape(n + 1, W) > 0
    rows = np.bincount((ids64 * H + np.arange(H)[:, None]).ravel(), minlength=(n + 1) * H).reshape(n + 1, H) > 0
    x0, x1 = cols.argmax(1), W - cols[:, ::-1].argmax(1)
    y0, y1 = rows.argmax(1), H - rows[:, ::-1].argmax(1)
    return [(float(x0[k]), float(y0[k]), float(x1[k]), float(y1[k])) if cols[k].any() else None
            for k in range(1, n + 1)]


def _clip(box: Box, width: int, height: int) -> tuple[tuple[float, float, float, float] | None, float]:
    (u0, v0), (u1, v1) = box.lo, box.hi
    cu0, cv0, cu1, cv1 = max(u0, 0.0), max(v0, 0.0), min(u1, float(width)), min(v1, float(height))
    if cu1 <= cu0 or cv1 <= cv0:
        return None, 1.0
    area = (u1 - u0) * (v1 - v0)
    trunc = 1.0 - (cu1 - cu0) * (cv1 - cv0) / area if area > 0 else 0.0
    return (float(cu0), float(cv0), float(cu1), float(cv1)), float(max(trunc, 0.0))


def rigid_pose(local_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rigid 4x4 pose with the scale removed, per-axis scale) of a local-to-world transform (raster's method)."""
    scale = np.linalg.norm(local_to_world[:3, :3], axis=0)
    u, _, vt = np.linalg.svd(local_to_world[:3, :3] / np.where(scale > 0, scale, 1.0))
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = u @ vt, local_to_world[:3, 3]
    return pose, scale


# --------------------------------------------------------------------------------------------- the frame


def frame_from_payloads(payloads: Mapping[str, Any], scene: Scene, class_names: list[str], layers: Iterable[str],
                        frame_index: int, camera_path: str = "") -> FrameData:
    """One ``FrameData`` from the payloads of one render product (keys: Replicator annotator names).

    ``layers`` are our annotator names: the image layers among them are set; labels are always filled. Needs
    ``camera_params`` and ``instance_segmentation`` (the label core); every other payload is optional.
    """
    layers = set(layers)
    for required in ("camera_params", "instance_segmentation"):
        if required not in payloads:
            raise PayloadError(f"{required}: payload missing (it is part of the label core, plan.LABEL_CORE)")
    camera = camera_from_params(payloads["camera_params"], camera_path)
    W, H = camera.width, camera.height
    frame = FrameData(index=frame_index, camera=camera)
    inst = instances_from_payload(payloads["instance_segmentation"], scene, H, W)
    n = len(scene.objects)
    depth = depth_from_payload(payloads["distance_to_image_plane"], H, W) \
        if "distance_to_image_plane" in payloads else None
    hit = np.isfinite(depth) if depth is not None else inst.hit
    if "depth" in layers:
        frame.depth = depth if depth is not None else depth_from_payload(_need(payloads, "distance_to_image_plane"), H, W)
    if "rgb" in layers:
        frame.rgb = rgb_from_payload(_need(payloads, "rgb"), H, W)
    if "normals" in layers:
        frame.normals = normals_from_payload(_need(payloads, "normals"), camera, hit)
    if "optical_flow" in layers:
        frame.optical_flow = flow_from_motion_vectors(_need(payloads, "motion_vectors"), H, W)
    if "semantic_segmentation" in layers:
        frame.semantic_segmentation = semantic_from_payload(_need(payloads, "semantic_segmentation"), class_names, H, W)
    if "instance_segmentation" in layers:
        frame.instance_segmentation = inst.ids
    frame.unlabeled_pixel_count = inst.unlabeled
    frame.extra["unknown_classes"] = list(scene.unknown_classes)
    _, cam_info = split_payload(payloads["camera_params"], "camera_params")
    mpu = cam_info.get("metersPerSceneUnit")
    if mpu is not None and abs(float(mpu) - 1.0) > 1e-6:
        frame.extra["meters_per_unit"] = float(mpu)

    loose = boxes_from_payload(payloads["bounding_box_2d_loose"], "bounding_box_2d_loose", scene) \
        if "bounding_box_2d_loose" in payloads else None
    tight_boxes = boxes_from_payload(payloads["bounding_box_2d_tight"], "bounding_box_2d_tight", scene) \
        if "bounding_box_2d_tight" in payloads else {}
    tight = _tight_from_mask(inst.ids, n)  # what the pixels say; the payload's box wins where there is one
    for k, box in tight_boxes.items():
        tight[k] = _clip(box, W, H)[0]
    boxes_3d = boxes_from_payload(payloads["bounding_box_3d"], "bounding_box_3d", scene) \
        if "bounding_box_3d" in payloads else {}
    w2c = np.linalg.inv(camera.camera_to_world)
    unknown_occlusion = []
    for k, obj in enumerate(scene.objects):
        pc = int(inst.counts[k + 1])
        box = loose.get(k) if loose is not None else None
        if box is not None:
            loose_box, trunc = _clip(box, W, H)
        else:
            loose_box, trunc = None, (0.0 if pc and loose is None else 1.0)
        occ = box.occlusion if box is not None else tight_boxes[k].occlusion if k in tight_boxes else float("nan")
        if pc == 0:
            unoccluded = 0
        elif np.isfinite(occ) and occ < 1.0:
            unoccluded = max(pc, int(round(pc / (1.0 - occ))))
        else:
            unoccluded = pc
            unknown_occlusion.append(obj.prim_path)
        b3 = boxes_3d.get(k)
        if b3 is not None:
            l2w = b3.transform
            extents = (tuple(float(x) for x in b3.lo), tuple(float(x) for x in b3.hi))
        else:
            l2w, extents = obj.local_to_world, obj.extents
        pose, scale = rigid_pose(l2w)
        frame.objects.append(ObjectLabel(
            instance_id=k + 1, prim_path=obj.prim_path, class_name=obj.class_name, class_id=obj.class_id,
            pixel_count=pc, unoccluded_pixel_count=unoccluded,
            visible_fraction=pc / unoccluded if unoccluded else 0.0, truncation=trunc,
            bbox_2d_tight=tight[k] if pc else None, bbox_2d_loose=loose_box,
            bbox_3d_extents=extents, local_to_world=np.array(l2w, dtype=np.float64),
            pose_in_camera=w2c @ pose, scale=tuple(float(s) for s in scale), is_target=obj.is_target))
    if unknown_occlusion:
        frame.extra["occlusion_unknown"] = unknown_occlusion
    return frame


def _need(payloads: Mapping[str, Any], name: str) -> Any:
    if name not in payloads:
        raise PayloadError(f"{name}: payload missing (attach it: plan.replicator_annotators)")
    return payloads[name]
