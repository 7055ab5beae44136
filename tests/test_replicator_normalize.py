"""Replicator payload normalizers on payloads built exactly to the documented 1.12 formats (API_FACTS.md A2).

Each payload below is written as ``Annotator.get_data()`` returns it (legacy structure): dtype field names,
shapes, ``info`` dictionaries with int (or, from JSON, string) keys. The awkward cases are the point: prims with
no semantics, instanced prims (several Replicator ids, one object), fully occluded objects, non-finite depth,
ids that no ``idToLabels`` entry names.
"""

from __future__ import annotations

import numpy as np
import pytest
from sdgstudio.replicator.normalize import (
    PayloadError,
    Scene,
    SceneObject,
    boxes_from_payload,
    camera_from_params,
    class_of_labels,
    depth_from_payload,
    flow_from_motion_vectors,
    frame_from_payloads,
    instances_from_payload,
    normals_from_payload,
    rgb_from_payload,
    semantic_from_payload,
)
from sdgstudio.replicator.plan import LABEL_CORE, PlanError, replicator_annotators, split_render_products
from sdgstudio.replicator.synthesize import BOX2D_DTYPE, BOX3D_DTYPE

CLASSES = ["mug", "box", "bowl"]
MUG, BOX, BOWL = "/World/Objects/mug_0", "/World/Objects/box_0", "/World/Objects/bowl_0"
TABLE = "/World/Props/table"
W, H = 6, 4


def translate(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = x, y, z
    return m


@pytest.fixture
def scene() -> Scene:
    half = ((-0.05, -0.05, -0.05), (0.05, 0.05, 0.05))
    return Scene(
        objects=[SceneObject(BOWL, "bowl", 3, translate(5, 5, 0), half),  # out of view in every test
                 SceneObject(BOX, "box", 2, translate(0, 0.2, 0.8), half, is_target=True),
                 SceneObject(MUG, "mug", 1, translate(0, 0, 0.8), half)],
        labelled={TABLE: "table"}, unknown_classes=["table"])


def camera_payload(width: int = W, height: int = H, eye=(0.0, 0.0, 3.0)) -> dict:
    """A pinhole camera at ``eye`` looking down -Z (identity rotation), as camera_params returns it."""
    view = np.eye(4)
    view[3, :3] = -np.asarray(eye)  # row-vector world -> camera: translation in the last row
    return {"cameraAperture": np.array([20.955, 20.955 * height / width], np.float32),
            "cameraApertureOffset": np.array([0.0, 0.0], np.float32), "cameraFocalLength": 24.0,
            "cameraFocusDistance": 400.0, "cameraFStop": 0.0, "cameraModel": "pinhole",
            "cameraNearFar": np.array([0.01, 100.0], np.float32), "cameraProjection": np.zeros(16),
            "cameraViewTransform": view.ravel(), "metersPerSceneUnit": 1.0,
            "renderProductResolution": np.array([width, height], np.int32)}


def box_rows(rows: list[tuple], paths: list[str], dtype=BOX2D_DTYPE) -> dict:
    return {"data": np.array(rows, dtype=dtype),
            "info": {"idToLabels": {1: {"class": "mug"}, 2: {"class": "box"}},
                     "bboxIds": np.arange(len(rows), dtype=np.uint32), "primPaths": paths}}


# ---------------------------------------------------------------------------------------------------- plan


def test_the_plan_attaches_the_label_core_then_each_layer_once():
    specs = replicator_annotators(["rgb", "pose_6d", "bounding_box_3d", "depth", "optical_flow"])
    names = [s.name for s in specs]
    assert names[:3] == list(LABEL_CORE)
    assert names[3:] == ["rgb", "bounding_box_3d", "distance_to_image_plane", "motion_vectors"]
    by_name = {s.name: s.init_params for s in specs}
    assert by_name["instance_segmentation"] == {"semanticTypes": ["class"], "colorize": False}
    assert by_name["rgb"] == {} and by_name["camera_params"] == {}
    with pytest.raises(PlanError, match="lidar"):
        replicator_annotators(["lidar"])


def test_writer_payload_keys_split_per_render_product():
    single = {"rgb": 1, "camera_params": 2, "reference_time": (3, 1), "trigger_outputs": {}}
    assert split_render_products(single, ["rgb", "camera_params"]) == {"": {"rgb": 1, "camera_params": 2}}
    multi = {"rgb-left": 1, "rgb-my-right": 2, "camera_params-left": 3, "camera_params-my-right": 4,
             "rp_resolution": [6, 4], "reference_time": (0, 1)}
    assert split_render_products(multi, ["rgb", "camera_params"]) == {
        "left": {"rgb": 1, "camera_params": 3}, "my-right": {"rgb": 2, "camera_params": 4}}
    with pytest.raises(PlanError, match="none of the annotators"):
        split_render_products({"reference_time": (0, 1)}, ["rgb"])
    with pytest.raises(PlanError, match="mixes"):
        split_render_products({"rgb": 1, "rgb-left": 2}, ["rgb"])


# ---------------------------------------------------------------------------------------------------- camera


def test_camera_params_row_vector_view_transform_becomes_an_opencv_pose():
    # RC annotator docs: a camera at x=100 has cameraViewTransform last row [-100, 0, 0, 1]
    params = camera_payload(1024, 512, eye=(100.0, 0.0, 0.0))
    cam = camera_from_params(params, "/World/Camera")
    np.testing.assert_allclose(cam.camera_to_world[:3, 3], [100.0, 0.0, 0.0])
    np.testing.assert_allclose(cam.camera_to_world[:3, 2], [0.0, 0.0, -1.0])  # OpenCV +Z = USD -Z (looking)
    np.testing.assert_allclose(cam.camera_to_world[:3, 1], [0.0, -1.0, 0.0])  # OpenCV +Y = down
    f = 24.0 * 1024 / float(np.float32(20.955))
    np.testing.assert_allclose(cam.K, [[f, 0, 512], [0, f, 256], [0, 0, 1]], rtol=1e-12)
    assert (cam.width, cam.height, cam.prim_path) == (1024, 512, "/World/Camera")
    assert cam.near == pytest.approx(0.01) and cam.far == pytest.approx(100.0)


def test_aperture_offsets_move_the_principal_point_as_the_raster_backend_does():
    params = camera_payload(200, 100)
    params["cameraApertureOffset"] = np.array([2.0, 1.0], np.float32)
    cam = camera_from_params(params)
    scale = 200 / float(np.float32(20.955))
    assert cam.K[0, 2] == pytest.approx(100 + 2.0 * scale)
    assert cam.K[1, 2] == pytest.approx(50 - 1.0 * scale)


def test_camera_params_errors_name_the_field():
    with pytest.raises(PayloadError, match="fisheyePolynomial"):
        camera_from_params({**camera_payload(), "cameraModel": "fisheyePolynomial"})
    params = camera_payload()
    del params["cameraViewTransform"]
    with pytest.raises(PayloadError, match="cameraViewTransform"):
        camera_from_params(params)


# ---------------------------------------------------------------------------------------------------- layers


def test_non_finite_and_non_positive_depth_means_no_hit():
    d = np.array([[1.5, np.inf, -np.inf, np.nan, 0.0, -2.0]] * 4, np.float32)
    out = depth_from_payload(d[..., None], 4, 6)  # a trailing channel of 1 is accepted
    assert out.dtype == np.float32
    assert out[0, 0] == np.float32(1.5)
    assert np.isposinf(out[:, 1:]).all()


def test_rgba_drops_alpha_and_shapes_are_checked():
    rgba = np.arange(H * W * 4, dtype=np.uint8).reshape(H, W, 4)
    np.testing.assert_array_equal(rgb_from_payload(rgba, H, W), rgba[..., :3])
    with pytest.raises(PayloadError, match=r"rgb: expected shape \(4, 6, C\)"):
        rgb_from_payload(rgba[:, :5], H, W)
    with pytest.raises(PayloadError, match="uint8"):
        rgb_from_payload(rgba.astype(np.float32), H, W)


def test_normals_are_unit_face_the_camera_and_vanish_where_nothing_is_hit():
    cam = camera_from_params(camera_payload())  # looks down world -Z
    n = np.zeros((H, W, 4), np.float32)
    n[..., 2] = 3.0  # towards the camera (+Z), length 3
    n[0, 0, 2] = -0.5  # facing away: flipped
    hit = np.ones((H, W), bool)
    hit[3, 5] = False
    out = normals_from_payload(n, cam, hit)
    assert out.shape == (H, W, 3) and out.dtype == np.float32
    assert out[0, 0].tolist() == [0.0, 0.0, 1.0]
    assert out[1, 1].tolist() == [0.0, 0.0, 1.0]
    assert out[3, 5].tolist() == [0.0, 0.0, 0.0]


def test_motion_vectors_become_flow_right_and_down():
    mv = np.zeros((H, W, 4), np.float32)
    mv[..., 0], mv[..., 1] = 2.0, -3.0  # moved 2 px left and 3 px down
    flow = flow_from_motion_vectors(mv, H, W)
    assert flow.shape == (H, W, 2)
    assert flow[0, 0].tolist() == [-2.0, 3.0]


def test_semantic_ids_map_to_stable_class_ids_by_the_last_known_label():
    class_ids = {n: i + 1 for i, n in enumerate(CLASSES)}
    assert class_of_labels({"class": "table, mug"}, class_ids) == 1  # inherited label first
    assert class_of_labels({"class": "box,mug"}, class_ids) == 1
    assert class_of_labels({"class": "mug, table"}, class_ids) == 1  # the unknown one is skipped
    assert class_of_labels({"class": "plant"}, class_ids) == 0
    assert class_of_labels({"prim": "mug"}, class_ids) == 0  # only the "class" taxonomy counts
    assert class_of_labels("bowl", class_ids) == 3
    data = np.array([[0, 1, 2, 3, 4, 99]] * H, np.uint32)
    labels = {"0": {"class": "BACKGROUND"}, "1": {"class": "UNLABELLED"}, "2": {"class": "table, mug"},
              "3": {"class": "box"}, "4": {"class": "plant"}}  # string keys, as in JSON; 99 has no entry
    out = semantic_from_payload({"data": data, "info": {"idToLabels": labels}}, CLASSES, H, W)
    assert out.dtype == np.uint16
    assert out[0].tolist() == [0, 0, 1, 2, 0, 0]


# ---------------------------------------------------------------------------------------------------- instances


def test_instances_fold_replicator_ids_into_objects(scene):
    # 5 and 6: two instance proxies (leaf meshes) of one mug; 1: geometry without semantics; 9: a prim of a class
    # not in the list; 12: an id no idToLabels entry names; 0: background
    data = np.array([[0, 0, 5, 5, 6, 7],
                     [0, 1, 5, 6, 6, 7],
                     [1, 1, 9, 9, 12, 7],
                     [0, 0, 0, 0, 0, 0]], np.uint32)
    labels = {0: "BACKGROUND", 1: "UNLABELLED", 5: f"{MUG}/geom/Prototype_mesh", 6: f"{MUG}/geom/handle",
              7: BOX, 9: TABLE}
    inst = instances_from_payload({"data": data, "info": {"idToLabels": labels, "idToSemantics": {}}}, scene, H, W)
    mug, box = 3, 2  # sorted by path: bowl, box, mug -> ids 1, 2, 3
    assert inst.ids.tolist() == [[0, 0, mug, mug, mug, box],
                                 [0, 0, mug, mug, mug, box],
                                 [0, 0, 0, 0, 0, box],
                                 [0, 0, 0, 0, 0, 0]]
    assert inst.ids.dtype == np.uint32
    assert inst.counts.tolist()[1:] == [0, 3, 6]
    assert inst.unlabeled == 6  # three UNLABELLED, two table, one unnamed id
    assert inst.hit.sum() == 15


def test_boxes_map_entities_to_objects_and_read_inclusive_maxima(scene):
    payload = box_rows([(1, 2, 0, 3, 1, 0.25), (2, 5, 0, 5, 2, -1.0), (9, 0, 0, 1, 1, 0.0)],
                       [MUG, BOX, TABLE])
    boxes = boxes_from_payload(payload, "bounding_box_2d_tight", scene)
    assert sorted(boxes) == [1, 2]  # the table (unknown class) is dropped
    assert boxes[2].lo.tolist() == [2.0, 0.0] and boxes[2].hi.tolist() == [4.0, 2.0]  # x_max 3 covers column 3
    assert boxes[2].occlusion == 0.25
    assert np.isnan(boxes[1].occlusion)  # -1: Replicator could not tell
    with pytest.raises(PayloadError, match="primPaths"):
        boxes_from_payload({"data": payload["data"], "info": {"primPaths": [MUG]}}, "bounding_box_2d_tight", scene)


def test_3d_boxes_transpose_the_row_vector_transform(scene):
    t = np.eye(4, dtype=np.float32)
    t[3, :3] = (100.0, 0.0, 0.0)  # RC docs: translation in the last row
    payload = box_rows([(1, -50, -50, -50, 50, 50, 50, t, 0.0)], [MUG], dtype=BOX3D_DTYPE)
    (box,) = boxes_from_payload(payload, "bounding_box_3d", scene).values()
    np.testing.assert_array_equal(box.transform[:3, 3], [100.0, 0.0, 0.0])
    assert box.lo.tolist() == [-50.0] * 3 and box.hi.tolist() == [50.0] * 3  # no +1 for 3D bounds


# ---------------------------------------------------------------------------------------------------- a frame


def frame_payloads() -> dict:
    data = np.array([[0, 0, 5, 5, 6, 7],
                     [0, 1, 5, 6, 6, 7],
                     [1, 1, 9, 9, 12, 7],
                     [0, 0, 0, 0, 0, 0]], np.uint32)
    labels = {0: "BACKGROUND", 1: "UNLABELLED", 5: f"{MUG}/geom/a", 6: f"{MUG}/geom/b", 7: BOX, 9: TABLE}
    return {
        "camera_params": camera_payload(),
        "instance_segmentation": {"data": data, "info": {"idToLabels": labels, "idToSemantics": {}}},
        # mug: loose box runs 2 px off the left edge (truncated); box: 1 px wider than its pixels, occlusion 1/4
        "bounding_box_2d_loose": box_rows([(1, -2, 0, 4, 1, 0.5), (2, 5, 0, 5, 2, 0.25)], [MUG, BOX]),
        "bounding_box_2d_tight": box_rows([(1, 2, 0, 4, 1, 0.5)], [MUG]),  # the box's tight entry is missing
    }


def test_a_frame_from_payloads_fills_every_label(scene):
    frame = frame_from_payloads(frame_payloads(), scene, CLASSES, ["instance_segmentation"], 7, "/World/Camera")
    assert frame.index == 7 and frame.camera.prim_path == "/World/Camera"
    assert frame.rgb is None and frame.depth is None and frame.instance_segmentation is not None
    bowl, box, mug = frame.objects
    assert [o.instance_id for o in frame.objects] == [1, 2, 3]
    assert (mug.class_name, mug.class_id, box.class_id, box.is_target) == ("mug", 1, 2, True)
    assert (mug.pixel_count, mug.unoccluded_pixel_count, mug.visible_fraction) == (6, 12, 0.5)
    assert mug.bbox_2d_tight == (2.0, 0.0, 5.0, 2.0)
    assert mug.bbox_2d_loose == (0.0, 0.0, 5.0, 2.0)
    assert mug.truncation == pytest.approx(1 - 5 / 7)
    assert box.bbox_2d_tight == (5.0, 0.0, 6.0, 3.0)  # from the instance mask: the payload had no entry
    assert (box.pixel_count, box.unoccluded_pixel_count) == (3, 4)
    assert frame.unlabeled_pixel_count == 6
    # the bowl is in no payload: out of view, its 3D box and pose come from the scene
    assert (bowl.pixel_count, bowl.bbox_2d_loose, bowl.bbox_2d_tight, bowl.truncation) == (0, None, None, 1.0)
    np.testing.assert_allclose(bowl.local_to_world, translate(5, 5, 0))
    # pose in the OpenCV camera frame: the camera is at z=3 looking down, the mug at z=0.8 -> 2.2 m ahead
    np.testing.assert_allclose(mug.pose_in_camera[:3, 3], [0.0, 0.0, 2.2], atol=1e-12)
    assert frame.extra == {"unknown_classes": ["table"]}
    labels = frame.labels_json()
    assert labels["target"]["prim_path"] == BOX


def test_a_fully_occluded_object_keeps_its_loose_box_and_has_no_pixels(scene):
    payloads = frame_payloads()
    payloads["bounding_box_2d_loose"] = box_rows([(1, 1, 1, 3, 2, 1.0), (2, 5, 0, 5, 2, 0.25)], [BOWL, BOX])
    bowl = frame_from_payloads(payloads, scene, CLASSES, [], 0).objects[0]
    assert (bowl.pixel_count, bowl.unoccluded_pixel_count, bowl.visible_fraction) == (0, 0, 0.0)
    assert bowl.bbox_2d_tight is None
    assert bowl.bbox_2d_loose == (1.0, 1.0, 4.0, 3.0) and bowl.truncation == 0.0


def test_unknown_occlusion_is_reported_not_guessed(scene):
    payloads = frame_payloads()
    payloads["bounding_box_2d_loose"] = box_rows([(2, 5, 0, 5, 2, -1.0)], [BOX])
    frame = frame_from_payloads(payloads, scene, CLASSES, [], 0)
    box = frame.objects[1]
    assert (box.pixel_count, box.unoccluded_pixel_count, box.visible_fraction) == (3, 3, 1.0)
    assert frame.extra["occlusion_unknown"] == [BOX]


def test_missing_payloads_and_wrong_shapes_are_named(scene):
    payloads = frame_payloads()
    with pytest.raises(PayloadError, match="rgb: payload missing"):
        frame_from_payloads(payloads, scene, CLASSES, ["rgb"], 0)
    del payloads["camera_params"]
    with pytest.raises(PayloadError, match="camera_params: payload missing"):
        frame_from_payloads(payloads, scene, CLASSES, [], 0)
    payloads = frame_payloads()
    payloads["camera_params"] = camera_payload(8, 4)  # the render product says 8x4, the images are 6x4
    with pytest.raises(PayloadError, match=r"instance_segmentation: expected shape \(4, 8\)"):
        frame_from_payloads(payloads, scene, CLASSES, [], 0)


def test_a_non_legacy_flat_payload_reads_the_same(scene):
    payloads = frame_payloads()
    legacy = payloads["instance_segmentation"]
    payloads["instance_segmentation"] = {"data": legacy["data"], **legacy["info"]}  # use_legacy_structure=False
    frame = frame_from_payloads(payloads, scene, CLASSES, ["instance_segmentation"], 0)
    assert frame.objects[2].pixel_count == 6
