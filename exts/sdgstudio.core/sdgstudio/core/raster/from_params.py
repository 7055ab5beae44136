"""A run's scenes straight from its frames' parameters: the stage is read, but not written, for every frame.

A run puts the stage in each frame's state (``stage.FrameWriter``: some 120 attribute values) and the reader reads
it back (``scene.SceneReader``): a third of a frame's host time on a GPU. Yet those values are all that changes on a
stage built by ``build_stage`` while nothing else edits it. ``ParamsReader.read`` takes a frame's values from
``stage.frame_values`` (the very values ``FrameWriter`` sets) and everything else from what the reader keeps of the
stage (shapes, bindings, untouched materials, light and camera settings), and computes what the values change as
USD computes it from the attributes:

* xform ops composed with ``Gf`` as ``UsdGeomXformable::GetLocalTransformation`` does (ops in reverse order,
  identity ops skipped; a 3-axis rotate as the product of three ``GfMatrix3d(GfRotation)``), and a prim's world
  transform as ``UsdGeomXformCache`` does (local times the parent's world);
* each value as the attribute stores it (float attributes round to float32; an asset path is resolved);
* lights, the camera and materials by the reader's own functions, fed these values.

So the scene equals the one read from the posed stage, bit for bit (tests/test_raster_from_params.py). ``read`` returns
None when it cannot answer: the reader has not read this stage yet, the stage was edited since (a notice), or an
object shows for the first time; the caller then poses the stage and reads it, which brings the reader up to date.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pxr import Ar, Gf, Sdf, Usd, UsdGeom, UsdShade

from ..stage import TARGET_ATTR, TEXTURE_FILE, camera_path_of, frame_values
from .materials import _light_input, read_lights
from .scene import Instance, RenderScene, SceneReader, placement, read_camera, target_of

_IDENTITY = Gf.Matrix4d(1.0)
_X, _Y, _Z = Gf.Vec3d.XAxis(), Gf.Vec3d.YAxis(), Gf.Vec3d.ZAxis()
_T = UsdGeom.XformOp
#: 3-axis rotates: the order of the per-axis matrices (UsdGeomXformOp::GetOpTransform)
_ROTATE_ORDER = {_T.TypeRotateXYZ: (0, 1, 2), _T.TypeRotateXZY: (0, 2, 1), _T.TypeRotateYXZ: (1, 0, 2),
                 _T.TypeRotateYZX: (1, 2, 0), _T.TypeRotateZXY: (2, 0, 1), _T.TypeRotateZYX: (2, 1, 0)}
_SINGLE_AXIS = {_T.TypeRotateX: _X, _T.TypeRotateY: _Y, _T.TypeRotateZ: _Z}


def op_transform(op_type, value) -> Gf.Matrix4d:
    """``UsdGeomXformOp::GetOpTransform`` of a (non-inverse) op holding ``value``."""
    if op_type == _T.TypeTransform:
        return Gf.Matrix4d(value)
    if op_type == _T.TypeTranslate:
        return Gf.Matrix4d(1.0).SetTranslate(Gf.Vec3d(value))
    if op_type == _T.TypeScale:
        return Gf.Matrix4d(1.0).SetScale(Gf.Vec3d(value))
    if op_type in _SINGLE_AXIS:
        return Gf.Matrix4d(1.0).SetRotate(Gf.Rotation(_SINGLE_AXIS[op_type], float(value)))
    if op_type in _ROTATE_ORDER:
        v = Gf.Vec3d(value)
        axes = [Gf.Matrix3d(Gf.Rotation(axis, v[k])) for k, axis in enumerate((_X, _Y, _Z))]
        a, b, c = (axes[k] for k in _ROTATE_ORDER[op_type])
        return Gf.Matrix4d(1.0).SetRotate(a * b * c)
    raise ValueError(f"xform op type {op_type} is not set by FrameWriter")


def _stored(attr: Usd.Attribute) -> Callable:
    """Turns a value given to ``attr.Set`` into what ``attr.Get`` then returns. Asset paths are resolved by the
    default resolver: ``frame_values`` gives texture files as absolute paths (``texture_files``)."""
    t = attr.GetTypeName()
    if t == Sdf.ValueTypeNames.Float:
        return lambda v: float(np.float32(v))
    if t == Sdf.ValueTypeNames.Asset:
        return lambda v: Sdf.AssetPath(v.path, str(Ar.GetResolver().Resolve(v.path))) if v.path else v
    if t in (Sdf.ValueTypeNames.Float3, Sdf.ValueTypeNames.Color3f, Sdf.ValueTypeNames.Vector3f):
        return Gf.Vec3f
    if t == Sdf.ValueTypeNames.Double3:
        return Gf.Vec3d
    if t == Sdf.ValueTypeNames.Bool:
        return bool
    if t in (Sdf.ValueTypeNames.Double, Sdf.ValueTypeNames.Matrix4d, Sdf.ValueTypeNames.Token):
        return lambda v: v
    raise ValueError(f"{attr.GetPath()}: values of type {t} are not set by FrameWriter")


class _Kept:
    """What ``ParamsReader`` keeps of one stage between reads of the reader (the frame's values come on top)."""

    def __init__(self, reader: SceneReader, stage: Usd.Stage, keys: frozenset[str]) -> None:
        self.reads, self.stage, self.keys = reader.reads, stage, keys
        self.layout = reader._layout
        self.xfc = UsdGeom.XformCache(Usd.TimeCode.Default())
        self.converters: dict[str, Callable] = {}
        # prims whose xform ops a frame sets -> their ops in order (op, key of its value or None) and resetXformStack
        self.driven: dict[Sdf.Path, tuple[list, bool]] = {}
        for key in keys:
            prim_path, name = key.rsplit(".", 1)
            if name.startswith("xformOp:") and Sdf.Path(prim_path) not in self.driven:
                xf = UsdGeom.Xformable(stage.GetPrimAtPath(prim_path))
                self.driven[Sdf.Path(prim_path)] = (_op_stack(xf.GetOrderedXformOps(), keys),
                                                    xf.GetResetXformStack())
        self.below_driven: dict[Sdf.Path, bool] = {}
        self.light_inputs: dict[tuple[str, str], object] = {}
        self.static_worlds: dict[Sdf.Path, Gf.Matrix4d] = {}
        # visibility switches a frame sets (path, key) and the hidden ones it does not set; a frame that shows or
        # hides a prim without authored visibility regroups the stage (``SceneReader.read``): not here
        self.switches = [(path, f"{path}.visibility") for path in self.layout.switches
                         if f"{path}.visibility" in keys]
        self.usable = len(self.switches) == sum(1 for key in keys if key.endswith(".visibility"))
        self.hidden = {path for path, attr in self.layout.switches.items()
                       if f"{path}.visibility" not in keys and attr.Get() == UsdGeom.Tokens.invisible}
        # materials with inputs a frame sets; the background looks' surfaces, whose texture link a frame sets
        self.materials: set[Sdf.Path] = set()
        self.links: dict[str, tuple[str, UsdShade.Shader]] = {}
        for key in keys:
            prim = stage.GetPrimAtPath(key.rsplit(".", 1)[0])
            material = next((p for p in _ancestors(prim) if p.IsA(UsdShade.Material)), None)
            if material is not None and prim.IsA(UsdShade.Shader):
                self.materials.add(material.GetPath())
            if key.endswith(TEXTURE_FILE):
                surface = key[: -len(TEXTURE_FILE)] + "/Surface"
                texture = stage.GetPrimAtPath(key[: -len(TEXTURE_FILE)] + "/Texture")
                if texture:
                    self.links[surface] = (key, UsdShade.Shader(texture))

    def current(self, reader: SceneReader, stage: Usd.Stage, keys: frozenset[str]) -> bool:
        return self.reads == reader.reads and self.stage == stage and self.keys == keys \
            and self.layout is reader._layout

    def convert(self, key: str, value):
        fn = self.converters.get(key)
        if fn is None:
            fn = self.converters[key] = _stored(self.stage.GetAttributeAtPath(key))
        return fn(value)

    def is_below_driven(self, path: Sdf.Path) -> bool:
        """A driven prim is ``path`` or one of its ancestors."""
        hit = self.below_driven.get(path)
        if hit is None:
            hit = self.below_driven[path] = any(p in self.driven for p in path.GetPrefixes())
        return hit


def _op_stack(ops: list[UsdGeom.XformOp], keys: frozenset[str]) -> list[tuple]:
    """The ops ``GetLocalTransformation`` multiplies, last op first: (op type, key of the value a frame sets) or
    (None, the op's constant transform); an op and its inverse next to each other cancel, as in USD."""
    out, k = [], len(ops) - 1
    while k >= 0:
        op, key = ops[k], str(ops[k].GetAttr().GetPath())
        if k > 0 and ops[k - 1].GetAttr() == op.GetAttr() and ops[k - 1].IsInverseOp() != op.IsInverseOp():
            k -= 2
            continue
        if key not in keys:
            out.append((None, op.GetOpTransform(Usd.TimeCode.Default())))
        elif op.IsInverseOp():
            raise ValueError(f"{key}: inverse xform ops are not set by FrameWriter")
        else:
            out.append((op.GetOpType(), key))
        k -= 1
    return out


def _ancestors(prim: Usd.Prim):
    while prim and not prim.IsPseudoRoot():
        yield prim
        prim = prim.GetParent()


class FrameOverlay:
    """One frame's values laid over the stage: what the reader's functions read instead of the stage's values."""

    def __init__(self, kept: _Kept, values: dict[str, object]) -> None:
        self.kept, self.values = kept, values
        self._worlds: dict[Sdf.Path, Gf.Matrix4d] = {}

    def get(self, key: str, default=None):
        """The value the attribute at ``key`` would hold, or ``default`` when the frame does not set it."""
        value = self.values.get(key, self)
        return default if value is self else self.kept.convert(key, value)

    def sets(self, material: Sdf.Path) -> bool:
        """The frame sets some of this material's inputs."""
        return material in self.kept.materials

    def target(self, root: Usd.Prim) -> bool:
        """``scene.target_of`` on the posed stage."""
        value = self.get(f"{root.GetPath()}.{TARGET_ATTR}", self)
        return target_of(root) if value is self else bool(value)

    def value(self, attr: Usd.Attribute):
        """What ``attr.Get()`` would return on the posed stage."""
        value = self.get(str(attr.GetPath()), self)
        return attr.Get() if value is self else value

    def light_input(self, prim: Usd.Prim, name: str, default):
        """``materials._light_input`` on the posed stage (the inputs a frame does not set are kept)."""
        path = str(prim.GetPath())
        for n in ("inputs:" + name, name):
            value = self.get(f"{path}.{n}", self)
            if value is not self:
                return value
        key = (path, name)
        kept = self.kept.light_inputs.get(key, self)
        if kept is self:
            kept = self.kept.light_inputs[key] = _light_input(prim, name, default)
        return kept

    def inputs(self, fallback: Callable) -> Callable:
        """A shader-input reader (``MaterialReader._value``) that takes the frame's values first."""
        def value(shader: UsdShade.Shader, name: str, default):
            v = self.get(f"{shader.GetPath()}.inputs:{name}", self)
            return fallback(shader, name, default) if v is self else v
        return value

    def links(self, fallback: Callable) -> Callable:
        """A texture-source finder (``MaterialReader._texture_source``) that follows the frame's background links
        (``FrameWriter`` connects a background's colour to its texture when the frame gives it one)."""
        def texture_source(shader: UsdShade.Shader, name: str):
            link = self.kept.links.get(str(shader.GetPath())) if name == "diffuseColor" else None
            if link is None:
                return fallback(shader, name)
            key, texture = link
            return texture if self.values[key].path else None
        return texture_source

    def world(self, prim: Usd.Prim) -> Gf.Matrix4d:
        """``UsdGeomXformCache.GetLocalToWorldTransform`` on the posed stage."""
        path = prim.GetPath()
        kept = self.kept
        if not kept.is_below_driven(path):
            hit = kept.static_worlds.get(path)
            if hit is None:
                hit = kept.static_worlds[path] = kept.xfc.GetLocalToWorldTransform(prim)
            return hit
        hit = self._worlds.get(path)
        if hit is None:
            local, resets = self._local(prim)
            hit = self._worlds[path] = local if resets else local * self.world(prim.GetParent())
        return hit

    def _local(self, prim: Usd.Prim) -> tuple[Gf.Matrix4d, bool]:
        driven = self.kept.driven.get(prim.GetPath())
        if driven is None:
            return self.kept.xfc.GetLocalTransformation(prim)
        ops, resets = driven
        local = Gf.Matrix4d(1.0)
        for op_type, key in ops:
            m = key if op_type is None else op_transform(op_type, self.get(key))
            if m != _IDENTITY:
                local *= m
        return local, resets


class ParamsReader:
    """``read(stage, params, ...)``: the ``RenderScene`` of ``stage`` in frame ``params``'s state, without posing it."""

    def __init__(self, reader: SceneReader) -> None:
        self.reader = reader
        self._kept: _Kept | None = None

    def read(self, stage: Usd.Stage, params, camera_path: str, resolution: tuple[int, int]) -> RenderScene | None:
        r = self.reader
        if r._layout is None or not r.changes.quiet(stage):
            return None
        values = frame_values(params, camera_path_of(stage))
        keys = frozenset(values)
        if self._kept is None or not self._kept.current(r, stage, keys):
            self._kept = _Kept(r, stage, keys)
        if not self._kept.usable:
            return None
        pose = FrameOverlay(self._kept, values)
        hidden = self._kept.hidden | {path for path, key in self._kept.switches
                                      if pose.get(key) == UsdGeom.Tokens.invisible}
        found = self._kept.layout.visible(hidden)
        r.tick += 1
        r.materials.new_table()
        instances, objects, unknown = [], [], set()
        for path in sorted(found.groups):
            group = found.groups[path]
            shape = r._shapes.get(path)
            if shape is None or shape.gprims is not group.gprims:
                return None  # a shape the reader has not built yet: pose the stage and read it once
            l2w = placement(pose.world(group.root))
            if l2w is None:
                continue
            r.keep(shape)
            mats = [r.materials.index_for(g, r.tick, pose) for g in shape.prims]
            r.add(Instance(path, shape.entry, shape.uv, shape.color, l2w, mats, shape.look_key), group,
                  lambda root=group.root: pose.target(root), instances, objects, unknown)
        camera = read_camera(stage, camera_path, resolution, pose.world, pose.value)
        lights, ambient = read_lights(found.lights, pose.world, pose.light_input)
        r.sweep()
        return RenderScene(camera, instances, objects, r.materials.frame_materials, lights, ambient, sorted(unknown))
