"""KITTI object export: ``image_2/``, ``label_2/``, ``calib/`` (one ``<frame:06d>`` file each) and ``ImageSets/``.

KITTI boxes turn about the rectified camera's Y axis only, which KITTI can assume because its camera is level.
Ours is tilted, so the "rectified" frame (``rect``) is the camera's *levelled* frame: same origin, Y pointing
straight down (world -Z), X the camera's X made horizontal, Z = X x Y (forward, horizontal). Upright objects (turned
about world Z only) are then exact KITTI boxes. The tilt goes into the calib: ``P2 = K [R_cam<-rect | 0]`` so
``x ~ P2 [X_rect; 1]`` is exact, ``R0_rect`` maps the real camera frame to ``rect`` and ``Tr_velo_to_cam`` is our
world-to-camera transform ("velodyne" = world frame, meters): ``P2 R0_rect Tr_velo_to_cam`` projects world points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..manifest import write_file_durably
from .common import FORMAT_NEEDS, DatasetInfo, ExportSettings, FrameSource, link_or_copy, safe_name

#: KITTI occlusion levels from our visible fraction: >= 0.95 -> 0 (fully visible), >= 0.5 -> 1 (partly), else 2.
OCCLUSION_THRESHOLDS = (0.95, 0.5)


def occlusion_level(visible_fraction: float) -> int:
    return 0 if visible_fraction >= OCCLUSION_THRESHOLDS[0] else 1 if visible_fraction >= OCCLUSION_THRESHOLDS[1] else 2


def rect_to_world(camera_to_world: np.ndarray) -> np.ndarray:
    """(4, 4) pose of the levelled camera frame ``rect`` in the world (Z up), see the module docstring."""
    c2w = np.asarray(camera_to_world, float)
    down = np.array([0.0, 0.0, -1.0])
    x = c2w[:3, 0] - np.dot(c2w[:3, 0], down) * down
    if np.linalg.norm(x) < 1e-9:  # camera rolled 90 degrees: use its viewing direction for the heading
        z = c2w[:3, 2] - np.dot(c2w[:3, 2], down) * down
        x = np.cross(down, z)
    x /= np.linalg.norm(x)
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2], out[:3, 3] = x, down, np.cross(x, down), c2w[:3, 3]
    return out


def kitti_calib(K: np.ndarray, camera_to_world: np.ndarray) -> dict[str, np.ndarray]:
    """KITTI calib matrices (P0..P3 3x4, R0_rect 3x3, Tr_velo_to_cam, Tr_imu_to_velo 3x4)."""
    r2w = rect_to_world(camera_to_world)
    w2c = np.linalg.inv(np.asarray(camera_to_world, float))
    cam_from_rect = (w2c @ r2w)[:3, :3]
    P = np.asarray(K, float) @ np.hstack([cam_from_rect, np.zeros((3, 1))])
    return {"P0": P, "P1": P, "P2": P, "P3": P, "R0_rect": cam_from_rect.T, "Tr_velo_to_cam": w2c[:3, :],
            "Tr_imu_to_velo": np.eye(4)[:3, :]}


def calib_text(calib: dict[str, np.ndarray]) -> str:
    return "".join(f"{k}: {' '.join(f'{v:.12e}' for v in m.ravel())}\n" for k, m in calib.items())


def _rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _wrap(angle: float) -> float:
    """Angle in [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def kitti_box(obj: dict, world_to_rect: np.ndarray) -> dict[str, float]:
    """KITTI 3D box of one object: dimensions h, w, l (meters), location x, y, z of the bottom-face centre in
    ``rect``, rotation_y and alpha (radians). KITTI's l runs along the object's local X, w along local Y, h along
    local Z (up). Objects tilted off upright get the smallest such box, turned about Y, that encloses their box."""
    lo, hi = np.array(obj["bbox_3d"]["min"]), np.array(obj["bbox_3d"]["max"])
    l2r = world_to_rect @ np.asarray(obj["bbox_3d"]["local_to_world"], float)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    pts = corners @ l2r[:3, :3].T + l2r[:3, 3]
    axes = l2r[:3, :3] / np.linalg.norm(l2r[:3, :3], axis=0)
    heading = axes[:, 0] if math.hypot(axes[0, 0], axes[2, 0]) > 1e-6 else axes[:, 1]
    ry = math.atan2(-heading[2], heading[0])
    R = _rot_y(ry)
    local = pts @ R  # rows: R^T p, the corners in the box's own (KITTI object) frame
    mn, mx = local.min(0), local.max(0)
    bottom = R @ np.array([(mn[0] + mx[0]) / 2, mx[1], (mn[2] + mx[2]) / 2])
    return {"h": float(mx[1] - mn[1]), "w": float(mx[2] - mn[2]), "l": float(mx[0] - mn[0]),
            "x": float(bottom[0]), "y": float(bottom[1]), "z": float(bottom[2]), "rotation_y": _wrap(ry),
            "alpha": _wrap(ry - math.atan2(bottom[0], bottom[2]))}


def kitti_corners(box: dict[str, float]) -> np.ndarray:
    """The 8 corners (rect frame, meters) of a KITTI box, as the KITTI devkit's ``compute_box_3d`` makes them."""
    length, w, h = box["l"], box["w"], box["h"]
    x = np.array([1, 1, -1, -1, 1, 1, -1, -1]) * length / 2
    y = np.array([0, 0, 0, 0, -h, -h, -h, -h])
    z = np.array([1, -1, -1, 1, 1, -1, -1, 1]) * w / 2
    return (_rot_y(box["rotation_y"]) @ np.vstack([x, y, z])).T + [box["x"], box["y"], box["z"]]


def kitti_line(obj: dict, box: dict[str, float]) -> str:
    """One label_2 line: type truncated occluded alpha left top right bottom h w l x y z rotation_y."""
    x0, y0, x1, y1 = obj["bbox_2d_tight"]
    return (f"{safe_name(obj['class'])} {obj['truncation']:.6f} {occlusion_level(obj['visible_fraction'])} "
            f"{box['alpha']:.6f} {x0:.2f} {y0:.2f} {x1:.2f} {y1:.2f} {box['h']:.6f} {box['w']:.6f} {box['l']:.6f} "
            f"{box['x']:.6f} {box['y']:.6f} {box['z']:.6f} {box['rotation_y']:.6f}")


class KittiExporter:
    """Writes KITTI object labels, calib files and image links; ``ImageSets/<split>.txt`` list the frames."""

    needs = FORMAT_NEEDS["kitti"]

    def __init__(self, out: Path, dataset: DatasetInfo, settings: ExportSettings) -> None:
        self.out, self.dataset, self.settings = out, dataset, settings
        for sub in ("image_2", "label_2", "calib", "ImageSets"):
            (out / sub).mkdir(parents=True, exist_ok=True)

    def frame(self, src: FrameSource, split: str, objects: list[dict]) -> dict:
        name = f"{src.index:06d}"
        camera = src.labels["camera"]
        c2w = np.asarray(camera["camera_to_world"], float)
        world_to_rect = np.linalg.inv(rect_to_world(c2w))
        lines = [kitti_line(obj, kitti_box(obj, world_to_rect)) for obj in objects]
        (self.out / "label_2" / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
        (self.out / "calib" / f"{name}.txt").write_text(calib_text(kitti_calib(np.asarray(camera["K"]), c2w)))
        rgb = src.path("rgb")
        if rgb is not None:
            link_or_copy(rgb, self.out / "image_2" / f"{name}{rgb.suffix}")
        return {"name": name}

    def finalize(self, parts: Iterable[dict]) -> dict:
        lists = {n: [] for n in self.settings.split.names}
        for part in parts:  # names only: 7 bytes a frame
            lists[part["split"]].append(part["data"]["name"])
        for split, names in lists.items():
            write_file_durably(self.out / "ImageSets" / f"{split}.txt", "".join(n + "\n" for n in names).encode(),
                               drop_cache=False)
        return {"occlusion_thresholds": list(OCCLUSION_THRESHOLDS)}
