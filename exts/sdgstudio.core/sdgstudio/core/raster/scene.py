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

import itertools
from dataclasses import dataclass

import numpy as np
import warp as wp
from pxr import Gf, Sdf, Usd, UsdGeom

from ..frame import USD_TO_OPENCV
from ..scene_objects import StageLayout, stage_layout
from ..stage import TARGET_ATTR
from .changes import StageChanges
from .materials import Cache, Light, Material, MaterialReader, read_lights
from .shapes import Piece, build_piece, column_matrix, hull_triangles

__all__ = ["CameraInfo", "Instance", "MeshEntry", "RenderScene", "SceneObject", "SceneReader", "Material", "Light"]

_SERIALS = itertools.count(1)


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
class MeshEntry:
    """A cached ``wp.Mesh`` (BVH for shadow rays) in its instance frame (only referenced vertices kept)."""

    mesh: wp.Mesh
    points: np.ndarray  #: (N, 3) float64, instance frame
    tris: np.ndarray  #: (T, 3) int32
    lo: np.ndarray  #: (3,) AABB min, instance frame
    hi: np.ndarray
    seg_tris: np.ndarray  #: (S,) triangles per gprim segment
    hull: np.ndarray  #: (T,) bool: triangle on the convex hull (shapes.hull_triangles): seen from outside, a shadow
    #: ray leaving it cannot meet this mesh again
    centroid: np.ndarray  #: (3,) mean vertex, instance frame (inside the convex hull)
    box: bool  #: the mesh is the surface of its box [lo, hi] (a Cube prim): a slab test is its exact ray test
    serial: int  #: unique per built entry (keys of device buffers that concatenate entries)


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



def read_camera(stage: Usd.Stage, camera_path: str, resolution: tuple[int, int], world=None, value=None
                ) -> CameraInfo:
    """K: fx = fy = focalLength * W / horizontalAperture, principal point at the image centre shifted by the
    aperture offsets; the pose has any scale removed (rigid). ``world(prim)`` / ``value(attr)``: the camera's
    local-to-world ``Gf.Matrix4d`` and an attribute's value (default: the stage's)."""
    cam = UsdGeom.Camera(stage.GetPrimAtPath(camera_path))
    if not cam:
        raise ValueError(f"camera_path {camera_path!r} is not a UsdGeom.Camera")
    if cam.GetProjectionAttr().Get() == UsdGeom.Tokens.orthographic:
        raise NotImplementedError(f"orthographic camera {camera_path!r} is not supported by the raster backend")
    w, h = int(resolution[0]), int(resolution[1])
    focal_attr = cam.GetFocalLengthAttr()
    focal = float(value(focal_attr) if value is not None else focal_attr.Get())
    hap = float(cam.GetHorizontalApertureAttr().Get())
    f = focal * w / hap
    ox = float(cam.GetHorizontalApertureOffsetAttr().Get() or 0.0) * w / hap
    oy = float(cam.GetVerticalApertureOffsetAttr().Get() or 0.0) * w / hap
    K = np.array([[f, 0.0, w / 2 + ox], [0.0, f, h / 2 - oy], [0.0, 0.0, 1.0]])
    m = column_matrix(world(cam.GetPrim()) if world is not None
                      else cam.ComputeLocalToWorldTransform(Usd.TimeCode.Default()))
    u, _, vt = np.linalg.svd(m[:3, :3])
    m[:3, :3] = u @ vt
    near, far = cam.GetClippingRangeAttr().Get()
    return CameraInfo(w, h, K, m @ USD_TO_OPENCV, float(near), float(far), camera_path)



def placement(m: Gf.Matrix4d) -> np.ndarray | None:
    """A root's local-to-world as a column-vector matrix, or None when it shows nothing (zero scale, not finite)."""
    if not m.GetDeterminant3() or not np.isfinite(m.GetDeterminant()):
        return None
    l2w = column_matrix(m)
    return l2w if np.all(np.isfinite(l2w)) else None


def target_of(root: Usd.Prim) -> bool:
    """Whether the object is the frame's target (``TARGET_ATTR``)."""
    attr = root.GetAttribute(TARGET_ATTR)
    return bool(attr and attr.Get())


@dataclass
class _Shape:
    """An instance's geometry as read for the last frame that read it (kept while nothing below its root changes)."""

    gprims: list[Usd.Prim]  #: the layout's list of the group's gprims (identity: a new layout re-reads)
    keys: list  #: each gprim's piece key then (identity: an edited gprim gets a new one)
    prims: list[Usd.Prim]  #: the gprims with a piece, in order
    mesh_key: tuple
    look_key: tuple
    entry: MeshEntry
    uv: np.ndarray
    color: np.ndarray


class SceneReader:
    """Reads a stage each frame, re-reading only what changed (``changes.py``): the gprim grouping, each gprim's
    cache key, each object's shape (its gprims' pieces in its frame) and each material's inputs are kept until an
    edit touches them; tessellations, ``wp.Mesh`` BVHs, appearance arrays and textures are cached by content.
    Transforms, lights and the camera are read every frame."""

    def __init__(self, class_names: list[str], device: str, segments: int = 96, max_age: int = 64) -> None:
        self.class_ids = {n: i + 1 for i, n in enumerate(class_names)}
        self.device, self.segments, self.max_age = device, segments, max_age
        self.pieces, self.meshes, self.looks = Cache(), Cache(), Cache()
        self.materials = MaterialReader()
        self.changes = StageChanges()
        self._layout: StageLayout | None = None
        self._piece_keys: dict[Sdf.Path, tuple] = {}  #: gprim -> build_piece(gprim) while the gprim is unedited
        self._shapes: dict[str, _Shape] = {}  #: object path -> its shape while nothing below its root changed
        self.tick = 0
        self.reads = 0  #: stage reads so far (``from_params.ParamsReader`` re-reads what it keeps of the stage after one)

    def read(self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int]) -> RenderScene:
        """Camera, instances (sorted by path), known-class objects, materials and lights of the stage now."""
        self.tick += 1
        self.reads += 1
        changed = self.changes.take(stage)
        if changed.full or changed.regroup or (self._layout and not changed.visibility <= self._layout.switches.keys()):
            self._layout = None
        if changed.full:
            self._piece_keys.clear()
            self._shapes.clear()
        for path in changed.prims:
            self._piece_keys.pop(path, None)
        # a prim moved inside an object moves its gprims relative to the object's root: re-read those shapes
        moved_within = {p for q in changed.moved for p in q.GetPrefixes()[:-1]}
        self.materials.begin_frame(changed, stage)
        camera = read_camera(stage, camera_path, resolution)
        xfc = UsdGeom.XformCache(Usd.TimeCode.Default())
        if self._layout is None:
            self._layout = stage_layout(stage)
        found = self._layout.visible()
        instances, objects, unknown = [], [], set()
        for path in sorted(found.groups):
            group = found.groups[path]
            root = group.root
            inst = self._instance(path, root, group.gprims, xfc, root.GetPath() in moved_within)
            if inst is not None:
                self.add(inst, group, lambda root=root: target_of(root), instances, objects, unknown)
        lights, ambient = read_lights(found.lights, xfc.GetLocalToWorldTransform)
        self.sweep()
        return RenderScene(camera, instances, objects, self.materials.frame_materials, lights, ambient,
                           sorted(unknown))

    def add(self, inst: Instance, group, target, instances: list[Instance], objects: list[SceneObject],
            unknown: set[str]) -> None:
        """Append a group's instance, and its object when its class is known (``target()``: whether it is the
        frame's target); an unknown class is noted instead."""
        cls = group.semantic_class
        if cls is not None and cls not in self.class_ids:
            unknown.add(cls)
        elif cls is not None:
            inst.obj = len(objects)
            objects.append(SceneObject(inst.path, cls, self.class_ids[cls], bool(target()), len(instances)))
        instances.append(inst)

    def keep(self, shape: _Shape) -> None:
        """A cached shape still in use: keep its pieces, mesh and appearance from being swept."""
        for g, k in zip(shape.gprims, shape.keys, strict=True):
            self.pieces.touch((str(g.GetPath()), k[0]), self.tick)
        self.meshes.touch(shape.mesh_key, self.tick)
        self.looks.touch(shape.look_key, self.tick)

    def sweep(self) -> None:
        """Drop what the caches have not used for ``max_age`` reads."""
        for c in (self.pieces, self.meshes, self.looks, self.materials.textures):
            c.sweep(self.tick, self.max_age)

    def _instance(self, path: str, root: Usd.Prim, gprims: list[Usd.Prim], xfc, moved_within: bool
                  ) -> Instance | None:
        l2w = placement(xfc.GetLocalToWorldTransform(root))
        if l2w is None:
            return None
        shape = self._shapes.get(path)
        if (shape is None or moved_within or shape.gprims is not gprims
                or any(self._piece_keys.get(g.GetPath()) is not k for g, k in zip(gprims, shape.keys, strict=True))):
            shape = self._shape(path, root, gprims, xfc)
            if shape is None:
                return None
            self._shapes[path] = shape
        else:
            self.keep(shape)
        mats = [self.materials.index_for(g, self.tick) for g in shape.prims]
        return Instance(path, shape.entry, shape.uv, shape.color, l2w, mats, shape.look_key)

    def _shape(self, path: str, root: Usd.Prim, gprims: list[Usd.Prim], xfc) -> _Shape | None:
        """The gprims' pieces in the object's frame, as one cached mesh and appearance; None when none has one."""
        parts, keys = [], []
        for g in gprims:
            keys.append(self._piece_key(g))
            key, build = keys[-1]
            piece = self.pieces.get((str(g.GetPath()), key), self.tick, build)
            if piece is not None:
                # Child -> object transform from the local ops in between only: independent of the object's own
                # pose, so the cached mesh (and the 3D box) are bit-identical whatever frame came before.
                rel = np.eye(4) if g == root else column_matrix(xfc.ComputeRelativeTransform(g, root)[0])
                parts.append((g, key, piece, rel))
        if not parts:
            return None
        mkey = (path, tuple((p.geom_key, r.round(12).tobytes()) for _, _, p, r in parts))
        entry = self.meshes.get(mkey, self.tick, lambda: self._build_mesh([(p, r) for _, _, p, r in parts]))
        look_key = (mkey, tuple(k for _, k, _, _ in parts))
        uv, col = self.looks.get(look_key, self.tick, lambda: (
            np.concatenate([p.uv for _, _, p, _ in parts]).reshape(-1, 2),
            np.concatenate([p.color for _, _, p, _ in parts]).reshape(-1, 3)))
        return _Shape(gprims, keys, [g for g, _, _, _ in parts], mkey, look_key, entry, uv, col)

    def _piece_key(self, gprim: Usd.Prim) -> tuple:
        hit = self._piece_keys.get(gprim.GetPath())
        if hit is None:
            hit = self._piece_keys[gprim.GetPath()] = build_piece(gprim, self.segments)
        return hit

    def close(self) -> None:
        """Stop listening to the stage."""
        self.changes.close()

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
        hull = np.ones(len(tris), bool) if len(parts) == 1 and parts[0][0].convex else hull_triangles(points, tris)
        return MeshEntry(mesh, points, tris, points.min(0), points.max(0),
                         np.array([len(p.tris) for p, _ in parts], np.int64), hull, points.mean(0),
                         len(parts) == 1 and parts[0][0].box and np.allclose(parts[0][1][:3, :3], np.diag(
                             np.diag(parts[0][1][:3, :3]))), next(_SERIALS))
