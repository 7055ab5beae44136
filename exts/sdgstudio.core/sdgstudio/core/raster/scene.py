"""Reads any USD stage into a :class:`RenderScene` for the raster backend, with caches across frames.

* Geometry: every visible, default/render-purpose ``UsdGeom.Gprim`` reached with instance proxies. Meshes are
  fan-triangulated (holes skipped, subdivision ignored: the control cage is rendered); Cube, Sphere, Cylinder(_1),
  Cone, Capsule(_1) and Plane are tessellated (curved prims with ``segments`` around their axis, spheres with
  ``segments // 2`` rings; the sag is ``r * (1 - cos(pi / segments))``, 0.05 % of the radius at 96). Point
  instancers are not expanded. Both faces of every triangle are hit (no back-face culling).
* Objects: the nearest ancestor-or-self prim whose ``semantics:labels:class`` (``UsdSemantics.LabelsAPI`` "class")
  is non-empty owns a gprim; its first label is the class. All gprims of one object become ONE ``wp.Mesh`` in the
  object prim's local frame (before its own scale); a gprim without a labelled ancestor is its own instance.
* Materials: the bound material's (``full`` purpose) surface: ``UsdPreviewSurface`` (``diffuseColor`` constant or
  through ``UsdUVTexture``, ``roughness``, ``metallic``) or MDL OmniPBR (``diffuse_color_constant``,
  ``diffuse_texture``, ``reflection_roughness_constant``, ``metallic_constant``). Fallback: ``primvars:displayColor``
  (any interpolation), else 0.5 grey. UVs: ``primvars:st``, else the first texCoord2f primvar.
* Everything is read at ``Usd.TimeCode.Default()``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import warp as wp
from pxr import Gf, Sdf, Usd, UsdGeom, UsdLux, UsdShade

from ..frame import USD_TO_OPENCV

__all__ = ["CameraInfo", "Instance", "MeshEntry", "RenderScene", "SceneObject", "SceneReader", "Material", "Light"]

_CLASS_ATTR = "semantics:labels:class"
_IMPLICIT = ("Cube", "Sphere", "Cylinder", "Cylinder_1", "Cone", "Capsule", "Capsule_1", "Plane")


@dataclass
class CameraInfo:
    """Pinhole camera: K in pixels, ``cam_to_world`` the rigid OpenCV-frame pose, clip range in meters."""

    width: int
    height: int
    K: np.ndarray
    cam_to_world: np.ndarray
    near: float
    far: float
    prim_path: str


@dataclass
class Piece:
    """One tessellated gprim in its own local frame; ``uv``/``color`` are per triangle corner (T, 3, k)."""

    points: np.ndarray  #: (N, 3) float64
    tris: np.ndarray  #: (T, 3) int32
    uv: np.ndarray  #: (T, 3, 2) float32
    color: np.ndarray  #: (T, 3, 3) float32 linear displayColor (0.5 grey when absent)
    geom_key: bytes


@dataclass
class MeshEntry:
    """A cached ``wp.Mesh`` in its instance frame (only referenced vertices kept) and per-gprim triangle counts."""

    mesh: wp.Mesh
    points: np.ndarray  #: (N, 3) float64, instance frame
    tris: np.ndarray  #: (T, 3) int32
    lo: np.ndarray  #: (3,) AABB min, instance frame
    hi: np.ndarray
    seg_tris: np.ndarray  #: (S,) triangles per gprim segment


@dataclass
class Instance:
    """A ray-cast instance: one object (or one unlabelled gprim) with its world transform this frame."""

    path: str
    entry: MeshEntry
    uv: np.ndarray  #: (T*3, 2) float32 per triangle corner
    color: np.ndarray  #: (T*3, 3) float32 linear displayColor per corner
    local_to_world: np.ndarray  #: (4, 4) column-vector, includes scale
    seg_materials: list[int]  #: material index per gprim segment (0 = none)
    key: tuple  #: identifies geometry + appearance arrays (for buffer caches)
    obj: int = -1  #: index into RenderScene.objects, -1 when unlabelled / unknown class


@dataclass
class Material:
    """Shading inputs. ``color`` None = use displayColor; a texture replaces the colour (times scale, plus bias)."""

    color: np.ndarray | None = None  #: (3,) linear
    texture: np.ndarray | None = None  #: (h, w, 3) uint8 as stored in the file
    texture_key: str = ""  #: resolved path (texture cache key)
    srgb: bool = True  #: decode the texture from sRGB (False: sourceColorSpace = raw)
    tex_scale: np.ndarray = field(default_factory=lambda: np.ones(3))
    tex_bias: np.ndarray = field(default_factory=lambda: np.zeros(3))
    repeat: tuple[bool, bool] = (True, True)  #: wrapS, wrapT: repeat (True) or clamp
    roughness: float = 0.5
    metallic: float = 0.0


@dataclass
class Light:
    """``kind`` 0 distant (``vec`` = unit direction towards the light, E = ``rgb``), 1 point / 2 one-sided point
    (``vec`` = position, E = ``rgb`` / d**2, kind 2 times max(0, cos) about ``axis``)."""

    kind: int
    rgb: np.ndarray  #: (3,) linear
    vec: np.ndarray
    axis: np.ndarray = field(default_factory=lambda: np.zeros(3))
    radius: float = 0.0
    diffuse: float = 1.0
    specular: float = 1.0


@dataclass
class SceneObject:
    """A labelled object whose class is in the class list."""

    path: str
    class_name: str
    class_id: int
    is_target: bool
    instance: int  #: index into RenderScene.instances


@dataclass
class RenderScene:
    """Everything the backend needs for one frame."""

    camera: CameraInfo
    instances: list[Instance]
    objects: list[SceneObject]
    materials: list[Material]
    lights: list[Light]
    ambient: np.ndarray  #: (3,) linear irradiance from dome lights (also the background colour)
    unknown_classes: list[str]


def _digest(*parts) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(np.ascontiguousarray(p).tobytes() if isinstance(p, np.ndarray) else repr(p).encode())
        h.update(b"|")
    return h.digest()


class _Cache:
    """Dict with last-use ticks; ``sweep`` drops entries unused for more than ``max_age`` renders."""

    def __init__(self) -> None:
        self.data: dict = {}

    def get(self, key, tick: int, build):
        hit = self.data.get(key)
        if hit is None:
            hit = self.data[key] = [build(), tick]
        hit[1] = tick
        return hit[0]

    def sweep(self, tick: int, max_age: int) -> None:
        for k in [k for k, v in self.data.items() if tick - v[1] > max_age]:
            del self.data[k]


# ---------------------------------------------------------------- tessellation (pure numpy)
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


def build_piece(prim: Usd.Prim, seg: int) -> tuple[bytes, callable]:
    """Returns the full cache key of a gprim and a builder for its :class:`Piece` (None when empty)."""
    pvapi = UsdGeom.PrimvarsAPI(prim)
    col_v, col_i = _flat_primvar(pvapi.GetPrimvar("displayColor"))
    st = pvapi.GetPrimvar("st")
    if not (st and st.HasValue()):
        st = next((p for p in pvapi.GetPrimvarsWithValues() if p.GetTypeName().role == "TextureCoordinate"), None)
    st_v, st_i = _flat_primvar(st)
    if prim.GetTypeName() in _IMPLICIT:
        params = _implicit_params(prim)
        geom_key = _digest(params, seg)
        key = _digest(geom_key, col_v)

        def build() -> Piece:
            p, tris, uv = _tessellate(params, seg)
            col = _corners(col_v, "constant", None, None, tris, 0, 0, 0, 3)
            return Piece(p, tris, uv[tris].astype(np.float32), _col(col, len(tris)), geom_key)

        return key, build
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


def _matrix(m: Gf.Matrix4d) -> np.ndarray:
    """USD row-vector GfMatrix4d -> column-vector float64 numpy."""
    return np.array(m, dtype=np.float64).T


def _class_of(prim: Usd.Prim) -> str | None:
    attr = prim.GetAttribute(_CLASS_ATTR)
    labels = attr.Get() if attr and attr.HasValue() else None
    return str(labels[0]) if labels else None


def read_camera(stage: Usd.Stage, camera_path: str, resolution: tuple[int, int]) -> CameraInfo:
    """K: fx = fy = focalLength * W / horizontalAperture, principal point at the image centre shifted by the
    aperture offsets; the pose has any scale removed (rigid)."""
    cam = UsdGeom.Camera(stage.GetPrimAtPath(camera_path))
    if not cam:
        raise ValueError(f"camera_path {camera_path!r} is not a UsdGeom.Camera")
    if cam.GetProjectionAttr().Get() == UsdGeom.Tokens.orthographic:
        raise NotImplementedError(f"orthographic camera {camera_path!r} is not supported by the raster backend")
    w, h = int(resolution[0]), int(resolution[1])
    focal, hap = float(cam.GetFocalLengthAttr().Get()), float(cam.GetHorizontalApertureAttr().Get())
    f = focal * w / hap
    ox = float(cam.GetHorizontalApertureOffsetAttr().Get() or 0.0) * w / hap
    oy = float(cam.GetVerticalApertureOffsetAttr().Get() or 0.0) * w / hap
    K = np.array([[f, 0.0, w / 2 + ox], [0.0, f, h / 2 - oy], [0.0, 0.0, 1.0]])
    m = _matrix(cam.ComputeLocalToWorldTransform(Usd.TimeCode.Default()))
    u, _, vt = np.linalg.svd(m[:3, :3])
    m[:3, :3] = u @ vt
    near, far = cam.GetClippingRangeAttr().Get()
    return CameraInfo(w, h, K, m @ USD_TO_OPENCV, float(near), float(far), camera_path)


class MaterialReader:
    """Resolves bound materials to :class:`Material` s; per-frame table, textures cached by resolved path."""

    def __init__(self) -> None:
        self.textures = _Cache()
        self.frame_materials: list[Material] = [Material()]
        self._by_path: dict[str, int] = {}

    def begin_frame(self) -> None:
        self.frame_materials, self._by_path = [Material()], {}

    def index_for(self, prim: Usd.Prim, tick: int) -> int:
        mat, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial(UsdShade.Tokens.full)
        if not mat:
            return 0
        path = str(mat.GetPath())
        if path not in self._by_path:
            self.frame_materials.append(self._read(mat, tick))
            self._by_path[path] = len(self.frame_materials) - 1
        return self._by_path[path]

    def _read(self, mat: UsdShade.Material, tick: int) -> Material:
        shader = None
        for ctx in ("", "mdl"):
            src = mat.ComputeSurfaceSource(ctx)[0]
            if src:
                shader = src
                break
        if shader is None:
            return Material()
        out = Material()
        if shader.GetIdAttr().Get() == "UsdPreviewSurface":
            out.roughness = float(self._value(shader, "roughness", 0.5))
            out.metallic = float(self._value(shader, "metallic", 0.0))
            tex = self._texture_source(shader.GetInput("diffuseColor"))
            if tex is not None:
                self._apply_texture(out, tex, tick)
            else:
                out.color = np.asarray(self._value(shader, "diffuseColor", (0.18, 0.18, 0.18)), np.float64)
        else:  # MDL OmniPBR-style inputs
            out.roughness = float(self._value(shader, "reflection_roughness_constant", 0.5))
            out.metallic = float(self._value(shader, "metallic_constant", 0.0))
            tint = np.asarray(self._value(shader, "diffuse_tint", (1.0, 1.0, 1.0)), np.float64)
            self._load(out, self._value(shader, "diffuse_texture", None), tick)
            if out.texture is None:
                out.color = np.asarray(self._value(shader, "diffuse_color_constant", (0.2, 0.2, 0.2)), np.float64) * tint
            else:
                out.tex_scale = tint
        return out

    @staticmethod
    def _value(shader: UsdShade.Shader, name: str, default):
        inp = shader.GetInput(name)
        if not inp:
            return default
        for attr in inp.GetValueProducingAttributes():
            if not UsdShade.Output.IsOutput(attr):
                v = attr.Get()
                return default if v is None else v
        return default

    @staticmethod
    def _texture_source(inp: UsdShade.Input) -> UsdShade.Shader | None:
        for attr in inp.GetValueProducingAttributes() if inp else []:
            if UsdShade.Output.IsOutput(attr):
                sh = UsdShade.Shader(attr.GetPrim())
                if sh and sh.GetIdAttr().Get() == "UsdUVTexture":
                    return sh
        return None

    def _apply_texture(self, out: Material, sh: UsdShade.Shader, tick: int) -> None:
        out.srgb = str(self._value(sh, "sourceColorSpace", "auto")) != "raw"
        self._load(out, self._value(sh, "file", None), tick)
        out.tex_scale = np.asarray(self._value(sh, "scale", (1, 1, 1, 1)), np.float64)[:3]
        out.tex_bias = np.asarray(self._value(sh, "bias", (0, 0, 0, 0)), np.float64)[:3]
        out.repeat = tuple(str(self._value(sh, w, "repeat")) not in ("clamp", "black") for w in ("wrapS", "wrapT"))
        if out.texture is None:
            out.color = np.asarray(self._value(sh, "fallback", (0.0, 0.0, 0.0, 1.0)), np.float64)[:3]

    def _load(self, out: Material, asset, tick: int) -> None:
        """Sets ``out.texture`` (uint8 RGB, alpha dropped) from an asset path; unreadable files leave it None."""
        path = (asset.resolvedPath or asset.path) if isinstance(asset, Sdf.AssetPath) else ""
        if not path:
            return

        def build():
            from PIL import Image  # noqa: PLC0415

            try:
                with Image.open(path) as im:
                    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
            except OSError:
                return None

        out.texture, out.texture_key = self.textures.get(path, tick, build), path


def _light_input(prim: Usd.Prim, name: str, default):
    for n in ("inputs:" + name, name):
        attr = prim.GetAttribute(n)
        if attr and attr.HasValue():
            return attr.Get()
    return default


def read_lights(prims: list[Usd.Prim], xfc: UsdGeom.XformCache) -> tuple[list[Light], np.ndarray]:
    """UsdLux lights -> (:class:`Light` list, ambient RGB). See the backend module docstring for the mapping."""
    lights, ambient = [], np.zeros(3)
    for prim in prims:
        tn = prim.GetTypeName()
        rgb = np.asarray(_light_input(prim, "color", (1.0, 1.0, 1.0)), np.float64)
        if _light_input(prim, "enableColorTemperature", False):
            rgb = rgb * np.asarray(UsdLux.BlackbodyTemperatureAsRgb(float(_light_input(prim, "colorTemperature",
                                                                                       6500.0))))
        rgb = rgb * float(_light_input(prim, "intensity", 1.0)) * 2.0 ** float(_light_input(prim, "exposure", 0.0))
        rgb = rgb / 1000.0
        m = _matrix(xfc.GetLocalToWorldTransform(prim))
        s = abs(np.linalg.det(m[:3, :3])) ** (1.0 / 3.0)
        extra = dict(diffuse=float(_light_input(prim, "diffuse", 1.0)), specular=float(_light_input(prim, "specular",
                                                                                                      1.0)))
        if tn.startswith("DomeLight"):
            ambient += rgb
            continue
        if tn == "DistantLight":
            lights.append(Light(0, rgb, m[:3, 2] / np.linalg.norm(m[:3, 2]), **extra))
            continue
        r = float(_light_input(prim, "radius", 0.5)) * s
        if tn == "SphereLight":
            kind, proj, surf = 1, math.pi * r * r, 4.0 * math.pi * r * r
        elif tn == "DiskLight":
            kind, proj, surf = 2, math.pi * r * r, math.pi * r * r
        elif tn == "RectLight":
            kind = 2
            proj = surf = float(_light_input(prim, "width", 1.0)) * float(_light_input(prim, "height", 1.0)) * s * s
        elif tn == "CylinderLight":
            length = float(_light_input(prim, "length", 1.0)) * s
            kind, proj, surf = 1, 2.0 * r * length, 2.0 * math.pi * r * length
        else:
            continue
        scale = proj / surf if _light_input(prim, "normalize", False) and surf > 0 else proj
        lights.append(Light(kind, rgb * scale, m[:3, 3].copy(), -m[:3, 2] / np.linalg.norm(m[:3, 2]), r, **extra))
    return lights, ambient


class SceneReader:
    """Traverses a stage each frame; tessellations, ``wp.Mesh`` BVHs, appearance arrays, textures are cached."""

    def __init__(self, class_names: list[str], device: str, segments: int = 96, max_age: int = 64) -> None:
        self.class_ids = {n: i + 1 for i, n in enumerate(class_names)}
        self.device, self.segments, self.max_age = device, segments, max_age
        self.pieces, self.meshes, self.looks = _Cache(), _Cache(), _Cache()
        self.materials = MaterialReader()
        self.tick = 0

    def read(self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int]) -> RenderScene:
        """Camera, instances (sorted by path), known-class objects, materials and lights of the stage now."""
        self.tick += 1
        self.materials.begin_frame()
        camera = read_camera(stage, camera_path, resolution)
        xfc = UsdGeom.XformCache(Usd.TimeCode.Default())
        owner: dict = {}  # prim path -> (object prim, class) of the nearest labelled ancestor-or-self
        groups: dict[str, tuple[Usd.Prim, str | None, list[Usd.Prim]]] = {}
        light_prims: list[Usd.Prim] = []
        it = iter(Usd.PrimRange(stage.GetPseudoRoot(), Usd.TraverseInstanceProxies()))
        for prim in it:
            img = UsdGeom.Imageable(prim)
            if img and (img.GetVisibilityAttr().Get() == UsdGeom.Tokens.invisible
                        or img.GetPurposeAttr().Get() in (UsdGeom.Tokens.guide, UsdGeom.Tokens.proxy)) \
                    or prim.IsA(UsdGeom.PointInstancer):
                it.PruneChildren()
                continue
            cls = _class_of(prim)
            own = (prim, cls) if cls is not None else owner.get(prim.GetPath().GetParentPath())
            owner[prim.GetPath()] = own
            if prim.HasAPI(UsdLux.LightAPI):
                light_prims.append(prim)
            if not (prim.IsA(UsdGeom.Mesh) or prim.GetTypeName() in _IMPLICIT):
                continue
            key = str(own[0].GetPath()) if own else str(prim.GetPath())
            groups.setdefault(key, (own[0] if own else prim, own[1] if own else None, []))[2].append(prim)
        instances, objects, unknown = [], [], set()
        for path in sorted(groups):
            root, cls, gprims = groups[path]
            inst = self._instance(path, root, gprims, xfc)
            if inst is None:
                continue
            if cls is not None and cls not in self.class_ids:
                unknown.add(cls)
            elif cls is not None:
                inst.obj = len(objects)
                tgt = root.GetAttribute("sdgstudio:target")
                objects.append(SceneObject(path, cls, self.class_ids[cls], bool(tgt and tgt.Get()), len(instances)))
            instances.append(inst)
        lights, ambient = read_lights(light_prims, xfc)
        for c in (self.pieces, self.meshes, self.looks, self.materials.textures):
            c.sweep(self.tick, self.max_age)
        return RenderScene(camera, instances, objects, self.materials.frame_materials, lights, ambient,
                           sorted(unknown))

    def _instance(self, path: str, root: Usd.Prim, gprims: list[Usd.Prim], xfc) -> Instance | None:
        l2w = _matrix(xfc.GetLocalToWorldTransform(root))
        try:
            w2l = np.linalg.inv(l2w)
        except np.linalg.LinAlgError:
            return None  # zero scale: nothing to see
        parts = []
        for g in gprims:
            key, build = build_piece(g, self.segments)
            piece = self.pieces.get((str(g.GetPath()), key), self.tick, build)
            if piece is not None:
                # Child -> object transform from the local ops in between only: independent of the object's own
                # pose, so the cached mesh (and the 3D box) are bit-identical whatever frame came before.
                rel = np.eye(4) if g == root else _matrix(xfc.ComputeRelativeTransform(g, root)[0])
                parts.append((g, key, piece, rel))
        if not parts or not np.all(np.isfinite(w2l)):
            return None
        mkey = (path, tuple((p.geom_key, r.round(12).tobytes()) for _, _, p, r in parts))
        entry = self.meshes.get(mkey, self.tick, lambda: self._build_mesh([(p, r) for _, _, p, r in parts]))
        look_key = (mkey, tuple(k for _, k, _, _ in parts))
        uv, col = self.looks.get(look_key, self.tick, lambda: (
            np.concatenate([p.uv for _, _, p, _ in parts]).reshape(-1, 2),
            np.concatenate([p.color for _, _, p, _ in parts]).reshape(-1, 3)))
        mats = [self.materials.index_for(g, self.tick) for g, _, _, _ in parts]
        return Instance(path, entry, uv, col, l2w, mats, look_key)

    def _build_mesh(self, parts: list[tuple[Piece, np.ndarray]]) -> MeshEntry:
        pts, tris, n = [], [], 0
        for p, rel in parts:
            pts.append(p.points @ rel[:3, :3].T + rel[:3, 3])
            tris.append(p.tris + n)
            n += len(p.points)
        used, inv = np.unique(np.concatenate(tris), return_inverse=True)
        points, tris = np.concatenate(pts)[used], inv.reshape(-1, 3).astype(np.int32)
        mesh = wp.Mesh(points=wp.array(points.astype(np.float32), dtype=wp.vec3, device=self.device),
                       indices=wp.array(tris.ravel(), dtype=wp.int32, device=self.device))
        return MeshEntry(mesh, points, tris, points.min(0), points.max(0),
                         np.array([len(p.tris) for p, _ in parts], np.int64))
