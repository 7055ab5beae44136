"""Smoke test: a ~10-object table scene at 640x480 with every annotator; prints render times (no assertions on them)."""

from __future__ import annotations

import time

import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdLux, UsdSemantics, UsdShade
from sdgstudio.core.raster import RasterBackend, RasterSettings

CLASSES = ["mug", "box", "ball", "can", "cone"]
ALL = {"rgb", "depth", "instance_segmentation", "semantic_segmentation", "normals", "bounding_box_2d_tight",
       "bounding_box_2d_loose", "bounding_box_3d", "pose_6d"}


def table_scene() -> Usd.Stage:
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    cam = UsdGeom.Camera.Define(stage, "/World/Camera")
    cam.CreateFocalLengthAttr(18.0)
    cam.CreateClippingRangeAttr(Gf.Vec2f(0.01, 50.0))
    cam.AddTranslateOp().Set(Gf.Vec3d(0.0, -1.3, 0.9))
    cam.AddRotateXYZOp().Set(Gf.Vec3f(55.0, 0.0, 0.0))
    table = UsdGeom.Cube.Define(stage, "/World/table")
    table.AddTranslateOp().Set(Gf.Vec3d(0, 0, -0.025))
    table.AddScaleOp().Set(Gf.Vec3f(1.2, 0.8, 0.025))
    mat = UsdShade.Material.Define(stage, "/World/Looks/wood")
    sh = UsdShade.Shader.Define(stage, "/World/Looks/wood/pbr")
    sh.CreateIdAttr("UsdPreviewSurface")
    sh.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set((0.45, 0.3, 0.2))
    mat.CreateSurfaceOutput().ConnectToSource(sh.ConnectableAPI(), "surface")
    UsdShade.MaterialBindingAPI.Apply(table.GetPrim()).Bind(mat)
    rng = np.random.default_rng(0)
    makers = [(UsdGeom.Cube, "box", {"size": 0.12}), (UsdGeom.Sphere, "ball", {"radius": 0.06}),
              (UsdGeom.Cylinder, "can", {"radius": 0.04, "height": 0.12}),
              (UsdGeom.Cone, "cone", {"radius": 0.05, "height": 0.12})]
    for i in range(9):
        typ, cls, attrs = makers[i % len(makers)]
        prim = typ.Define(stage, f"/World/obj_{i:02d}")
        for name, value in attrs.items():
            prim.GetPrim().GetAttribute(name).Set(value)
        prim.AddTranslateOp().Set(Gf.Vec3d(rng.uniform(-0.45, 0.45), rng.uniform(-0.3, 0.3), 0.07))
        prim.AddRotateXYZOp().Set(Gf.Vec3f(0.0, 0.0, float(rng.uniform(0, 360))))
        prim.CreateDisplayColorAttr([tuple(rng.uniform(0.1, 0.9, 3))])
        UsdSemantics.LabelsAPI.Apply(prim.GetPrim(), "class").CreateLabelsAttr([cls])
    mug = UsdGeom.Xform.Define(stage, "/World/mug")  # a multi-mesh asset
    mug.AddTranslateOp().Set(Gf.Vec3d(0.3, 0.25, 0.0))
    UsdSemantics.LabelsAPI.Apply(mug.GetPrim(), "class").CreateLabelsAttr(["mug"])
    body = UsdGeom.Cylinder.Define(stage, "/World/mug/body")
    body.CreateRadiusAttr(0.04), body.CreateHeightAttr(0.1), body.AddTranslateOp().Set(Gf.Vec3d(0, 0, 0.05))
    handle = UsdGeom.Capsule.Define(stage, "/World/mug/handle")
    handle.CreateRadiusAttr(0.01), handle.CreateHeightAttr(0.05), handle.AddTranslateOp().Set(Gf.Vec3d(0.05, 0, 0.05))
    sun = UsdLux.DistantLight.Define(stage, "/World/sun")
    sun.CreateIntensityAttr(2000.0)
    sun.AddRotateXYZOp().Set(Gf.Vec3f(30.0, 20.0, 0.0))
    bulb = UsdLux.SphereLight.Define(stage, "/World/bulb")
    bulb.CreateIntensityAttr(30000.0), bulb.CreateRadiusAttr(0.1)
    bulb.AddTranslateOp().Set(Gf.Vec3d(-0.5, -0.5, 1.2))
    UsdLux.DomeLight.Define(stage, "/World/sky").CreateIntensityAttr(150.0)
    return stage


def test_smoke_640x480_ten_objects(capsys):
    stage = table_scene()
    backend = RasterBackend(CLASSES, RasterSettings(device="cpu"))
    t = time.perf_counter()
    frame = backend.render(stage, "/World/Camera", (640, 480), ALL, 0)
    cold = (time.perf_counter() - t) * 1000.0
    best: dict[str, float] = {}
    for k in range(5):
        xf = UsdGeom.Xformable(stage.GetPrimAtPath("/World/obj_00")).GetOrderedXformOps()[1]
        xf.Set(Gf.Vec3f(0.0, 0.0, 10.0 * k))  # pose changes only: cached meshes are reused
        frame = backend.render(stage, "/World/Camera", (640, 480), ALL, k + 1)
        for key, ms in backend.last_timings.items():
            best[key] = min(best.get(key, float("inf")), ms)
    with capsys.disabled():
        print(f"\nraster 640x480, {len(frame.objects)} objects: first frame {cold:.0f} ms; best of 5 warm (ms): "
              + ", ".join(f"{k} {v:.1f}" for k, v in best.items()))
    assert frame.rgb.shape == (480, 640, 3) and frame.rgb.mean() > 20
    assert len(frame.objects) == 10 and sum(o.pixel_count > 0 for o in frame.objects) >= 8
    assert set(np.unique(frame.instance_segmentation)) <= set(range(11))
