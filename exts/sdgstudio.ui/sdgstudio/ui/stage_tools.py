"""What the window does to the live USD stage, written against plain ``pxr`` (no Kit), so pytest covers it.

* ``asset_from_prim`` / ``asset_from_file``: an ``[[assets]]`` entry for a selected prim or a picked USD file,
  with the class taken from the prim's semantic label (``UsdSemantics.LabelsAPI`` "class", or Isaac Sim's older
  ``SemanticsAPI``). A prim without one is still added, *flagged*: the config then reports the missing class
  beside that asset's Class field.
* ``show_frame``: the scrubber. It makes sure the SDG scene (``build_stage``'s ``/World/Props``, ``Objects``,
  ``Lights``, ``Looks`` and the camera) is in the live stage, then applies exactly frame k's sampled parameters
  (``sample_frame_params`` + ``apply_frame_params``, the code every backend renders from), so the viewport shows
  what frame k of the dataset will show. Everything else in the user's stage is left alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from pxr import Sdf, Usd, UsdGeom
from sdgstudio.core.config import PRIMITIVES, USD_SUFFIXES, SDGConfig, config_to_dict
from sdgstudio.core.sampler import FrameParams, camera_path, sample_frame_params
from sdgstudio.core.stage import LIGHTS_ROOT, LOOKS_ROOT, apply_frame_params, build_stage

SCENE_KEY = "sdgstudio:scene"  #: root-layer custom data: digest of the config the scene in the stage was built from
_PRIMITIVE_TYPES = {name.capitalize(): name for name in PRIMITIVES}


@dataclass(frozen=True)
class AssetSuggestion:
    """An ``[[assets]]`` entry to add, or why the prim cannot be one."""

    prim_path: str
    asset: dict | None  #: None when the prim cannot become an asset
    note: str = ""  #: why not, or what the user still has to do (e.g. give it a class)


def prim_class(prim: Usd.Prim) -> str | None:
    """The prim's semantic class: LabelsAPI "class" first, then the legacy SemanticsAPI attributes."""
    attr = prim.GetAttribute("semantics:labels:class")
    if attr and attr.HasValue():
        labels = list(attr.Get() or [])
        if labels:
            return str(labels[0])
    for candidate in prim.GetAttributes():
        name = candidate.GetName()
        if name.startswith("semantic:") and name.endswith(":params:semanticType") and candidate.Get() == "class":
            data = prim.GetAttribute(name.replace(":semanticType", ":semanticData"))
            if data and data.Get():
                return str(data.Get())
    return None


def _referenced_file(prim: Usd.Prim) -> str | None:
    """The first USD file the prim references or payloads, as an absolute path."""
    for spec in prim.GetPrimStack():
        for items in (spec.referenceList.explicitItems, spec.referenceList.prependedItems,
                      spec.referenceList.appendedItems, spec.payloadList.explicitItems,
                      spec.payloadList.prependedItems, spec.payloadList.appendedItems):
            for item in items:
                if item.assetPath:
                    return spec.layer.ComputeAbsolutePath(item.assetPath)
    return None


def prim_name(text: str) -> str:
    """A prim-name-safe stem (``[A-Za-z_][A-Za-z0-9_]*``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text) or "asset"
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def asset_from_file(path: str | Path, name: str, semantic_class: str | None = None) -> AssetSuggestion:
    path = Path(path)
    if path.suffix.lower() not in USD_SUFFIXES:
        return AssetSuggestion(str(path), None, f"{path.name} is not a USD file ({', '.join(USD_SUFFIXES)})")
    asset = {"name": name, "source": str(path), "class": semantic_class, "count": {"min": 1, "max": 1}}
    note = "" if semantic_class else f"{name}: no semantic class; set its Class"
    return AssetSuggestion(str(path), asset, note)


def asset_from_prim(stage: Usd.Stage, prim_path: str, name: str) -> AssetSuggestion:
    """An asset for a selected prim: a primitive shape, or the USD file it references."""
    prim = stage.GetPrimAtPath(prim_path)
    if not prim:
        return AssetSuggestion(prim_path, None, f"{prim_path}: no such prim")
    semantic_class = prim_class(prim)
    primitive = _PRIMITIVE_TYPES.get(str(prim.GetTypeName()))
    if primitive is not None:
        bound = UsdGeom.Imageable(prim).ComputeUntransformedBound(Usd.TimeCode.Default(), UsdGeom.Tokens.default_)
        box = bound.ComputeAlignedRange()
        size = None if box.IsEmpty() else round(float(max(box.GetSize())), 6)
        asset = {"name": name, "source": primitive, "class": semantic_class, "count": {"min": 1, "max": 1}}
        if size:
            asset["size"] = size
        return AssetSuggestion(prim_path, asset, "" if semantic_class else f"{prim_path}: no semantic class; set its Class")
    file = _referenced_file(prim)
    if file is None:
        return AssetSuggestion(prim_path, None, f"{prim_path}: neither a primitive ({', '.join(PRIMITIVES)}) nor a "
                               "reference to a USD file; save it as a USD file and add that file")
    suggestion = asset_from_file(file, name, semantic_class)
    return AssetSuggestion(prim_path, suggestion.asset,
                           suggestion.note.replace(f"{name}:", f"{prim_path}:") if suggestion.note else "")


def _scene_digest(config: SDGConfig) -> str:
    """Changes whenever the built scene would differ (output settings do not matter)."""
    data = config_to_dict(config)
    data.pop("output", None)
    data.pop("seed", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _scene_roots(config: SDGConfig) -> list[str]:
    from sdgstudio.core.sampler import OBJECTS_ROOT, PROPS_ROOT

    roots = [PROPS_ROOT, OBJECTS_ROOT, LIGHTS_ROOT, LOOKS_ROOT]
    cam = camera_path(config)
    return roots + ([cam] if not any(cam.startswith(r + "/") for r in roots) else [])


def ensure_scene(stage: Usd.Stage, config: SDGConfig) -> bool:
    """Copy the SDG scene into ``stage``'s root layer unless it is already there for this config; True when
    it was (re)built. Only the SDG groups under /World are replaced."""
    layer = stage.GetRootLayer()
    digest = _scene_digest(config)
    if layer.customLayerData.get(SCENE_KEY) == digest and all(stage.GetPrimAtPath(r) for r in _scene_roots(config)):
        return False
    built = build_stage(config)
    source = built.GetRootLayer()
    with Sdf.ChangeBlock():
        if not layer.GetPrimAtPath("/World"):
            world = Sdf.CreatePrimInLayer(layer, "/World")
            world.specifier = Sdf.SpecifierDef
            world.typeName = "Xform"
        for root in _scene_roots(config):
            if layer.GetPrimAtPath(root):
                parent = layer.GetPrimAtPath(Sdf.Path(root).GetParentPath())
                del parent.nameChildren[Sdf.Path(root).name]
            Sdf.CreatePrimInLayer(layer, Sdf.Path(root).GetParentPath())
            Sdf.CopySpec(source, root, layer, root)
    data = dict(layer.customLayerData)
    data.update(source.customLayerData)
    data[SCENE_KEY] = digest
    layer.customLayerData = data
    if not stage.GetDefaultPrim():
        stage.SetDefaultPrim(stage.GetPrimAtPath("/World"))
    return True


def show_frame(stage: Usd.Stage, config: SDGConfig, seed: int, frame_index: int) -> FrameParams:
    """Put the live stage in frame ``frame_index`` of ``seed``: exactly what that frame of the dataset shows."""
    ensure_scene(stage, config)
    params = sample_frame_params(config, seed, frame_index)
    apply_frame_params(stage, params)
    return params
