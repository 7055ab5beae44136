"""The USD stage: what a frame's parameters put on it, read back through pxr as Isaac Sim would."""

from __future__ import annotations

import numpy as np
import pytest
from pxr import Sdf, Usd, UsdGeom, UsdLux, UsdPhysics, UsdSemantics, UsdShade
from sdgstudio.core.sampler import CAMERA_PATH, sample_frame_params
from sdgstudio.core.stage import FrameWriter, apply_frame_params, build_stage, save_stage


def _world_corners(cache: UsdGeom.BBoxCache, prim: Usd.Prim) -> np.ndarray:
    """Corners (meters, world) of the oriented bounding box of every gprim under ``prim``."""
    corners = []
    for gprim in (p for p in Usd.PrimRange(prim) if p.IsA(UsdGeom.Gprim)):
        box = cache.ComputeWorldBound(gprim)  # the gprim's own range, oriented by its world matrix
        lo, hi, m = np.array(box.GetRange().GetMin()), np.array(box.GetRange().GetMax()), np.array(box.GetMatrix())
        pts = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        corners.append((pts @ m)[:, :3])  # GfMatrix4d is row-vector
    return np.concatenate(corners)


def test_frame_params_land_on_the_stage(tabletop):
    stage = build_stage(tabletop)
    params = sample_frame_params(tabletop, 5, 2)
    apply_frame_params(stage, params)
    for obj in params.objects:
        prim = stage.GetPrimAtPath(obj.prim_path)
        assert UsdGeom.Imageable(prim).ComputeVisibility() == ("inherited" if obj.visible else "invisible")
        labels = UsdSemantics.LabelsAPI(prim, "class").GetLabelsAttr().Get()
        assert list(labels) == [next(a.semantic_class for a in tabletop.assets if a.name == obj.asset)]
        if not obj.visible:
            continue
        assert np.allclose(prim.GetAttribute("xformOp:translate").Get(), obj.position)
        assert np.allclose(prim.GetAttribute("xformOp:rotateXYZ").Get(), obj.rotation_xyz, atol=1e-4)
        assert abs(UsdPhysics.MassAPI(prim).GetMassAttr().Get() - obj.mass) < 1e-6
        material, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()
        surface = UsdShade.Shader(material.GetPrim().GetChild("Surface"))
        assert np.allclose(surface.GetInput("diffuseColor").Get(), obj.color, atol=1e-6)
        physics_mat, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial("physics")
        friction = UsdPhysics.MaterialAPI(physics_mat.GetPrim()).GetStaticFrictionAttr().Get()
        assert abs(friction - obj.static_friction) < 1e-6
    sun = UsdLux.DistantLight(stage.GetPrimAtPath("/World/Lights/Sun"))
    assert abs(sun.GetIntensityAttr().Get() - params.distant_light.intensity) < 1e-3
    # The sun's -Z axis points from the sky position (elevation, azimuth) down towards the scene.
    m = np.array(UsdGeom.Xformable(sun).ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T
    el, az = np.radians([params.distant_light.elevation, params.distant_light.azimuth])
    assert np.allclose(m[:3, 2], [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], atol=1e-6)
    cam = UsdGeom.Camera(stage.GetPrimAtPath(CAMERA_PATH))
    cam_m = np.array(cam.ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T
    assert np.allclose(cam_m[:3, 3], params.camera.position)
    forward = -cam_m[:3, 2]
    to_target = np.asarray(params.camera.look_at) - params.camera.position
    assert np.allclose(forward, to_target / np.linalg.norm(to_target), atol=1e-9)


def test_objects_rest_on_the_table_without_overlapping(tabletop):
    """Checked through USD's own bounds: bottoms on the table top, footprints apart by min_gap."""
    stage = build_stage(tabletop)
    cache = UsdGeom.BBoxCache(Usd.TimeCode.Default(), [UsdGeom.Tokens.default_, UsdGeom.Tokens.render])
    table_z = tabletop.pose.region.min[2]
    for frame in range(30):
        cache.Clear()
        params = sample_frame_params(tabletop, 1, frame)
        apply_frame_params(stage, params)
        feet = []
        for obj in (o for o in params.objects if o.visible):
            corners = _world_corners(cache, stage.GetPrimAtPath(obj.prim_path))
            assert corners[:, 2].min() >= table_z - 1e-6
            if not any(abs(a) > 0 for a in obj.rotation_xyz[:2]):
                assert abs(corners[:, 2].min() - table_z) < 1e-5, obj.prim_path
            centre = np.asarray(obj.position[:2])
            feet.append((centre, np.hypot(*(corners[:, :2] - centre).T).max()))
        for i, (ci, ri) in enumerate(feet):
            for cj, rj in feet[i + 1:]:
                assert np.hypot(*(ci - cj)) >= ri + rj + tabletop.pose.min_gap - 1e-6


def test_any_frame_applies_alone(tabletop, tmp_path):
    """The stage after frame 3 is the same whether frames 0..2 were applied before it or not."""
    fresh, used = build_stage(tabletop), build_stage(tabletop)
    for frame in range(3):
        apply_frame_params(used, sample_frame_params(tabletop, 0, frame))
    apply_frame_params(used, sample_frame_params(tabletop, 0, 3))
    apply_frame_params(fresh, sample_frame_params(tabletop, 0, 3))
    save_stage(fresh, tmp_path / "a.usda")
    save_stage(used, tmp_path / "b.usda")
    assert (tmp_path / "a.usda").read_text() == (tmp_path / "b.usda").read_text()
    reopened = Usd.Stage.Open(str(tmp_path / "a.usda"))
    assert reopened.GetPrimAtPath("/World/Objects/mug_0/geom/body").IsA(UsdGeom.Mesh)


def test_one_writer_for_many_frames_leaves_each_frame_as_applied_alone(tabletop, tmp_path):
    """A FrameWriter (what a run uses) keeps attribute handles and skips connection edits that change nothing:
    after each frame the stage is the one that frame alone gives, background textures switching on and off."""
    used = build_stage(tabletop)
    writer = FrameWriter(used)
    textured = []
    for frame in range(8):
        params = sample_frame_params(tabletop, 0, frame)
        textured.append(sum(bg.texture is not None for bg in params.backgrounds))
        writer.apply(params)
        fresh = build_stage(tabletop)
        apply_frame_params(fresh, params)
        save_stage(fresh, tmp_path / "fresh.usda")
        save_stage(used, tmp_path / "used.usda")
        assert (tmp_path / "fresh.usda").read_text() == (tmp_path / "used.usda").read_text(), frame
    assert 0 in textured and max(textured) > 0, "the frames connect and disconnect textures"


def test_writer_after_the_stage_was_edited(tabletop):
    """A prim removed and put back (an undo in the editor) gets the frame's values; one removed for good is one
    clear error naming the attribute."""
    stage = build_stage(tabletop)
    writer = FrameWriter(stage)
    writer.apply(sample_frame_params(tabletop, 0, 0))
    path = "/World/Objects/mug_0"
    stage.RemovePrim(path)
    assert not stage.GetPrimAtPath(path)
    original = build_stage(tabletop)
    Sdf.CopySpec(original.GetRootLayer(), path, stage.GetRootLayer(), path)
    params = sample_frame_params(tabletop, 0, 1)
    writer.apply(params)
    mug = next(o for o in params.objects if o.prim_path == path)
    assert stage.GetPrimAtPath(path).GetAttribute("xformOp:scale").Get()[0] == pytest.approx(mug.scale)
    stage.RemovePrim(path)
    with pytest.raises(ValueError, match=f"^the stage has no attribute {path}.visibility \\(was its prim removed"):
        writer.apply(params)
