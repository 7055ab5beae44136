"""Tessellation of USD gprims into triangle pieces (pure numpy; cached per asset by the scene reader).

Meshes are fan-triangulated (holes skipped, subdivision ignored: the control cage is rendered); Cube, Sphere,
Cylinder(_1), Cone, Capsule(_1) and Plane are tessellated (curved prims with ``segments`` around their axis, spheres
with ``segments // 2`` rings; the sag is ``r * (1 - cos(pi / segments))``, 0.05 % of the radius at 96). Primvars
(``displayColor``, ``st``) are expanded to triangle corners.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from pxr import Gf, Usd, UsdGeom

from ..scene_objects import IMPLICIT


@dataclass
class Piece:
    """One tessellated gprim in its own local frame; ``uv``/``color`` are per triangle corner (T, 3, k)."""

    points: np.ndarray  #: (N, 3) float64
    tris: np.ndarray  #: (T, 3) int32
    uv: np.ndarray  #: (T, 3, 2) float32
    color: np.ndarray  #: (T, 3, 3) float32 linear displayColor (0.5 grey when absent)
    geom_key: object  #: hashable: identifies the geometry (tuple for implicit prims, digest for meshes)
    convex: bool = False  #: part of the boundary of a convex body by construction (implicit prims)
    box: bool = False  #: the surface of its own bounding box (Cube prims)



def _digest(*parts) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(np.ascontiguousarray(p).tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
        h.update(b"|")
    return h.digest()



def _grid(nu: int, nv: int, fn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tessellate ``fn(s, t) -> (N, 3)`` over the unit square; UV = (s, t)."""
    s, t = np.meshgrid(np.linspace(0.0, 1.0, nu + 1), np.linspace(0.0, 1.0, nv + 1))
    s, t = s.ravel(), t.ravel()
    a = (np.arange(nv)[:, None] * (nu + 1) + np.arange(nu)[None, :]).ravel()
    tris = np.concatenate([np.stack([a, a + 1, a + nu + 2], 1), np.stack([a, a + nu + 2, a + nu + 1], 1)])
    return fn(s, t), tris.astype(np.int32), np.stack([s, t], 1)


def _merge(parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pts, tris, uvs, n = [], [], [], 0
    for p, t, uv in parts:
        pts.append(p), tris.append(t + n), uvs.append(uv)
        n += len(p)
    return np.concatenate(pts), np.concatenate(tris).astype(np.int32), np.concatenate(uvs)


def _cube(size: float):
    faces = []
    for axis in range(3):
        for sign in (1.0, -1.0):
            n = np.eye(3)[axis] * sign
            up = np.array([0.0, 0.0, -sign]) if axis == 1 else np.array([0.0, 1.0, 0.0])
            right = np.cross(up, n)
            faces.append(_grid(1, 1, lambda s, t, n=n, r=right, u=up: size * (
                0.5 * n + (s[:, None] - 0.5) * r + (t[:, None] - 0.5) * u)))
    return _merge(faces)


def _ring(r, z, s):
    a = 2.0 * np.pi * s
    return np.stack([r * np.cos(a), r * np.sin(a), z], 1)


def _revolve(profile: list[tuple[float, float]], seg: int, rings: int = 1):
    """Surface of revolution about +Z through (radius, z) polyline points, each span ``rings`` rows."""
    parts = []
    for (r0, z0), (r1, z1) in zip(profile[:-1], profile[1:], strict=True):
        if r0 == 0.0 and r1 == 0.0:
            continue
        parts.append(_grid(seg, rings, lambda s, t, a=(r0, z0, r1, z1): _ring(
            a[0] + (a[2] - a[0]) * t, a[1] + (a[3] - a[1]) * t, s)))
    return _merge(parts)


def _hemi(r: float, zc: float, sign: float, seg: int):
    """Hemisphere of radius r centred at z=zc, bulging towards sign * Z (tessellated as revolved arc)."""
    n = max(seg // 4, 4)
    ang = np.linspace(0.0, np.pi / 2, n + 1)
    return [(r * math.cos(a), zc + sign * r * math.sin(a)) for a in ang]


def _axis_perm(pts: np.ndarray, axis: str) -> np.ndarray:
    """Rotate shapes built along +Z onto ``axis`` (cyclic permutation, a proper rotation)."""
    return pts[:, [2, 0, 1]] if axis == "X" else pts[:, [1, 2, 0]] if axis == "Y" else pts


def _implicit_params(prim: Usd.Prim) -> tuple:
    """(type, dimensions..., axis) of an implicit gprim, with the schema fallbacks."""
    tn = prim.GetTypeName()

    def get(name: str, default):
        attr = prim.GetAttribute(name)
        v = attr.Get() if attr else None
        return default if v is None else v

    axis = str(get("axis", "Z"))
    if tn == "Cube":
        return tn, float(get("size", 2.0))
    if tn == "Sphere":
        return tn, float(get("radius", 1.0))
    if tn == "Plane":
        return tn, float(get("width", 2.0)), float(get("length", 2.0)), axis
    capsule = tn.startswith("Capsule")
    h = float(get("height", 1.0 if capsule else 2.0))
    if tn in ("Cylinder_1", "Capsule_1"):
        rd = 0.5 if capsule else 1.0
        return tn, float(get("radiusBottom", rd)), float(get("radiusTop", rd)), h, axis
    r = float(get("radius", 0.5 if capsule else 1.0))
    return tn, r, 0.0 if tn == "Cone" else r, h, axis


def _tessellate(params: tuple, seg: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points, triangles and per-vertex UVs of an implicit prim (see :func:`_implicit_params`)."""
    tn = params[0]
    if tn == "Cube":
        return _cube(params[1])
    if tn == "Sphere":
        r = params[1]
        return _grid(seg, max(seg // 2, 4), lambda s, t: _ring(r * np.sin(np.pi * t), -r * np.cos(np.pi * t), s))
    if tn == "Plane":
        _, w, ln, axis = params
        p, tris, uv = _grid(1, 1, lambda s, t: np.stack([(s - 0.5) * w, (t - 0.5) * ln, 0.0 * s], 1))
        return (p[:, [2, 1, 0]] if axis == "X" else p[:, [0, 2, 1]] if axis == "Y" else p), tris, uv
    _, rb, rt, h, axis = params
    if tn.startswith("Capsule"):
        prof = _hemi(rb, -h / 2, -1.0, seg)[::-1] + _hemi(rt, h / 2, 1.0, seg)
    else:
        prof = [(0.0, -h / 2), (rb, -h / 2), (rt, h / 2), (0.0, h / 2)]
    p, tris, uv = _revolve(prof, seg)
    return _axis_perm(p, axis), tris, uv


def _flat_primvar(pv: UsdGeom.Primvar) -> tuple[np.ndarray | None, str]:
    v = pv.ComputeFlattened() if pv and pv.HasValue() else None
    return (None if v is None or len(v) == 0 else np.asarray(v, dtype=np.float64)), (pv.GetInterpolation() if pv
                                                                                     else "")


def _corners(values, interp: str, tri_face, tri_fv, tris, n_faces, n_points, n_fv, dim: int):
    """Expand a flattened primvar to triangle corners (T, 3, dim), or None when it does not fit."""
    if values is None:
        return None
    values = values.reshape(len(values), -1)[:, :dim]
    if values.shape[1] != dim:
        return None
    if interp == "constant" or len(values) == 1:
        return np.broadcast_to(values[0], (*tris.shape, dim))
    n, idx = {"uniform": (n_faces, tri_face), "faceVarying": (n_fv, tri_fv), "vertex": (n_points, tris),
              "varying": (n_points, tris)}.get(interp, (0, None))
    if idx is None or len(values) < n:
        return None
    return values[idx[:, None].repeat(3, 1) if interp == "uniform" else idx]


def build_piece(prim: Usd.Prim, seg: int) -> tuple[object, callable]:
    """Returns the full cache key of a gprim and a builder for its :class:`Piece` (None when empty)."""
    pvapi = UsdGeom.PrimvarsAPI(prim)
    col_v, col_i = _flat_primvar(pvapi.GetPrimvar("displayColor"))
    if prim.GetTypeName() in IMPLICIT:  # UVs come from the tessellation; keys are plain tuples (cheap to hash)
        params = _implicit_params(prim)
        geom_key = ("implicit", params, seg)
        key = (geom_key, None if col_v is None else tuple(col_v[0]))

        def build() -> Piece:
            p, tris, uv = _tessellate(params, seg)
            col = _corners(col_v, "constant", None, None, tris, 0, 0, 0, 3)
            return Piece(p, tris, uv[tris].astype(np.float32), _col(col, len(tris)), geom_key, convex=True,
                         box=params[0] == "Cube")

        return key, build
    st = pvapi.GetPrimvar("st")
    if not (st and st.HasValue()):
        st = next((p for p in pvapi.GetPrimvarsWithValues() if p.GetTypeName().role == "TextureCoordinate"), None)
    st_v, st_i = _flat_primvar(st)
    mesh = UsdGeom.Mesh(prim)
    pts = np.asarray(mesh.GetPointsAttr().Get() or [], dtype=np.float64).reshape(-1, 3)
    counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get() or [], dtype=np.int64)
    idx = np.asarray(mesh.GetFaceVertexIndicesAttr().Get() or [], dtype=np.int64)
    holes = np.asarray(mesh.GetHoleIndicesAttr().Get() or [], dtype=np.int64)
    geom_key = _digest(pts, counts, idx, holes)
    key = _digest(geom_key, col_v, col_i, st_v, st_i)

    def build() -> Piece | None:
        if len(pts) == 0 or counts.sum() != len(idx) or (len(idx) and (idx.min() < 0 or idx.max() >= len(pts))):
            return None
        start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        ntri = np.maximum(counts - 2, 0)
        ntri[holes[(holes >= 0) & (holes < len(counts))]] = 0
        tri_face = np.repeat(np.arange(len(counts)), ntri)
        if len(tri_face) == 0:
            return None
        k = np.arange(len(tri_face)) - np.repeat(np.cumsum(ntri) - ntri, ntri) + 1
        fv = np.stack([start[tri_face], start[tri_face] + k, start[tri_face] + k + 1], 1)
        tris = idx[fv].astype(np.int32)
        args = (tri_face, fv, tris, len(counts), len(pts), len(idx))
        uv = _corners(st_v, st_i, *args, 2)
        uv = np.zeros((len(tris), 3, 2), np.float32) if uv is None else uv.astype(np.float32)
        return Piece(pts, tris, uv, _col(_corners(col_v, col_i, *args, 3), len(tris)), geom_key)

    return key, build


def _col(c, ntri: int) -> np.ndarray:
    return np.full((ntri, 3, 3), 0.5, np.float32) if c is None else np.ascontiguousarray(c, dtype=np.float32)



def column_matrix(m: Gf.Matrix4d) -> np.ndarray:
    """USD row-vector GfMatrix4d -> column-vector float64 numpy."""
    return np.array(m, dtype=np.float64).T


def hull_triangles(points: np.ndarray, tris: np.ndarray, max_tris: int = 8192) -> np.ndarray:
    """Per triangle: every vertex of the mesh lies on one side of its plane (to 1e-6 of the mesh size: float32
    points in files are rarely exactly planar), i.e. the triangle lies on the boundary of the mesh's convex hull, so
    a shadow ray leaving it outwards (from ``shadow_bias`` above it, far more than the tolerance) cannot meet the
    mesh again. Degenerate triangles count as not on the hull.

    O(vertices x triangles): meshes over ``max_tris`` triangles are not checked (all False).
    """
    out = np.zeros(len(tris), bool)
    if len(tris) == 0 or len(tris) > max_tris:
        return out
    a, b, c = (points[tris[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    length = np.linalg.norm(n, axis=1)
    keep = np.flatnonzero(length > 0)
    tol = 1e-6 * max(float(np.ptp(points, axis=0).max()), 1e-30)
    for s in range(0, len(keep), 512):
        k = keep[s:s + 512]
        nk = n[k] / length[k, None]
        d = nk @ points.T - np.einsum("ij,ij->i", nk, a[k])[:, None]
        out[k] = ~((d.max(1) > tol) & (d.min(1) < -tol))
    return out


def is_convex(points: np.ndarray, tris: np.ndarray, max_tris: int = 8192) -> bool:
    """True when every triangle lies on the mesh's convex hull (:func:`hull_triangles`): the mesh is part of the
    boundary of a convex body. Meshes over ``max_tris`` triangles are not checked and count as not convex."""
    hull = hull_triangles(points, tris, max_tris)
    return bool(len(hull)) and bool(hull.all())
