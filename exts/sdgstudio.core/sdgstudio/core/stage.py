"""Build a USD stage from a config and apply one frame's sampled parameters to it.

The stage holds every object slot a config can need (``count.max`` per asset); a frame shows the slots it
uses and hides the rest. ``apply_frame_params`` sets every randomized attribute of every slot, so the stage
after applying frame k is the same whatever was applied before: any frame renders alone exactly.

Layout: ``/World/Props/<prop>``, ``/World/Objects/<asset>_<slot>`` (an Xform carrying the semantic label, the
pose ops and the physics APIs, with the geometry below it), ``/World/Looks/<name>``, ``/World/Lights/{Sun,Lamp,
Dome}`` and ``/World/Camera``. Z is up and one stage unit is one meter, as in Isaac Sim.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdLux, UsdPhysics, UsdSemantics, UsdShade, Vt

from .assets import DEFAULT_PRIMITIVE_SIZE, look_at, primitive_attributes
from .config import AssetItem, ConfigError, SDGConfig
from .sampler import OBJECTS_ROOT, PROPS_ROOT, FrameParams, camera_path, object_slots, prop_path

LOOKS_ROOT = "/World/Looks"
TARGET_ATTR = "sdgstudio:target"  #: custom bool on object prims: the frame's target object (raster labels read it)
LIGHTS_ROOT = "/World/Lights"
_PRIMITIVE_TYPES = {"cube": "Cube", "sphere": "Sphere", "cylinder": "Cylinder", "cone": "Cone", "capsule": "Capsule"}


def add_semantic_class(prim: Usd.Prim, class_name: str) -> None:
    """Label a prim with ``UsdSemantics.LabelsAPI`` (taxonomy "class"), which Replicator and Isaac Sim read."""
    UsdSemantics.LabelsAPI.Apply(prim, "class").CreateLabelsAttr(Vt.TokenArray([class_name]))


def _define_material(stage: Usd.Stage, name: str, textured: bool) -> UsdShade.Material:
    """A UsdPreviewSurface material; ``textured`` adds a UsdUVTexture reading ``st`` for the diffuse colour."""
    material = UsdShade.Material.Define(stage, f"{LOOKS_ROOT}/{name}")
    shader = UsdShade.Shader.Define(stage, f"{LOOKS_ROOT}/{name}/Surface")
    shader.CreateIdAttr("UsdPreviewSurface")
    shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(0.5, 0.5, 0.5))
    shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.5)
    shader.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
    if textured:
        reader = UsdShade.Shader.Define(stage, f"{LOOKS_ROOT}/{name}/StReader")
        reader.CreateIdAttr("UsdPrimvarReader_float2")
        reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
        reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)
        texture = UsdShade.Shader.Define(stage, f"{LOOKS_ROOT}/{name}/Texture")
        texture.CreateIdAttr("UsdUVTexture")
        texture.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(Sdf.AssetPath(""))
        texture.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set("repeat")
        texture.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("repeat")
        texture.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
        texture.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    return material


def _bind(prim: Usd.Prim, material: UsdShade.Material, purpose: str = UsdShade.Tokens.allPurpose) -> None:
    # Stronger than descendants: our randomized look wins over a referenced asset's own bindings.
    UsdShade.MaterialBindingAPI.Apply(prim).Bind(material, UsdShade.Tokens.strongerThanDescendants, purpose)


def _add_geometry(stage: Usd.Stage, parent: str, item: AssetItem, size: float | None) -> None:
    if item.is_primitive:
        gprim = stage.DefinePrim(f"{parent}/geom", _PRIMITIVE_TYPES[item.source])
        for attr, value in primitive_attributes(item.source, size or DEFAULT_PRIMITIVE_SIZE).items():
            gprim.GetAttribute(attr).Set(value)
        UsdPhysics.CollisionAPI.Apply(gprim)
        return
    ref = stage.DefinePrim(f"{parent}/geom", "Xform")
    ref.GetReferences().AddReference(item.source)
    for prim in Usd.PrimRange(ref):
        if prim.IsA(UsdGeom.Gprim):
            UsdPhysics.CollisionAPI.Apply(prim)
            if prim.IsA(UsdGeom.Mesh):
                UsdPhysics.MeshCollisionAPI.Apply(prim).CreateApproximationAttr(UsdPhysics.Tokens.convexHull)


def _pose_ops(xformable: UsdGeom.Xformable) -> None:
    xformable.ClearXformOpOrder()
    xformable.AddTranslateOp(UsdGeom.XformOp.PrecisionDouble)
    xformable.AddRotateXYZOp(UsdGeom.XformOp.PrecisionFloat)
    xformable.AddScaleOp(UsdGeom.XformOp.PrecisionFloat)


def build_stage(config: SDGConfig) -> Usd.Stage:
    """A fresh in-memory stage holding the config's scene with every object slot hidden."""
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    world = UsdGeom.Xform.Define(stage, "/World").GetPrim()
    stage.SetDefaultPrim(world)
    for group in (PROPS_ROOT, OBJECTS_ROOT, LIGHTS_ROOT):
        UsdGeom.Xform.Define(stage, group)
    UsdGeom.Scope.Define(stage, LOOKS_ROOT)
    background_textures = config.background.textures is not None

    for prop in config.props:
        if prop.source == "cube":
            xform = UsdGeom.Cube.Define(stage, prop_path(prop.name))
            xform.CreateSizeAttr(1.0)
        else:
            xform = UsdGeom.Xform.Define(stage, prop_path(prop.name))
            xform.GetPrim().GetReferences().AddReference(prop.source)
        _pose_ops(xform)
        xform.GetPrim().GetAttribute("xformOp:translate").Set(Gf.Vec3d(*prop.position))
        xform.GetPrim().GetAttribute("xformOp:rotateXYZ").Set(Gf.Vec3f(*prop.rotation))
        xform.GetPrim().GetAttribute("xformOp:scale").Set(Gf.Vec3f(*(prop.size or (1.0, 1.0, 1.0))))
        material = _define_material(stage, f"prop_{prop.name}", textured=prop.background and background_textures)
        UsdShade.Shader(material.GetPrim().GetChild("Surface")).GetInput("diffuseColor").Set(Gf.Vec3f(*prop.color))
        _bind(xform.GetPrim(), material)
        UsdPhysics.CollisionAPI.Apply(xform.GetPrim())
        if prop.semantic_class:
            add_semantic_class(xform.GetPrim(), prop.semantic_class)

    for slot in object_slots(config):
        xform = UsdGeom.Xform.Define(stage, slot.prim_path)
        _pose_ops(xform)
        xform.MakeInvisible()
        prim = xform.GetPrim()
        add_semantic_class(prim, slot.item.semantic_class)
        prim.CreateAttribute(TARGET_ATTR, Sdf.ValueTypeNames.Bool, custom=True).Set(False)
        _add_geometry(stage, slot.prim_path, slot.item, slot.asset.size)
        material = _define_material(stage, Path(slot.prim_path).name, textured=False)
        UsdPhysics.MaterialAPI.Apply(material.GetPrim())
        _bind(prim, material)
        _bind(prim, material, "physics")
        UsdPhysics.RigidBodyAPI.Apply(prim)
        UsdPhysics.MassAPI.Apply(prim)

    sun = UsdLux.DistantLight.Define(stage, f"{LIGHTS_ROOT}/Sun")
    sun.CreateAngleAttr(0.53)
    sun.AddTransformOp()
    lamp = UsdLux.SphereLight.Define(stage, f"{LIGHTS_ROOT}/Lamp")
    lamp.AddTranslateOp()
    dome = UsdLux.DomeLight.Define(stage, f"{LIGHTS_ROOT}/Dome")
    for light, cfg in ((sun, config.lighting.distant), (lamp, config.lighting.sphere)):
        light.CreateEnableColorTemperatureAttr(True)
        light.CreateColorTemperatureAttr(6500.0)
        light.CreateIntensityAttr(0.0)
        if not cfg.enabled:  # switched off: an invisible light of intensity 0
            light.MakeInvisible()
    if config.lighting.sphere.enabled:
        lamp.CreateRadiusAttr(config.lighting.sphere.radius)
    dome.CreateIntensityAttr(0.0)

    mount = config.camera.mount
    if mount and not stage.GetPrimAtPath(mount):
        raise ConfigError(f"scene '{config.name}'", [("camera.mount", f"no prim at {mount} in the scene (props: "
                                            f"{', '.join(prop_path(p.name) for p in config.props) or 'none'})")])
    camera = UsdGeom.Camera.Define(stage, camera_path(config))
    if mount:  # rides on the mount: a fixed local offset, the mount's pose does the rest
        camera.AddTranslateOp().Set(Gf.Vec3d(*config.camera.mount_offset))
        camera.AddRotateXYZOp().Set(Gf.Vec3f(*config.camera.mount_rotation))
    else:
        camera.AddTransformOp()
    width, height = config.camera.resolution
    camera.CreateHorizontalApertureAttr(config.camera.horizontal_aperture)
    camera.CreateVerticalApertureAttr(config.camera.horizontal_aperture * height / width)
    camera.CreateClippingRangeAttr(Gf.Vec2f(*config.camera.clipping_range))
    camera.CreateFocalLengthAttr(24.0)
    stage.GetRootLayer().customLayerData = {"sdgstudio:camera": camera_path(config)}
    return stage


def _sun_transform(elevation: float, azimuth: float) -> Gf.Matrix4d:
    """The sun's xform: it emits along its -Z, so its +Z points at (azimuth, elevation) degrees on the sky."""
    el, az = np.radians(elevation), np.radians(azimuth)
    towards_sun = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    matrix = look_at(towards_sun, np.zeros(3))
    matrix[:3, 3] = 0.0
    return Gf.Matrix4d(matrix.T.tolist())


def apply_frame_params(stage: Usd.Stage, params: FrameParams) -> None:
    """Set every randomized attribute of one frame (one ``Sdf.ChangeBlock``; connections edited just before it).
    A caller applying many frames to one stage keeps a :class:`FrameWriter` instead."""
    FrameWriter(stage).apply(params)


class FrameWriter:
    """Applies frames to one stage built by ``build_stage``, keeping its attribute handles between frames: looking
    ~150 attributes up by path every frame cost as much as setting them. A handle whose prim was removed since
    (an edited live stage) is looked up again."""

    def __init__(self, stage: Usd.Stage) -> None:
        self.stage = stage
        self._handles: dict[str, Usd.Attribute] = {}
        self._camera = camera_path_of(stage)

    def _set(self, path: str, value) -> None:
        attr = self._handles.get(path)
        if attr is None or not attr:  # not looked up yet, or expired
            attr = self._handles[path] = self.stage.GetAttributeAtPath(path)
            if not attr:
                raise ValueError(f"the stage has no attribute {path} (was its prim removed or renamed?)")
        attr.Set(value)

    def apply(self, params: FrameParams) -> None:
        """Set every randomized attribute of one frame (one ``Sdf.ChangeBlock``; connections edited just before
        it), so that the stage is in frame ``params.frame``'s state whatever was applied before."""
        stage, put = self.stage, self._set
        for bg in params.backgrounds:  # connection edits create specs: outside the change block
            material_path = background_look(bg.prim_path)
            diffuse = UsdShade.Shader(stage.GetPrimAtPath(f"{material_path}/Surface")).GetInput("diffuseColor")
            texture_prim = stage.GetPrimAtPath(f"{material_path}/Texture")
            if bg.texture is not None and texture_prim:
                if diffuse.GetAttr().GetConnections() != [texture_prim.GetPath().AppendProperty("outputs:rgb")]:
                    diffuse.ConnectToSource(UsdShade.Shader(texture_prim).ConnectableAPI(), "rgb")
            elif diffuse.GetAttr().HasAuthoredConnections():
                diffuse.GetAttr().ClearConnections()  # removes the spec: no empty ``.connect`` left behind

        with Sdf.ChangeBlock():
            for path, value in frame_values(params, self._camera).items():
                if path.endswith(TEXTURE_FILE):  # only backgrounds with a texture shader (a texture folder is set)
                    attr = stage.GetAttributeAtPath(path)
                    if attr:
                        attr.Set(value)
                else:
                    put(path, value)


TEXTURE_FILE = "/Texture.inputs:file"  #: a background look's texture input (``frame_values``)


def frame_values(params: FrameParams, camera: str) -> dict[str, object]:
    """Every attribute value that puts a stage built by ``build_stage`` in frame ``params``'s state (attribute path
    -> the value given to ``Usd.Attribute.Set``), besides the backgrounds' texture connections (``FrameWriter``).
    ``camera`` is the camera prim's path. The raster backend renders a frame from these values without writing them
    (``raster/posed.py``)."""
    values: dict[str, object] = {}
    for obj in params.objects:
        prim, look = obj.prim_path, f"{LOOKS_ROOT}/{obj.prim_path.rsplit('/', 1)[1]}"
        values[f"{prim}.visibility"] = UsdGeom.Tokens.inherited if obj.visible else UsdGeom.Tokens.invisible
        values[f"{prim}.xformOp:translate"] = Gf.Vec3d(*obj.position)
        values[f"{prim}.xformOp:rotateXYZ"] = Gf.Vec3f(*obj.rotation_xyz)
        values[f"{prim}.xformOp:scale"] = Gf.Vec3f(obj.scale, obj.scale, obj.scale)
        values[f"{prim}.physics:mass"] = obj.mass
        values[f"{prim}.{TARGET_ATTR}"] = obj.is_target
        values[f"{look}/Surface.inputs:diffuseColor"] = Gf.Vec3f(*obj.color)
        values[f"{look}/Surface.inputs:roughness"] = obj.roughness
        values[f"{look}/Surface.inputs:metallic"] = obj.metallic
        values[f"{look}.physics:staticFriction"] = obj.static_friction
        values[f"{look}.physics:dynamicFriction"] = obj.dynamic_friction
        values[f"{look}.physics:restitution"] = obj.restitution
    for bg in params.backgrounds:
        look = background_look(bg.prim_path)
        values[f"{look}/Surface.inputs:diffuseColor"] = Gf.Vec3f(*bg.color)
        values[f"{look}{TEXTURE_FILE}"] = Sdf.AssetPath(bg.texture or "")
    if params.distant_light is not None:
        d = params.distant_light
        values[f"{LIGHTS_ROOT}/Sun.inputs:intensity"] = d.intensity
        values[f"{LIGHTS_ROOT}/Sun.inputs:colorTemperature"] = d.color_temperature
        values[f"{LIGHTS_ROOT}/Sun.xformOp:transform"] = _sun_transform(d.elevation, d.azimuth)
    if params.sphere_light is not None:
        s = params.sphere_light
        values[f"{LIGHTS_ROOT}/Lamp.inputs:intensity"] = s.intensity
        values[f"{LIGHTS_ROOT}/Lamp.inputs:colorTemperature"] = s.color_temperature
        values[f"{LIGHTS_ROOT}/Lamp.xformOp:translate"] = Gf.Vec3d(*s.position)
    values[f"{LIGHTS_ROOT}/Dome.inputs:intensity"] = params.ambient
    for prop in params.props:
        values[f"{prop.prim_path}.xformOp:translate"] = Gf.Vec3d(*prop.position)
        values[f"{prop.prim_path}.xformOp:rotateXYZ"] = Gf.Vec3f(*prop.rotation_xyz)
    values[f"{camera}.focalLength"] = params.camera.focal_length
    if params.camera.position is not None:  # else it rides on its mount
        values[f"{camera}.xformOp:transform"] = Gf.Matrix4d(params.camera.camera_to_world().T.tolist())
    return values


def background_look(prop_prim_path: str) -> str:
    """The material of a background prop."""
    return f"{LOOKS_ROOT}/prop_{prop_prim_path.rsplit('/', 1)[1]}"


def camera_path_of(stage: Usd.Stage) -> str:
    """The SDG camera of a stage built by ``build_stage`` (recorded in the stage's custom layer data)."""
    return stage.GetRootLayer().customLayerData.get("sdgstudio:camera", "/World/Camera")


def save_stage(stage: Usd.Stage, path: Path | str) -> None:
    """Write the stage as it is now (one frame's state) to a .usda/.usd file."""
    stage.GetRootLayer().Export(str(path))
