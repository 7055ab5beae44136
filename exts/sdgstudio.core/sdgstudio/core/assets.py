"""Asset geometry facts the sampler and the stage builder share: primitive shapes and local bounds.

A primitive of ``size`` s fits a cube of edge s centred on its origin (sphere: diameter s; cylinder and cone:
diameter s, height s along Z; capsule: radius s/4, total height s along Z). A USD asset keeps its own units
and origin; with ``size`` set, it is uniformly scaled so its largest extent equals ``size`` meters.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .config import AssetItem

DEFAULT_PRIMITIVE_SIZE = 0.1  # meters


def primitive_attributes(source: str, size: float) -> dict[str, float | str]:
    """USD attribute values for a primitive of the given nominal size (meters)."""
    if source == "cube":
        return {"size": size}
    if source == "sphere":
        return {"radius": size / 2}
    if source in ("cylinder", "cone"):
        return {"radius": size / 2, "height": size, "axis": "Z"}
    if source == "capsule":
        return {"radius": size / 4, "height": size / 2, "axis": "Z"}
    raise ValueError(f"unknown primitive '{source}'")


@lru_cache(maxsize=256)
def usd_file_bounds(path: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Axis-aligned bounds of a USD file's default prim (its own units), from pxr's BBoxCache."""
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(path, load=Usd.Stage.LoadAll)
    root = stage.GetDefaultPrim() or stage.GetPseudoRoot()
    cache = UsdGeom.BBoxCache(Usd.TimeCode.Default(), [UsdGeom.Tokens.default_, UsdGeom.Tokens.render])
    box = cache.ComputeUntransformedBound(root).ComputeAlignedRange()
    if box.IsEmpty():
        raise ValueError(f"USD asset has no geometry: {path}")
    return tuple(box.GetMin()), tuple(box.GetMax())  # type: ignore[return-value]


def item_bounds(item: AssetItem, size: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """``(local_min, local_max, normalize_scale)``: unscaled local bounds and the factor that applies ``size``."""
    if item.is_primitive:
        half = (size or DEFAULT_PRIMITIVE_SIZE) / 2
        return np.full(3, -half), np.full(3, half), 1.0
    lo, hi = (np.asarray(v, dtype=float) for v in usd_file_bounds(item.source))
    factor = 1.0 if size is None else size / float(np.max(hi - lo))
    return lo, hi, factor


def box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The 8 corners of an axis-aligned box, shape (8, 3)."""
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def rotation_xyz(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """USD ``xformOp:rotateXYZ`` (degrees) as a 3x3 column-vector matrix: X first, then Y, then Z."""
    rx, ry, rz = np.radians([roll, pitch, yaw])
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


Z_UP = (0.0, 0.0, 1.0)


def look_at(eye: np.ndarray, target: np.ndarray, up: tuple[float, float, float] = Z_UP) -> np.ndarray:
    """4x4 column-vector transform of a USD camera (looking down -Z, +Y up) at ``eye`` looking at ``target``."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    up = np.asarray(up, dtype=float)
    if abs(float(np.dot(forward, up))) > 0.999:  # looking straight up or down: pick another up
        up = np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = right, true_up, -forward, eye
    return m
