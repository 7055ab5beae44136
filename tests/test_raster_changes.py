"""The raster backend re-reads only what changed on the stage (``raster/changes.py``): after every kind of edit a
long-lived backend renders exactly what a fresh backend renders from the same stage, and it really skips the
work it may skip."""

from __future__ import annotations

import pytest
from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade
from sdgstudio.core import scene_objects
from sdgstudio.core.raster import RasterBackend, RasterSettings
from test_raster import ALL, CLASSES, add_cube, label, textured_scene

RES = (96, 72)


def _same(a, b) -> None:
    for name, img in a.images().items():
        assert img.tobytes() == b.images()[name].tobytes(), name
    assert a.labels_json() == b.labels_json()


def _bind(stage, prim, path: str, rgb) -> UsdShade.Material:
    mat = UsdShade.Material.Define(stage, path)
    sh = UsdShade.Shader.Define(stage, f"{path}/pbr")
    sh.CreateIdAttr("UsdPreviewSurface")
    sh.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(*rgb))
    mat.CreateSurfaceOutput().ConnectToSource(sh.ConnectableAPI(), "surface")
    if prim is not None:
        UsdShade.MaterialBindingAPI.Apply(prim).Bind(mat)
    return mat


def _collection_binding(stage, material) -> None:
    world = stage.GetPrimAtPath("/World")
    tinted = Usd.CollectionAPI.Apply(world, "tinted")
    tinted.CreateIncludesRel().AddTarget("/World/quad")
    UsdShade.MaterialBindingAPI.Apply(world).Bind(tinted, material, "tint", UsdShade.Tokens.strongerThanDescendants)


def _edits(stage):
    """(name, edit) pairs, applied in order to one stage."""
    group = UsdGeom.Xform.Define(stage, "/World/group")
    label(group.GetPrim(), "mug")
    add_cube(stage, "/World/group/part", 0.15, (-0.2, 0.2, 0.1), cls=None)
    box = stage.GetPrimAtPath("/World/cube")
    quad = UsdGeom.Mesh(stage.GetPrimAtPath("/World/quad"))
    red = _bind(stage, stage.GetPrimAtPath("/World/group/part"), "/World/Looks/red", (0.8, 0.1, 0.1))
    _bind(stage, box, "/World/Looks/green", (0.1, 0.8, 0.1))
    green_shader = UsdShade.Shader(stage.GetPrimAtPath("/World/Looks/green/pbr"))
    blue = _bind(stage, None, "/World/Looks/blue", (0.1, 0.2, 0.9))
    return [
        ("move an object", lambda: box.GetAttribute("xformOp:translate").Set(Gf.Vec3d(0.3, 0.1, 0.05))),
        ("edit mesh points", lambda: quad.GetPointsAttr().Set(
            [Gf.Vec3f(-0.6, -0.3, 0), Gf.Vec3f(-0.1, -0.35, 0), Gf.Vec3f(-0.05, 0.3, 0), Gf.Vec3f(-0.6, 0.3, 0)])),
        ("resize an implicit prim", lambda: box.GetAttribute("size").Set(0.3)),
        ("hide a prim never hidden before", lambda: UsdGeom.Imageable(box).GetVisibilityAttr().Set("invisible")),
        ("show it again", lambda: UsdGeom.Imageable(box).GetVisibilityAttr().Set("inherited")),
        ("hide a whole object", lambda: UsdGeom.Imageable(group).GetVisibilityAttr().Set("invisible")),
        ("show it again", lambda: UsdGeom.Imageable(group).GetVisibilityAttr().Set("inherited")),
        ("move a gprim inside an object", lambda: stage.GetPrimAtPath("/World/group/part").GetAttribute(
            "xformOp:translate").Set(Gf.Vec3d(-0.25, 0.15, 0.1))),
        ("edit a material input", lambda: green_shader.GetInput("diffuseColor").Set(Gf.Vec3f(0.1, 0.1, 0.9))),
        ("edit a texture's input", lambda: UsdShade.Shader(stage.GetPrimAtPath("/World/Looks/lr/tex")).CreateInput(
            "scale", Sdf.ValueTypeNames.Float4).Set(Gf.Vec4f(0.5, 1.0, 0.5, 1.0))),
        ("edit it again", lambda: UsdShade.Shader(stage.GetPrimAtPath("/World/Looks/lr/tex")).GetInput(
            "scale").Set(Gf.Vec4f(1.0, 0.5, 0.5, 1.0))),
        ("disconnect the texture", lambda: UsdShade.Shader(stage.GetPrimAtPath("/World/Looks/lr/pbr")).GetInput(
            "diffuseColor").GetAttr().ClearConnections()),
        ("give the input a value", lambda: UsdShade.Shader(stage.GetPrimAtPath("/World/Looks/lr/pbr")).GetInput(
            "diffuseColor").Set(Gf.Vec3f(0.9, 0.8, 0.1))),
        ("connect the texture again", lambda: UsdShade.Shader(stage.GetPrimAtPath("/World/Looks/lr/pbr")).GetInput(
            "diffuseColor").ConnectToSource(UsdShade.Shader(stage.GetPrimAtPath("/World/Looks/lr/tex"))
                                            .ConnectableAPI(), "rgb")),
        ("re-type a shader", lambda: UsdShade.Shader(stage.GetPrimAtPath("/World/Looks/green/pbr")).GetIdAttr().Set(
            "OmniPBR")),
        ("rebind a material", lambda: UsdShade.MaterialBindingAPI(box).Bind(red)),
        ("bind through a collection", lambda: _collection_binding(stage, blue)),
        ("add a prim to that collection", lambda: Usd.CollectionAPI(stage.GetPrimAtPath("/World"), "tinted")
         .GetIncludesRel().AddTarget("/World/cube")),
        ("relabel an object", lambda: stage.GetPrimAtPath("/World/group").GetAttribute(
            scene_objects.CLASS_ATTR).Set(["plate"])),
        ("add a prim", lambda: add_cube(stage, "/World/new_box", 0.1, (0.0, -0.25, 0.05), cls="box")),
        ("remove a prim", lambda: stage.RemovePrim("/World/new_box")),
        ("make a prim a guide", lambda: UsdGeom.Imageable(quad).GetPurposeAttr().Set("guide")),
        ("change the light", lambda: stage.GetPrimAtPath("/World/sun").GetAttribute("inputs:intensity").Set(300.0)),
    ]


def test_a_long_lived_backend_renders_every_edit_like_a_fresh_one(tmp_path):
    stage, cam, _ = textured_scene(tmp_path)
    edits = _edits(stage)
    kept = RasterBackend(CLASSES, RasterSettings())
    kept.render(stage, cam, RES, ALL, 0)
    for k, (name, edit) in enumerate(edits, start=1):
        edit()
        fresh = RasterBackend(CLASSES, RasterSettings()).render(stage, cam, RES, ALL, k)
        try:
            _same(kept.render(stage, cam, RES, ALL, k), fresh)
        except AssertionError as e:
            raise AssertionError(f"after '{name}': {e}") from None


def test_a_pose_only_frame_does_not_traverse_or_rehash_the_stage(tmp_path, monkeypatch):
    stage, cam, _ = textured_scene(tmp_path)
    backend = RasterBackend(CLASSES, RasterSettings())
    backend.render(stage, cam, RES, ALL, 0)
    calls = []
    from sdgstudio.core.raster import materials, scene

    monkeypatch.setattr(scene, "stage_layout", lambda s: calls.append("traverse") or scene_objects.stage_layout(s))
    monkeypatch.setattr(scene, "build_piece", lambda *a: calls.append("hash") or pytest.fail("rehashed"))
    read = materials.MaterialReader._read
    monkeypatch.setattr(materials.MaterialReader, "_read", lambda self, *a: calls.append("material") or read(self, *a))
    shape = scene.SceneReader._shape
    monkeypatch.setattr(scene.SceneReader, "_shape", lambda self, *a: calls.append("shape") or shape(self, *a))
    stage.GetPrimAtPath("/World/cube").GetAttribute("xformOp:translate").Set(Gf.Vec3d(0.3, 0.1, 0.0))
    UsdGeom.Imageable(stage.GetPrimAtPath("/World/cube")).GetVisibilityAttr().Set("invisible")  # now authored
    backend.render(stage, cam, RES, ALL, 1)
    assert calls[0] == "traverse" and set(calls[1:]) == {"shape"}  # a visibility authored for the first time
    calls.clear()  # regroups once (and so re-reads each object's shape) ...
    cube = stage.GetPrimAtPath("/World/cube")
    UsdGeom.Imageable(cube).GetVisibilityAttr().Set("inherited")
    backend.render(stage, cam, RES, ALL, 2)
    assert calls == ["shape"]  # ... the cube, hidden when the objects were regrouped, is read when shown ...
    calls.clear()
    for k, (visibility, x) in enumerate((("invisible", 0.2), ("inherited", 0.1), ("invisible", 0.0)), start=3):
        UsdGeom.Imageable(cube).GetVisibilityAttr().Set(visibility)
        cube.GetAttribute("xformOp:translate").Set(Gf.Vec3d(x, 0.1, 0.0))
        backend.render(stage, cam, RES, ALL, k)
    assert calls == []  # ... and later toggles and moves re-read nothing but transforms and visibility


def test_frame_geometry_gathered_from_the_mesh_atlas_matches_a_fresh_build_as_objects_come_and_go(
        tabletop, monkeypatch):
    """The built-in scene shows a different set of objects every frame: the long-lived backend gathers each frame's
    geometry from its atlas (here also rebuilt from scratch whenever it holds more than the frame needs)."""
    from sdgstudio.core.raster import geometry
    from sdgstudio.core.session import RenderSession

    monkeypatch.setattr(geometry, "_COMPACT", 1)
    config = tabletop.model_copy(deep=True)
    config.camera.resolution = RES
    session = RenderSession(config, RasterBackend(list(config.classes), RasterSettings()))
    seen = set()
    for k in range(8):
        _, kept = session.render(k)
        fresh = RasterBackend(list(config.classes), RasterSettings()).render(
            session.stage, session.camera_path, RES, session.render_annotators, k)
        _same(kept, fresh)
        seen.add(session.backend.geometry.key)
    assert len(seen) > 4  # the instance list really changed from frame to frame


def test_a_set_of_objects_shown_again_reuses_its_gathered_geometry(tabletop, monkeypatch):
    """A run shows the same few sets of objects over and over: a set seen before is not gathered again, and renders
    exactly as a fresh backend renders it; the kept gathers stay within their bounds."""
    from sdgstudio.core.raster import geometry
    from sdgstudio.core.session import RenderSession

    config = tabletop.model_copy(deep=True)
    config.camera.resolution = RES
    session = RenderSession(config, RasterBackend(list(config.classes), RasterSettings()))
    gathers = []
    launch = geometry.wp.launch
    monkeypatch.setattr(geometry.wp, "launch", lambda kernel, *a, **k: gathers.append(kernel.key) or launch(
        kernel, *a, **k))
    keys, frames = [], []
    for k in range(24):
        frames.append(session.render(k)[1])
        keys.append(session.backend.geometry.key)
    distinct = len(set(keys))
    assert distinct < len(keys) - 8  # the sets really repeat
    assert len([g for g in gathers if g.startswith("gather_")]) == 2 * distinct  # vertices, triangles: once a set
    assert len(session.backend.geometry._gathered) == min(distinct, geometry._KEEP)
    for k in (20, 23):  # a set shown again renders as a fresh backend renders it
        session.apply(k)
        _same(frames[k], RasterBackend(list(config.classes), RasterSettings()).render(
            session.stage, session.camera_path, RES, session.render_annotators, k))
    monkeypatch.setattr(geometry, "_KEEP", 2)
    small = RenderSession(config, RasterBackend(list(config.classes), RasterSettings()))
    for k in range(12):
        small.render(k)
        assert len(small.backend.geometry._gathered) <= 2
