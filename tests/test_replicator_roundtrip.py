"""Raster FrameData -> the Replicator payloads it implies -> normalize -> the same labels.

The raster backend's labels are exact, so they are the reference: ``synthesize.payloads_from_frame`` writes what
Replicator 1.12 would hand over for that frame (row-vector transforms, [W, H], structured box dtypes, its own ids,
inherited labels, inclusive integer boxes), ``normalize.frame_from_payloads`` reads it back with the objects
``scene.read_scene`` finds on the same stage. Everything must come back equal, except what Replicator's payloads
cannot carry (see ``synthesize``): loose boxes are whole pixels, truncation follows from them, and a fully
occluded object's unoccluded area is unknown.
"""

from __future__ import annotations

import numpy as np
import pytest
from pxr import Gf, Sdf, Usd, UsdGeom, UsdSemantics
from sdgstudio.core.config import Range
from sdgstudio.core.raster import RasterBackend
from sdgstudio.core.sampler import camera_path
from sdgstudio.core.session import RenderSession
from sdgstudio.replicator.normalize import frame_from_payloads
from sdgstudio.replicator.scene import bind_prims, read_scene
from sdgstudio.replicator.synthesize import payloads_from_frame

FRAMES = range(6)


@pytest.fixture(scope="module")
def round_trips(tabletop):
    config = tabletop.model_copy(deep=True)
    config.camera.resolution = (128, 96)
    config.camera.focal_length = Range(min=40, max=50)  # a narrow view: objects cut by the border and out of view
    session = RenderSession(config, RasterBackend(list(config.classes)))
    out = []
    for index in FRAMES:
        _, raster = session.render(index)
        scene = read_scene(session.stage, list(config.classes))
        payloads = payloads_from_frame(raster, list(config.classes))
        back = frame_from_payloads(payloads, scene, list(config.classes), config.annotators, index,
                                   camera_path(config))
        out.append((raster, back, payloads))
    return out


def test_the_frames_exercise_truncation_and_occlusion(round_trips):
    objects = [o for raster, _, _ in round_trips for o in raster.objects]
    assert any(o.truncation > 0.05 and o.bbox_2d_loose for o in objects), "no truncated object in the frames"
    assert any(0 < o.visible_fraction < 0.9 for o in objects), "no partly occluded object in the frames"
    assert any(o.bbox_2d_loose is None for o in objects), "no object out of view"
    assert all(r.unlabeled_pixel_count > 0 for r, _, _ in round_trips)  # the table and floor carry no class


@pytest.mark.parametrize("index", FRAMES)
def test_image_layers_come_back_exactly(round_trips, index):
    raster, back, _ = round_trips[index]
    np.testing.assert_array_equal(back.rgb, raster.rgb)
    np.testing.assert_array_equal(back.depth, raster.depth)  # inf where nothing is hit, whatever Replicator sent
    np.testing.assert_array_equal(back.instance_segmentation, raster.instance_segmentation)
    np.testing.assert_array_equal(back.semantic_segmentation, raster.semantic_segmentation)
    assert back.semantic_segmentation.dtype == np.uint16 and back.instance_segmentation.dtype == np.uint32
    np.testing.assert_allclose(back.normals, raster.normals, atol=2e-6)
    assert back.unlabeled_pixel_count == raster.unlabeled_pixel_count
    assert back.extra["unknown_classes"] == raster.extra["unknown_classes"]


@pytest.mark.parametrize("index", FRAMES)
def test_camera_comes_back(round_trips, index):
    raster, back, _ = round_trips[index]
    assert (back.camera.width, back.camera.height, back.camera.prim_path) == (128, 96, raster.camera.prim_path)
    np.testing.assert_allclose(back.camera.K, raster.camera.K, rtol=1e-6)
    np.testing.assert_allclose(back.camera.camera_to_world, raster.camera.camera_to_world, atol=1e-9)
    assert back.camera.near == pytest.approx(raster.camera.near, rel=1e-6)


@pytest.mark.parametrize("index", FRAMES)
def test_object_labels_come_back(round_trips, index):
    raster, back, _ = round_trips[index]
    assert [(o.instance_id, o.prim_path, o.class_name, o.class_id, o.is_target) for o in back.objects] == \
           [(o.instance_id, o.prim_path, o.class_name, o.class_id, o.is_target) for o in raster.objects]
    for r, b in zip(raster.objects, back.objects, strict=True):
        where = f"frame {index} {r.prim_path}"
        assert b.pixel_count == r.pixel_count, where
        assert b.bbox_2d_tight == r.bbox_2d_tight, where
        if r.pixel_count:
            assert b.unoccluded_pixel_count == r.unoccluded_pixel_count, where
            assert b.visible_fraction == r.visible_fraction, where
        else:  # not visible: Replicator does not say how much would be
            assert (b.unoccluded_pixel_count, b.visible_fraction) == (0, 0.0), where
        if r.bbox_2d_loose is None:
            assert (b.bbox_2d_loose, b.truncation) == (None, 1.0), where
        else:  # whole pixels, rounded outwards, still clipped to the image
            lo, hi = np.array(b.bbox_2d_loose[:2]), np.array(b.bbox_2d_loose[2:])
            assert np.all(lo <= r.bbox_2d_loose[:2]) and np.all(lo > np.array(r.bbox_2d_loose[:2]) - 1), where
            assert np.all(hi >= r.bbox_2d_loose[2:]) and np.all(hi < np.array(r.bbox_2d_loose[2:]) + 1), where
            assert np.all(lo >= 0) and hi[0] <= 128 and hi[1] <= 96, where
            size = min(r.bbox_2d_loose[2] - r.bbox_2d_loose[0], r.bbox_2d_loose[3] - r.bbox_2d_loose[1])
            assert b.truncation == pytest.approx(r.truncation, abs=4.0 / max(size, 1.0)), where
        np.testing.assert_allclose(b.bbox_3d_extents, r.bbox_3d_extents, rtol=1e-6, atol=1e-7, err_msg=where)
        np.testing.assert_allclose(b.local_to_world, r.local_to_world, atol=1e-6, err_msg=where)
        np.testing.assert_allclose(b.scale, r.scale, rtol=1e-6, err_msg=where)
        np.testing.assert_allclose(b.pose_in_camera, r.pose_in_camera, atol=1e-5, err_msg=where)
    assert back.extra.get("occlusion_unknown") is None


def test_labels_json_matches_but_for_the_loose_box_rounding(round_trips):
    raster, back, _ = round_trips[0]
    a, b = raster.labels_json(), back.labels_json()
    for labels in (a, b):
        for o in labels["objects"]:
            for key in ("bbox_2d_loose", "truncation", "bbox_3d", "pose_in_camera", "scale"):
                o.pop(key)
        labels.pop("camera")
        labels.pop("target", None)
    assert a == b


# ---------------------------------------------------------------------------------------------------- the scene


def _stage_with_awkward_prims() -> Usd.Stage:
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)

    def label(prim, cls):
        UsdSemantics.LabelsAPI.Apply(prim, "class").CreateLabelsAttr([cls])

    two = UsdGeom.Xform.Define(stage, "/World/two_meshes")  # one object of two meshes
    label(two.GetPrim(), "mug")
    two.AddTranslateOp().Set(Gf.Vec3d(1, 2, 3))
    UsdGeom.Cube.Define(stage, "/World/two_meshes/a").CreateSizeAttr(0.2)
    UsdGeom.Sphere.Define(stage, "/World/two_meshes/b").CreateRadiusAttr(0.5)
    rotated = UsdGeom.Cube.Define(stage, "/World/rotated_box")  # the labelled prim is the gprim itself
    rotated.CreateSizeAttr(0.4)
    rotated.AddRotateZOp().Set(30.0)
    label(rotated.GetPrim(), "box")
    hidden = UsdGeom.Cube.Define(stage, "/World/hidden")
    label(hidden.GetPrim(), "box")
    hidden.MakeInvisible()
    guide = UsdGeom.Cube.Define(stage, "/World/guide")
    label(guide.GetPrim(), "box")
    guide.CreatePurposeAttr(UsdGeom.Tokens.guide)
    label(UsdGeom.Xform.Define(stage, "/World/empty").GetPrim(), "box")  # a label without geometry: no object
    plant = UsdGeom.Xform.Define(stage, "/World/mug_with_plant")
    label(plant.GetPrim(), "mug")
    UsdGeom.Cube.Define(stage, "/World/mug_with_plant/cup")
    label(UsdGeom.Cube.Define(stage, "/World/mug_with_plant/plant").GetPrim(), "plant")  # own, unknown class
    # native instancing: two instances of one prototype, the label on each instance root
    proto = UsdGeom.Xform.Define(stage, "/Prototypes/Bowl")
    UsdGeom.Cylinder.Define(stage, "/Prototypes/Bowl/geom")
    proto.GetPrim().SetSpecifier(Sdf.SpecifierClass)
    for k in range(2):
        inst = UsdGeom.Xform.Define(stage, f"/World/bowl_{k}")
        inst.GetPrim().GetInherits().AddInherit("/Prototypes/Bowl")
        inst.GetPrim().SetInstanceable(True)
        label(inst.GetPrim(), "bowl")
    UsdGeom.Cube.Define(stage, "/World/table")  # no label at all
    return stage


def test_read_scene_applies_the_raster_backends_object_rule():
    scene = read_scene(_stage_with_awkward_prims(), ["mug", "box", "bowl"])
    assert [o.prim_path for o in scene.objects] == ["/World/bowl_0", "/World/bowl_1", "/World/mug_with_plant",
                                                     "/World/rotated_box", "/World/two_meshes"]
    assert scene.unknown_classes == ["plant"]
    rotated, two = scene.objects[3:]
    assert two.extents == ((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5))  # both meshes, in the object's frame
    np.testing.assert_allclose(rotated.extents, ((-0.2, -0.2, -0.2), (0.2, 0.2, 0.2)))  # its own rotation excluded
    np.testing.assert_array_equal(two.local_to_world[:3, 3], [1, 2, 3])
    # Replicator entity paths fold into objects: leaf meshes, instance proxies; the plant stays its own
    assert scene.object_index("/World/two_meshes/b") == 4
    assert scene.object_index("/World/bowl_1/geom") == 1
    assert scene.object_index("/World/mug_with_plant/plant") == -1
    assert scene.object_index("/World/table") == -1
    assert scene.object_index("UNLABELLED") == -1


def test_bind_prims_labels_picked_prims_so_they_become_objects():
    stage = _stage_with_awkward_prims()
    assert bind_prims(stage, {"/World/table": "table", "/World/two_meshes": "mug"}) == ["/World/table"]
    scene = read_scene(stage, ["mug", "box", "bowl", "table"])
    assert "/World/table" in [o.prim_path for o in scene.objects]
    with pytest.raises(ValueError, match="no prim at /World/nothing"):
        bind_prims(stage, {"/World/nothing": "mug"})
