"""Synthetic datasets for exercising the exports quickly: label files and masks written directly, no rendering.

Each object is an ellipse (painted in id order, so later objects occlude earlier ones, some cut by the image
border) with a consistent 3D story: an upright object at the depth of its centre, seen by a camera tilted 30
degrees down. The labels follow every convention of ``frame.py``, so the exports treat these frames exactly like
rendered ones; ``synthetic_silhouettes`` gives BOP the full (unoccluded) ellipses. Used by tests and
``bench/export.py``.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from .. import __version__
from ..encoders import encode_labels, encode_manifest_line, encode_png, encode_tiff
from ..manifest import write_dataset_info
from .common import FrameSource

TABLETOP = Path(__file__).resolve().parents[3] / "data" / "scenes" / "tabletop.toml"


def _camera_to_world() -> np.ndarray:
    """A camera 1.5 m above the origin looking along world +X, tilted 30 degrees down (OpenCV axes)."""
    tilt = math.radians(30.0)
    forward = np.array([math.cos(tilt), 0.0, -math.sin(tilt)])
    right = np.array([0.0, -1.0, 0.0])
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, [0.0, 0.0, 1.5]
    return c2w


def _ellipse(u: float, v: float, a: float, b: float, width: int, height: int) -> tuple[np.ndarray, int, int]:
    """Pixels whose centre is inside the axis-aligned ellipse, cropped to the image: (mask, x0, y0)."""
    x0, x1 = max(0, int(math.floor(u - a))), min(width, int(math.ceil(u + a)) + 1)
    y0, y1 = max(0, int(math.floor(v - b))), min(height, int(math.ceil(v + b)) + 1)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), bool), 0, 0
    xs = (np.arange(x0, x1) + 0.5 - u) / a
    ys = (np.arange(y0, y1) + 0.5 - v) / b
    return ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0, x0, y0


def synthetic_frame(rng: np.random.Generator, index: int, width: int, height: int, n_objects: int,
                    assets: list[tuple[str, str, int]]) -> tuple[dict, np.ndarray, np.ndarray]:
    """Labels (``FrameData.labels_json`` layout), instance ids (uint16) and depth (float32 m) of one frame.

    ``assets`` = (asset name, class name, class id) cycled through for the objects."""
    f = float(width)
    K = np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    c2w = _camera_to_world()
    ids = np.zeros((height, width), np.uint16)
    depth = np.full((height, width), np.inf, np.float32)
    shapes = []
    for k in range(n_objects):
        u, v = rng.uniform(-0.05 * width, 1.05 * width), rng.uniform(-0.05 * height, 1.05 * height)
        a, b = rng.uniform(3, 0.12 * width, 2)
        z = float(rng.uniform(1.0, 3.0))
        mask, x0, y0 = _ellipse(u, v, a, b, width, height)
        ids[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]][mask] = k + 1
        depth[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]][mask] = z
        shapes.append((u, v, a, b, z, int(mask.sum())))
    counts = np.bincount(ids.ravel(), minlength=n_objects + 1)
    ids64 = ids.astype(np.int64)  # per-id extents in one pass, as the raster backend computes tight boxes
    cols = np.bincount((ids64 * width + np.arange(width)).ravel(), minlength=(n_objects + 1) * width)
    rows = np.bincount((ids64 * height + np.arange(height)[:, None]).ravel(), minlength=(n_objects + 1) * height)
    cols = cols.reshape(n_objects + 1, width) > 0
    rows = rows.reshape(n_objects + 1, height) > 0
    objects = []
    for k, (u, v, a, b, z, full) in enumerate(shapes):
        name, cls, cid = assets[k % len(assets)]
        pc = int(counts[k + 1])
        tight = None
        if pc:
            c, r = np.flatnonzero(cols[k + 1]), np.flatnonzero(rows[k + 1])
            tight = [float(c[0]), float(r[0]), float(c[-1] + 1), float(r[-1] + 1)]
        lx0, ly0, lx1, ly1 = u - a, v - b, u + a, v + b
        cx0, cy0, cx1, cy1 = max(lx0, 0.0), max(ly0, 0.0), min(lx1, float(width)), min(ly1, float(height))
        inside = max(cx1 - cx0, 0.0) * max(cy1 - cy0, 0.0)
        yaw = float(rng.uniform(-math.pi, math.pi))
        rot_world = np.array([[math.cos(yaw), -math.sin(yaw), 0.0], [math.sin(yaw), math.cos(yaw), 0.0], [0, 0, 1]])
        pose = np.eye(4)
        pose[:3, :3] = c2w[:3, :3].T @ rot_world
        pose[:3, 3] = z * np.linalg.solve(K, [u, v, 1.0])
        scale = float(rng.uniform(0.8, 1.2))
        l2w = c2w @ pose @ np.diag([scale, scale, scale, 1.0])
        objects.append({
            "instance_id": k + 1, "prim_path": f"/World/Objects/{name}_{k}", "class": cls, "class_id": cid,
            "pixel_count": pc, "unoccluded_pixel_count": full,
            "visible_fraction": round(pc / full, 6) if full else 0.0,
            "truncation": round(1.0 - inside / ((lx1 - lx0) * (ly1 - ly0)), 6),
            "bbox_2d_tight": tight, "bbox_2d_loose": [cx0, cy0, cx1, cy1] if inside > 0 else None,
            "bbox_3d": {"min": [-0.05, -0.04, 0.0], "max": [0.05, 0.04, 0.1], "local_to_world": l2w.tolist()},
            "pose_in_camera": {"R": pose[:3, :3].tolist(), "t": pose[:3, 3].tolist()},
            "scale": [scale] * 3, "is_target": False,
        })
    labels = {"frame": index, "objects": objects, "unlabeled_pixel_count": 0,
              "camera": {"prim_path": "/World/Camera", "width": width, "height": height, "K": K.tolist(),
                         "camera_to_world": c2w.tolist(), "clipping_range": [0.01, 100.0]},
              "extra": {"synthetic_ellipses": [list(s[:4]) for s in shapes]}}
    return labels, ids, depth


def write_synthetic_dataset(root: Path | str, frames: int, *, width: int = 320, height: int = 240,
                            objects: int = 20, seed: int = 0, config: dict | None = None) -> Path:
    """A dataset folder of ``frames`` synthetic frames (rgb, depth, instance, labels, manifest, dataset.json).

    ``config`` is what ``dataset.json`` records (default: the built-in tabletop scene, whose assets give BOP its
    models); objects cycle through its assets and classes."""
    from ..config import config_to_dict, load_config

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    config = config if config is not None else config_to_dict(load_config(TABLETOP))
    classes = {name: i + 1 for i, name in enumerate(config["classes"])}
    assets = [(a["name"], a["class"], classes[a["class"]]) for a in config["assets"]]
    write_dataset_info(root, {"tool": "sdgstudio", "version": __version__, "name": "synthetic", "seed": seed,
                              "backend": "synthetic", "resolution": [width, height],
                              "annotators": ["rgb", "depth", "instance_segmentation"],
                              "classes": [{"id": i, "name": n} for n, i in classes.items()], "config": config})
    rgb = encode_png(np.full((height, width, 3), 128, np.uint8))
    rng = np.random.default_rng(seed)
    with open(root / "manifest.jsonl", "wb") as manifest:
        for index in range(frames):
            labels, ids, depth = synthetic_frame(rng, index, width, height, objects, assets)
            files = {"rgb": (f"rgb_{index:06d}.png", rgb), "depth": (f"depth_{index:06d}.tif", encode_tiff(depth)),
                     "instance_segmentation": (f"instance_{index:06d}.png", encode_png(ids)),
                     "labels": (f"labels_{index:06d}.json", encode_labels(labels))}
            for name, data in files.values():
                (root / name).write_bytes(data)
            manifest.write(encode_manifest_line({
                "frame": index, "seed": seed, "files": {k: n for k, (n, _) in files.items()},
                "sha256": {n: hashlib.sha256(d).hexdigest() for n, d in files.values()}}))
    return root


def synthetic_silhouettes(src: FrameSource) -> dict[str, np.ndarray]:
    """Full silhouettes of a synthetic frame (the whole ellipses), the BOP exporter's ``silhouettes`` source."""
    out = {}
    for obj, (u, v, a, b) in zip(src.labels["objects"], src.labels["extra"]["synthetic_ellipses"], strict=True):
        full = np.zeros((src.height, src.width), bool)
        mask, x0, y0 = _ellipse(u, v, a, b, src.width, src.height)
        full[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
        out[obj["prim_path"]] = full
    return out
