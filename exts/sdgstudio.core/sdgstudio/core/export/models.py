"""Object models for the BOP export: stable object ids, PLY files and ``models_info.json`` entries.

A BOP object id names one model. Ours are the config's assets in config order (ids 1, 2, ...), then its labelled
props; every slot of an asset (``/World/Objects/<asset>_<slot>``) is that asset's model. Models are the exact
triangles the raster backend renders, in the object's own frame before its scale, in millimeters.
"""

from __future__ import annotations

import numpy as np

OBJECTS_ROOT = "/World/Objects/"
PROPS_ROOT = "/World/Props/"


def model_table(config: dict) -> dict[str, dict]:
    """Model name -> {"obj_id", "class"}: assets in config order, then labelled props."""
    table: dict[str, dict] = {}
    for asset in config.get("assets", []):
        table[asset["name"]] = {"obj_id": len(table) + 1, "class": asset["class"]}
    for prop in config.get("props", []):
        if prop.get("class"):
            table[prop["name"]] = {"obj_id": len(table) + 1, "class": prop["class"]}
    return table


def model_name(prim_path: str) -> str | None:
    """The model (asset or prop name) of an object's prim path; None for prims SDG Studio did not make."""
    if prim_path.startswith(OBJECTS_ROOT):
        name, sep, slot = prim_path[len(OBJECTS_ROOT):].rpartition("_")
        return name if sep and slot.isdigit() and "/" not in name else None
    if prim_path.startswith(PROPS_ROOT) and "/" not in prim_path[len(PROPS_ROOT):]:
        return prim_path[len(PROPS_ROOT):]
    return None


def ply_bytes(points_mm: np.ndarray, tris: np.ndarray, comment: str = "") -> bytes:
    """Binary little-endian PLY: float32 x, y, z and triangles as ``list uchar int`` (read by the BOP toolkit,
    Open3D, trimesh, MeshLab)."""
    pts = np.ascontiguousarray(points_mm, "<f4")
    faces = np.empty(len(tris), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    faces["n"], faces["v"] = 3, tris
    header = "ply\nformat binary_little_endian 1.0\n" + "".join(f"comment {c}\n" for c in comment.splitlines())
    header += (f"element vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\n"
               f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    return header.encode() + pts.tobytes() + faces.tobytes()


def read_ply(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Points and triangles of a PLY written by ``ply_bytes`` (for tests and checks)."""
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode().splitlines()
    nv = int(next(h for h in header if h.startswith("element vertex")).split()[-1])
    nf = int(next(h for h in header if h.startswith("element face")).split()[-1])
    pts = np.frombuffer(data, "<f4", nv * 3, end).reshape(nv, 3)
    faces = np.frombuffer(data, [("n", "u1"), ("v", "<i4", (3,))], nf, end + 12 * nv)
    return pts, faces["v"]


def diameter(points: np.ndarray, chunk: int = 512) -> float:
    """Largest distance between two vertices (exact; a chunk x N matrix at a time)."""
    pts = np.asarray(points, float)
    sq = (pts**2).sum(1)
    best = 0.0
    for start in range(0, len(pts), chunk):
        block = pts[start:start + chunk]
        d2 = sq[start:start + chunk, None] + sq[None, :] - 2.0 * (block @ pts.T)
        best = max(best, float(d2.max(initial=0.0)))
    return float(np.sqrt(best))


def model_info(points_mm: np.ndarray) -> dict[str, float]:
    """BOP ``models_info.json`` entry: diameter, min_x/y/z and size_x/y/z in millimeters."""
    lo, hi = points_mm.min(0), points_mm.max(0)
    return {"diameter": diameter(points_mm), "min_x": float(lo[0]), "min_y": float(lo[1]), "min_z": float(lo[2]),
            "size_x": float(hi[0] - lo[0]), "size_y": float(hi[1] - lo[1]), "size_z": float(hi[2] - lo[2])}
