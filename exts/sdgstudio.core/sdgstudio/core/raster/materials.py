"""Materials (UsdPreviewSurface / MDL OmniPBR inputs, textures cached by path) and UsdLux lights of a stage."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from pxr import Sdf, Usd, UsdLux, UsdShade

from .shapes import column_matrix


class Cache:
    """Dict with last-use ticks; ``sweep`` drops entries unused for more than ``max_age`` renders."""

    def __init__(self) -> None:
        self.data: dict = {}

    def get(self, key, tick: int, build):
        hit = self.data.get(key)
        if hit is None:
            hit = self.data[key] = [build(), tick]
        hit[1] = tick
        return hit[0]

    def touch(self, key, tick: int) -> None:
        """Marks ``key`` used now, if cached."""
        hit = self.data.get(key)
        if hit is not None:
            hit[1] = tick

    def sweep(self, tick: int, max_age: int) -> None:
        for k in [k for k, v in self.data.items() if tick - v[1] > max_age]:
            del self.data[k]



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



class MaterialReader:
    """Resolves bound materials to :class:`Material` s; per-frame table. Bindings and material inputs are kept
    until an edit touches them (:class:`~.changes.Changes`), textures are cached by resolved path."""

    def __init__(self) -> None:
        self.textures = Cache()
        self.frame_materials: list[Material] = [Material()]
        self._by_path: dict[Sdf.Path, int] = {}
        self._bound: dict[Sdf.Path, UsdShade.Material | None] = {}  #: gprim -> bound material
        self._values: dict[Sdf.Path, Material] = {}  #: material -> its inputs
        self._plans: dict[Sdf.Path, dict] = {}  #: material -> its resolved shading network (surface shader, the
        #: attribute that gives each input its value, texture shaders), kept while only input values change
        self._loose: dict[Sdf.Path, bool] = {}  #: prim -> a shading node outside any material (until a resync)

    def begin_frame(self, changed=None, stage: Usd.Stage | None = None) -> None:
        """Start a frame's table; forget what ``changed`` (:class:`~.changes.Changes`; None: everything) touched."""
        self.new_table()
        if changed is None or changed.full or changed.regroup or changed.rebind:
            self._bound.clear()
        if changed is None or changed.full:
            self._values.clear()
            self._plans.clear()
            self._loose.clear()
            return
        for prim, network in [(p, True) for p in changed.shading] + [(p.GetPrimPath(), False)
                                                                     for p in changed.input_values]:
            owners = [p for p in prim.GetPrefixes() if p in self._values or p in self._plans]
            for m in owners:
                self._values.pop(m, None)
                if network:
                    self._plans.pop(m, None)
            if not owners and stage is not None and self._loose_node(stage, prim):
                self._values.clear()  # a shader outside any material may feed any of them
                if network:
                    self._plans.clear()

    def _loose_node(self, stage: Usd.Stage, path: Sdf.Path) -> bool:
        hit = self._loose.get(path)
        if hit is None:
            hit = self._loose[path] = _loose_shading_node(stage.GetPrimAtPath(path))
        return hit

    def new_table(self) -> None:
        """Start a frame's table (``frame_materials``), forgetting nothing."""
        self.frame_materials, self._by_path = [Material()], {}

    def index_for(self, prim: Usd.Prim, tick: int, overlay=None) -> int:
        """The prim's bound material's row in the frame's table. A material whose inputs ``overlay``
        (``from_params.FrameOverlay``) sets is read through it and not kept: the stage does not hold those values."""
        gpath = prim.GetPath()
        if gpath in self._bound:
            mat = self._bound[gpath]
        else:
            mat = self._bound[gpath] = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial(
                UsdShade.Tokens.full)[0] or None
        if mat is None:
            return 0
        path = mat.GetPath()
        if path not in self._by_path:
            value = self._read(mat, tick, overlay) if overlay is not None and overlay.sets(path) else \
                self._values.get(path)
            if value is None:
                value = self._values[path] = self._read(mat, tick)
            elif value.texture_key:
                self.textures.get(value.texture_key, tick, lambda: value.texture)  # keep it cached
            self.frame_materials.append(value)
            self._by_path[path] = len(self.frame_materials) - 1
        return self._by_path[path]

    def _read(self, mat: UsdShade.Material, tick: int, overlay=None) -> Material:
        """The material's inputs; ``overlay`` (``from_params.FrameOverlay``) gives some inputs' values and texture links
        instead of the stage."""
        plan = self._plans.setdefault(mat.GetPath(), {})
        if "surface" not in plan:
            shader = None
            for ctx in ("", "mdl"):
                src = mat.ComputeSurfaceSource(ctx)[0]
                if src:
                    shader = src
                    break
            plan["surface"], plan["id"] = shader, shader.GetIdAttr().Get() if shader else None
        shader = plan["surface"]
        if shader is None:
            return Material()
        out = Material()
        value = functools.partial(self._value, plan)
        texture_source = functools.partial(self._texture_source, plan)
        if overlay is not None:
            value, texture_source = overlay.inputs(value), overlay.links(texture_source)
        if plan["id"] == "UsdPreviewSurface":
            out.roughness = float(value(shader, "roughness", 0.5))
            out.metallic = float(value(shader, "metallic", 0.0))
            tex = texture_source(shader, "diffuseColor")
            if tex is not None:
                self._apply_texture(out, tex, value, tick)
            else:
                out.color = np.asarray(value(shader, "diffuseColor", (0.18, 0.18, 0.18)), np.float64)
        else:  # MDL OmniPBR-style inputs
            out.roughness = float(value(shader, "reflection_roughness_constant", 0.5))
            out.metallic = float(value(shader, "metallic_constant", 0.0))
            tint = np.asarray(value(shader, "diffuse_tint", (1.0, 1.0, 1.0)), np.float64)
            self._load(out, value(shader, "diffuse_texture", None), tick)
            if out.texture is None:
                out.color = tint * np.asarray(value(shader, "diffuse_color_constant", (0.2, 0.2, 0.2)), np.float64)
            else:
                out.tex_scale = tint
        return out

    @staticmethod
    def _value(plan: dict, shader: UsdShade.Shader, name: str, default):
        """The input's value: from the attribute that produces it (resolved through connections once per plan)."""
        key = (shader.GetPath(), name)
        attr = plan.get(key)
        if attr is None:  # not cached while none: authoring a value (a value-only edit) makes one
            inp = shader.GetInput(name)
            attr = next((a for a in (inp.GetValueProducingAttributes() if inp else [])
                         if not UsdShade.Output.IsOutput(a)), None)
            if attr is not None:
                plan[key] = attr
        v = attr.Get() if attr is not None else None
        return default if v is None else v

    @staticmethod
    def _texture_source(plan: dict, shader: UsdShade.Shader, name: str) -> UsdShade.Shader | None:
        key = ("texture", shader.GetPath(), name)
        if key not in plan:
            plan[key] = None
            inp = shader.GetInput(name)
            for attr in inp.GetValueProducingAttributes() if inp else []:
                if UsdShade.Output.IsOutput(attr):
                    sh = UsdShade.Shader(attr.GetPrim())
                    if sh and sh.GetIdAttr().Get() == "UsdUVTexture":
                        plan[key] = sh
                        break
        return plan[key]

    def _apply_texture(self, out: Material, sh: UsdShade.Shader, value, tick: int) -> None:
        out.srgb = str(value(sh, "sourceColorSpace", "auto")) != "raw"
        self._load(out, value(sh, "file", None), tick)
        out.tex_scale = np.asarray(value(sh, "scale", (1, 1, 1, 1)), np.float64)[:3]
        out.tex_bias = np.asarray(value(sh, "bias", (0, 0, 0, 0)), np.float64)[:3]
        out.repeat = tuple(str(value(sh, w, "repeat")) not in ("clamp", "black") for w in ("wrapS", "wrapT"))
        if out.texture is None:
            out.color = np.asarray(value(sh, "fallback", (0.0, 0.0, 0.0, 1.0)), np.float64)[:3]

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


def _loose_shading_node(prim: Usd.Prim) -> bool:
    """A shader or node graph with no Material above it (or itself)."""
    if not (prim and (prim.IsA(UsdShade.Shader) or prim.IsA(UsdShade.NodeGraph))):
        return False
    while prim and not prim.IsPseudoRoot():
        if prim.IsA(UsdShade.Material):
            return False
        prim = prim.GetParent()
    return True


def _light_input(prim: Usd.Prim, name: str, default):
    for n in ("inputs:" + name, name):
        attr = prim.GetAttribute(n)
        if attr and attr.HasValue():
            return attr.Get()
    return default


def read_lights(prims: list[Usd.Prim], world, value=_light_input) -> tuple[list[Light], np.ndarray]:
    """UsdLux lights -> (:class:`Light` list, ambient RGB). See the backend module docstring for the mapping.
    ``world(prim)``: the prim's local-to-world ``Gf.Matrix4d``; ``value(prim, name, default)``: a light input."""
    lights, ambient = [], np.zeros(3)
    for prim in prims:
        tn = prim.GetTypeName()
        rgb = np.asarray(value(prim, "color", (1.0, 1.0, 1.0)), np.float64)
        if value(prim, "enableColorTemperature", False):
            rgb = rgb * np.asarray(UsdLux.BlackbodyTemperatureAsRgb(float(value(prim, "colorTemperature", 6500.0))))
        rgb = rgb * float(value(prim, "intensity", 1.0)) * 2.0 ** float(value(prim, "exposure", 0.0))
        rgb = rgb / 1000.0
        if tn.startswith("DomeLight"):
            ambient += rgb
            continue
        m = column_matrix(world(prim))
        extra = dict(diffuse=float(value(prim, "diffuse", 1.0)), specular=float(value(prim, "specular", 1.0)))
        if tn == "DistantLight":
            lights.append(Light(0, rgb, m[:3, 2] / np.linalg.norm(m[:3, 2]), **extra))
            continue
        s = abs(np.linalg.det(m[:3, :3])) ** (1.0 / 3.0)  # the light's world scale
        r = float(value(prim, "radius", 0.5)) * s
        if tn == "SphereLight":
            kind, proj, surf = 1, math.pi * r * r, 4.0 * math.pi * r * r
        elif tn == "DiskLight":
            kind, proj, surf = 2, math.pi * r * r, math.pi * r * r
        elif tn == "RectLight":
            kind = 2
            proj = surf = float(value(prim, "width", 1.0)) * float(value(prim, "height", 1.0)) * s * s
        elif tn == "CylinderLight":
            length = float(value(prim, "length", 1.0)) * s
            kind, proj, surf = 1, 2.0 * r * length, 2.0 * math.pi * r * length
        else:
            continue
        scale = proj / surf if value(prim, "normalize", False) and surf > 0 else proj
        lights.append(Light(kind, rgb * scale, m[:3, 3].copy(), -m[:3, 2] / np.linalg.norm(m[:3, 2]), r, **extra))
    return lights, ambient
