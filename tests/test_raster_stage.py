"""Raster backend on stage features: instancing, purposes, visibility, MDL / displayColor materials, Plane, caches."""

from __future__ import annotations

import numpy as np
import pytest
from pxr import Gf, Sdf, UsdGeom, UsdLux, UsdShade
from sdgstudio.core.raster import RasterBackend
from test_raster import add_camera, add_cube, add_quad, label, new_stage, render


def test_instanced_references_render_as_separate_objects():
    stage = new_stage()
    cam, _ = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0))
    proto = stage.DefinePrim("/Prototypes/crate", "Xform")
    add_cube(stage, "/Prototypes/crate/body", 0.2, cls=None)
    stage.GetPrimAtPath("/Prototypes").SetSpecifier(Sdf.SpecifierClass)  # not rendered itself
    for k, x in enumerate((-0.3, 0.3)):
        inst = UsdGeom.Xform.Define(stage, f"/World/crate_{k}")
        inst.AddTranslateOp().Set(Gf.Vec3d(x, 0.0, 0.0))
        inst.GetPrim().GetReferences().AddInternalReference(proto.GetPath())
        inst.GetPrim().SetInstanceable(True)
        label(inst.GetPrim(), "box")
    frame = render(stage, cam)
    assert stage.GetPrimAtPath("/World/crate_0").IsInstance()
    assert [o.prim_path for o in frame.objects] == ["/World/crate_0", "/World/crate_1"]
    a, b = frame.objects
    assert a.pixel_count == pytest.approx(b.pixel_count, rel=0.02) and a.pixel_count > 100
    assert a.bbox_2d_tight[2] < 160 < b.bbox_2d_tight[0]


def test_invisible_guide_proxy_and_empty_stage():
    stage = new_stage()
    cam, _ = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0))
    frame = render(stage, cam)
    assert frame.objects == [] and np.isinf(frame.depth).all() and frame.rgb.max() == 0
    grp = UsdGeom.Xform.Define(stage, "/World/hidden")
    add_cube(stage, "/World/hidden/a", 0.2)
    grp.MakeInvisible()
    g = add_cube(stage, "/World/guide", 0.2)
    UsdGeom.Imageable(g).CreatePurposeAttr(UsdGeom.Tokens.guide)
    r = add_cube(stage, "/World/render", 0.2, (0.3, 0, 0))
    UsdGeom.Imageable(r).CreatePurposeAttr(UsdGeom.Tokens.render)
    frame = render(stage, cam)
    assert [o.prim_path for o in frame.objects] == ["/World/render"]


def test_mdl_omnipbr_and_vertex_display_color_and_plane():
    stage = new_stage()
    cam, _ = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0))
    UsdLux.DomeLight.Define(stage, "/World/dome").CreateIntensityAttr(1000.0)  # ambient E = 1: rgb = albedo
    mat = UsdShade.Material.Define(stage, "/World/Looks/green")
    sh = UsdShade.Shader.Define(stage, "/World/Looks/green/Shader")
    sh.SetSourceAsset(Sdf.AssetPath("OmniPBR.mdl"), "mdl")
    sh.CreateInput("diffuse_color_constant", Sdf.ValueTypeNames.Color3f).Set((0.0, 0.5, 0.0))
    sh.CreateInput("reflection_roughness_constant", Sdf.ValueTypeNames.Float).Set(1.0)
    mat.CreateSurfaceOutput("mdl").ConnectToSource(sh.ConnectableAPI(), "out")
    cube = add_cube(stage, "/World/green", 0.3, (-0.4, 0, 0))
    UsdShade.MaterialBindingAPI.Apply(cube.GetPrim()).Bind(mat)
    quad = add_quad(stage, "/World/quad", [(0.1, -0.2, 0), (0.6, -0.2, 0), (0.6, 0.2, 0), (0.1, 0.2, 0)], cls="plate")
    pv = quad.CreateDisplayColorPrimvar(UsdGeom.Tokens.vertex)
    pv.Set([(1, 0, 0), (0, 0, 1), (0, 0, 1), (1, 0, 0)])  # red on the left edge, blue on the right
    plane = UsdGeom.Plane.Define(stage, "/World/floor")
    plane.CreateWidthAttr(10.0), plane.CreateLengthAttr(10.0)
    plane.AddTranslateOp().Set(Gf.Vec3d(0, 0, -0.5))
    plane.CreateDisplayColorAttr([(0.2, 0.2, 0.2)])
    frame = render(stage, cam, (320, 240))
    g = frame.rgb[120, 160 - 79].astype(int)
    assert g[1] > 150 and g[0] < 40 and g[2] < 40, g  # MDL diffuse_color_constant
    left, right = frame.rgb[120, 160 + 27].astype(int), frame.rgb[120, 160 + 101].astype(int)
    assert left[0] > left[2] + 80 and right[2] > right[0] + 80, (left, right)
    assert frame.depth[5, 5] == pytest.approx(2.5, abs=1e-3) and frame.instance_segmentation[5, 5] == 0
    assert frame.unlabeled_pixel_count > 0.5 * 320 * 240


def test_caches_follow_stage_edits():
    stage = new_stage()
    cam, _ = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0))
    cube = add_cube(stage, "/World/box", 0.2)
    UsdLux.DistantLight.Define(stage, "/World/sun").CreateIntensityAttr(1000.0)
    backend = RasterBackend(["box"])
    f = 24.0 * 320 / 20.955
    assert render(stage, cam, backend=backend).objects[0].pixel_count == pytest.approx((0.2 * f / 1.9) ** 2, rel=0.05)
    cube.GetSizeAttr().Set(0.4)
    assert render(stage, cam, backend=backend).objects[0].pixel_count == pytest.approx((0.4 * f / 1.8) ** 2, rel=0.03)
    cube.CreateDisplayColorAttr([(1.0, 0.0, 0.0)])
    rgb = render(stage, cam, backend=backend).rgb[120, 160]
    assert rgb[0] > 200 and rgb[0] - rgb[1] > 100
    backend.close()
