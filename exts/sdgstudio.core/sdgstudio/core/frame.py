"""FrameData: the one schema every render backend produces and every writer/exporter consumes.

Conventions (documented for users in docs/formats.md):

* Images are row-major ``(H, W, ...)``; pixel ``(row v, col u)`` covers the continuous square
  ``[u, u+1) x [v, v+1)``, so its centre is ``(u + 0.5, v + 0.5)``. The image origin is the top-left corner.
* The camera frame is OpenCV's: +X right, +Y down, +Z forward (the USD camera looks down -Z with +Y up;
  ``USD_TO_OPENCV`` converts). ``K`` maps camera-frame points to pixel coordinates: ``[u, v, 1]^T ~ K @ p_cam``.
* Transforms are 4x4 float64 matrices acting on column vectors: ``p_world = T @ [x, y, z, 1]``.
  (Replicator's payloads are row-vector; its normalizers transpose.)
* Lengths are stage units, which are meters for every stage SDG Studio builds (``metersPerUnit = 1``).
* Depth is the distance to the image plane (OpenCV z) in meters, ``inf`` where no surface is hit.
* Instance id 0 and semantic id 0 mean background: nothing hit, or geometry without a semantic class.
  Semantic ids are 1-based positions in the config's ordered class list, so they are stable across runs.
* 2D boxes are ``(x_min, y_min, x_max, y_max)`` in continuous pixel coordinates, half-open: a box that
  covers exactly pixel columns 10..19 is ``x_min=10, x_max=20``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Converts USD camera-frame coordinates (+Y up, looking down -Z) to OpenCV's (+Y down, looking down +Z).
USD_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])

#: Names of the annotators (image layers and label groups) a backend can be asked for.
ANNOTATORS: dict[str, str] = {
    "rgb": "Shaded colour image, (H, W, 3) uint8 sRGB.",
    "depth": "Distance to the image plane, (H, W) float32 meters, inf where nothing is hit.",
    "instance_segmentation": "Instance id per pixel, (H, W) uint16/uint32, 0 = background.",
    "semantic_segmentation": "Stable class id per pixel, (H, W) uint16, 0 = background.",
    "normals": "World-space unit surface normal facing the camera, (H, W, 3) float32, 0 where nothing is hit.",
    "bounding_box_2d_tight": "Box around each object's visible pixels.",
    "bounding_box_2d_loose": "Box around each object's full projected extent, occluders ignored.",
    "bounding_box_3d": "Each object's local-frame extents and local-to-world transform.",
    "pose_6d": "Each object's rotation and translation in the camera frame.",
    "optical_flow": "Forward optical flow t -> t+1 in pixels, (H, W, 2) float32, NaN where invalid; object velocities.",
}


@dataclass
class CameraData:
    """Intrinsics and extrinsics of the camera a frame was rendered from."""

    width: int  #: pixels
    height: int  #: pixels
    K: np.ndarray  #: (3, 3) float64 pinhole intrinsics, OpenCV convention, pixels
    camera_to_world: np.ndarray  #: (4, 4) float64, OpenCV camera frame -> world
    prim_path: str = ""
    near: float = 0.01  #: clipping range, meters
    far: float = 1.0e6  #: meters

    @property
    def world_to_camera(self) -> np.ndarray:
        return np.linalg.inv(self.camera_to_world)

    def to_json(self) -> dict:
        return {
            "prim_path": self.prim_path,
            "width": self.width,
            "height": self.height,
            "K": self.K.tolist(),
            "camera_to_world": self.camera_to_world.tolist(),
            "clipping_range": [self.near, self.far],
        }


@dataclass
class ObjectLabel:
    """Everything known about one labelled object in one frame.

    An object is a prim carrying a semantic class (``UsdSemantics.LabelsAPI`` "class" taxonomy); all meshes
    under it count as one object, so multi-mesh assets are occluded and boxed as a whole.
    """

    instance_id: int  #: value of this object's pixels in the instance image (>= 1)
    prim_path: str
    class_name: str
    class_id: int  #: 1-based index into the config's class list
    pixel_count: int  #: visible pixels in the frame
    unoccluded_pixel_count: int  #: in-image pixels the object would cover with every occluder removed
    visible_fraction: float  #: pixel_count / unoccluded_pixel_count (0 when the object is not in view)
    truncation: float  #: 1 - area(loose box inside the image) / area(loose box); 0 = fully inside
    bbox_2d_tight: tuple[float, float, float, float] | None  #: visible pixels' extent, None when not visible
    bbox_2d_loose: tuple[float, float, float, float] | None  #: full projected extent clipped to the image
    bbox_3d_extents: tuple[tuple[float, float, float], tuple[float, float, float]]  #: local (min, max), stage units
    local_to_world: np.ndarray  #: (4, 4) float64, includes the prim's scale
    pose_in_camera: np.ndarray  #: (4, 4) float64 rigid transform object -> OpenCV camera (scale removed)
    scale: tuple[float, float, float]  #: the prim's world scale along its local axes
    is_target: bool = False
    linear_velocity: tuple[float, float, float] | None = None  #: m/s, camera frame (sequences; see flow.py)
    angular_velocity: tuple[float, float, float] | None = None  #: rad/s, axis x angle, camera frame

    def to_json(self) -> dict:
        def box(b):
            return None if b is None else [float(x) for x in b]

        return {
            "instance_id": self.instance_id,
            "prim_path": self.prim_path,
            "class": self.class_name,
            "class_id": self.class_id,
            "pixel_count": self.pixel_count,
            "unoccluded_pixel_count": self.unoccluded_pixel_count,
            "visible_fraction": round(float(self.visible_fraction), 6),
            "truncation": round(float(self.truncation), 6),
            "bbox_2d_tight": box(self.bbox_2d_tight),
            "bbox_2d_loose": box(self.bbox_2d_loose),
            "bbox_3d": {
                "min": [float(x) for x in self.bbox_3d_extents[0]],
                "max": [float(x) for x in self.bbox_3d_extents[1]],
                "local_to_world": self.local_to_world.tolist(),
            },
            "pose_in_camera": {
                "R": self.pose_in_camera[:3, :3].tolist(),
                "t": self.pose_in_camera[:3, 3].tolist(),
            },
            "scale": [float(s) for s in self.scale],
            "is_target": self.is_target,
            **({"motion": {"linear_velocity": [float(v) for v in self.linear_velocity],
                           "angular_velocity": [float(v) for v in self.angular_velocity]}}
               if self.linear_velocity is not None else {}),
        }


@dataclass
class FrameData:
    """One rendered frame: image layers (only those requested are set) plus per-object labels."""

    index: int
    camera: CameraData
    objects: list[ObjectLabel] = field(default_factory=list)
    rgb: np.ndarray | None = None  #: (H, W, 3) uint8
    depth: np.ndarray | None = None  #: (H, W) float32 meters, inf = no hit
    depth_sensor: np.ndarray | None = None  #: (H, W) float32 meters, simulated sensor (sensors.py), 0 = no reading
    instance_segmentation: np.ndarray | None = None  #: (H, W) uint32
    semantic_segmentation: np.ndarray | None = None  #: (H, W) uint16
    normals: np.ndarray | None = None  #: (H, W, 3) float32 world-space
    optical_flow: np.ndarray | None = None  #: (H, W, 2) float32 pixels, t -> t+1, NaN = invalid (flow.py)
    optical_flow_backward: np.ndarray | None = None  #: (H, W, 2) float32 pixels, t -> t-1, NaN = invalid
    unlabeled_pixel_count: int = 0  #: pixels that hit geometry without a semantic class
    extra: dict = field(default_factory=dict)  #: backend-specific metadata, JSON-serializable

    IMAGE_LAYERS = ("rgb", "depth", "depth_sensor", "instance_segmentation", "semantic_segmentation", "normals", "optical_flow",
                    "optical_flow_backward")

    def images(self) -> dict[str, np.ndarray]:
        """The image layers that are present, by annotator name."""
        return {name: getattr(self, name) for name in self.IMAGE_LAYERS if getattr(self, name) is not None}

    @property
    def target(self) -> ObjectLabel | None:
        """The frame's target object (at most one; see ``AssetConfig.target``), if any."""
        return next((o for o in self.objects if o.is_target), None)

    def labels_json(self) -> dict:
        """The frame's labels as written to ``labels_<frame>.json``.

        ``target`` repeats the target object's 6D pose relative to the camera and its visibility, so a grasping
        pipeline reads one key.
        """
        target = self.target
        return {
            "frame": self.index,
            "camera": self.camera.to_json(),
            "objects": [o.to_json() for o in self.objects],
            "unlabeled_pixel_count": int(self.unlabeled_pixel_count),
            **({"target": {
                "prim_path": target.prim_path,
                "class": target.class_name,
                "instance_id": target.instance_id,
                "pose_in_camera": {"R": target.pose_in_camera[:3, :3].tolist(), "t": target.pose_in_camera[:3, 3].tolist()},
                "visible_fraction": round(float(target.visible_fraction), 6),
                "pixel_count": target.pixel_count,
            }} if target is not None else {}),
            **({"extra": self.extra} if self.extra else {}),
        }
