"""The grasping case study: wrist camera on a randomized gripper, a library of targets, a depth-sensor model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pxr import Gf, Usd, UsdGeom
from sdgstudio.core.config import config_from_dict, load_config
from sdgstudio.core.frame import USD_TO_OPENCV, CameraData
from sdgstudio.core.generate import generate
from sdgstudio.core.sampler import sample_frame_params
from sdgstudio.core.sensors import simulate_depth_sensor
from sdgstudio.core.session import RenderSession, make_backend

from tests.conftest import SCENES

FRAMES = 6


@pytest.fixture(scope="module")
def grasping():
    config = load_config(SCENES / "grasping.toml")
    config.camera.resolution = (200, 150)
    return config


@pytest.fixture(scope="module")
def rendered(grasping):
    session = RenderSession(grasping, make_backend("raster", grasping))
    return session, [session.render(i) for i in range(FRAMES)]


def _mount_pose(stage: Usd.Stage, grasping, params) -> np.ndarray:
    """Mount prim's world pose (from the sampled gripper pose, through USD) composed with the configured offset."""
    mount = np.array(UsdGeom.Xformable(stage.GetPrimAtPath(grasping.camera.mount))
                     .ComputeLocalToWorldTransform(Usd.TimeCode.Default())).T
    gripper = next(p for p in params.props if p.prim_path.endswith("gripper"))
    gripper_xform = UsdGeom.Xformable(stage.GetPrimAtPath(gripper.prim_path))
    assert np.allclose(gripper_xform.GetPrim().GetAttribute("xformOp:translate").Get(), gripper.position)
    rx, ry, rz = grasping.camera.mount_rotation
    offset = Gf.Matrix4d().SetRotate(Gf.Rotation(Gf.Vec3d(1, 0, 0), rx) * Gf.Rotation(Gf.Vec3d(0, 1, 0), ry)
                                     * Gf.Rotation(Gf.Vec3d(0, 0, 1), rz))
    offset.SetTranslateOnly(Gf.Vec3d(*grasping.camera.mount_offset))
    return mount @ np.array(offset).T @ USD_TO_OPENCV


def test_camera_pose_follows_the_randomized_mount(grasping):
    session = RenderSession(grasping, make_backend("raster", grasping))
    poses = []
    for i in range(FRAMES):
        params, frame = session.render(i)
        expected = _mount_pose(session.stage, grasping, params)
        assert np.allclose(frame.camera.camera_to_world, expected, atol=1e-6)
        poses.append(frame.camera.camera_to_world[:3, 3])
    assert np.ptp(np.array(poses), axis=0).max() > 0.02, "the gripper (and camera) should move between frames"


def test_target_pose_reprojects_onto_its_mask(rendered):
    session, _ = rendered
    frames = [session.render(i) for i in range(3 * FRAMES)]
    seen = 0
    for _, frame in frames:
        target = frame.target
        assert target is not None and frame.labels_json()["target"]["prim_path"] == target.prim_path
        if target.pixel_count < 30 or target.truncation > 0 or target.visible_fraction < 0.5:
            continue  # a cut-off or mostly hidden target's visible centroid is not its centre
        seen += 1
        mask = frame.instance_segmentation == target.instance_id
        rows, cols = np.nonzero(mask)
        # The object's local bounding-box centre, posed into the camera and projected with K.
        lo, hi = (np.array(v) for v in target.bbox_3d_extents)
        centre_obj = (lo + hi) / 2 * np.array(target.scale)
        p = target.pose_in_camera[:3, :3] @ centre_obj + target.pose_in_camera[:3, 3]
        u, v, w = frame.camera.K @ p
        u, v = u / w, v / w
        x0, y0, x1, y1 = target.bbox_2d_loose
        assert x0 <= u <= x1 and y0 <= v <= y1
        # Within the spread of the visible mask around its centroid.
        assert abs(u - cols.mean()) <= 2 * cols.std() + 2 and abs(v - rows.mean()) <= 2 * rows.std() + 2
    assert seen >= 3


def test_library_picks_k_of_n_distinct_files_with_their_classes(grasping):
    household = next(a for a in grasping.assets if a.name == "household")
    items = {f"/World/Objects/{i.name}": i.semantic_class for i in household.items()}
    assert len(items) >= 8 and len(set(items.values())) >= 5
    used = set()
    for frame in range(200):
        params = sample_frame_params(grasping, 0, frame)
        shown = [o.prim_path for o in params.objects if o.asset == "household" and o.visible]
        hidden_by_space = sum("household" in w for w in params.warnings)
        assert household.count.min <= len(shown) + hidden_by_space <= household.count.max
        assert len(set(shown)) == len(shown)
        used |= set(shown)
        targets = [o for o in params.objects if o.is_target]
        assert len(targets) == (1 if shown else 0) and (not targets or targets[0].asset == "household")
    assert used == set(items), "every library file is picked at some point"


def test_library_weights_bias_the_choice(tmp_path):
    assets = tmp_path / "lib"
    assets.mkdir()
    source = SCENES.parent / "assets" / "household"
    library = [{"file": str(source / "mug_short.usda"), "class": "mug", "weight": 9.0},
               {"file": str(source / "can_soda.usda"), "class": "can", "weight": 1.0}]
    config = config_from_dict({"assets": [{"name": "lib", "library": library, "count": 1}]})
    picks = [next(o.prim_path for o in sample_frame_params(config, 0, f).objects if o.visible) for f in range(2000)]
    share = np.mean([p.endswith("mug_short") for p in picks])
    assert 0.85 < share < 0.95


def test_depth_sensor_model(rendered, grasping):
    _, frames = rendered
    _, frame = frames[0]
    clean = frame.depth.copy()
    sensed = frame.depth_sensor
    assert sensed.dtype == np.float32 and sensed.shape == clean.shape
    assert np.array_equal(frame.depth, clean)
    valid = sensed > 0
    assert valid.mean() > 0.5
    err = sensed[valid] - clean[valid]
    sigma = grasping.depth_sensor.noise_coefficient * clean[valid] ** 2
    assert np.abs(err).max() <= 6 * sigma.max() + grasping.depth_sensor.quantization
    q = grasping.depth_sensor.quantization
    assert np.allclose(sensed[valid] / q, np.round(sensed[valid] / q), atol=1e-3)


def test_depth_sensor_drops_grazing_and_out_of_range_readings():
    h, w = 40, 60
    camera = CameraData(w, h, np.array([[50.0, 0, 30], [0, 50.0, 20], [0, 0, 1]]), np.eye(4))
    depth = np.full((h, w), 2.0, np.float32)
    depth[:, :10] = np.inf
    depth[:, 10:20] = 0.05
    normals = np.zeros((h, w, 3), np.float32)
    normals[..., 2] = -1.0  # facing the camera (OpenCV camera = world here, looking down +Z)
    normals[:, 40:50] = [1.0, 0.0, 0.0]  # seen at 72-79 degrees incidence
    cfg = config_from_dict({"assets": [{"name": "a", "source": "cube", "class": "a"}],
                            "depth_sensor": {"enabled": True, "min_range": 0.1, "max_range": 5.0,
                                             "dropout_angle": 60.0, "noise_coefficient": 0.01}}).depth_sensor
    out = simulate_depth_sensor(depth, normals, camera, cfg, seed=0, frame_index=0)
    assert np.all(out[:, :20] == 0) and np.all(out[:, 40:50] == 0)
    assert np.all(out[:, 20:40] > 0) and np.all(out[:, 50:] > 0)
    assert np.array_equal(out, simulate_depth_sensor(depth, normals, camera, cfg, seed=0, frame_index=0))
    assert not np.array_equal(out, simulate_depth_sensor(depth, normals, camera, cfg, seed=0, frame_index=1))
    noise = out[:, 20:40] - 2.0
    assert abs(noise.std() - 0.01 * 4.0) < 0.01


def test_sensor_parameters_are_in_the_manifest(grasping, tmp_path):
    generate(grasping, tmp_path / "ds", range(1))
    entry = json.loads((tmp_path / "ds" / "manifest.jsonl").read_text().splitlines()[0])
    assert entry["depth_sensor"]["noise_coefficient"] == grasping.depth_sensor.noise_coefficient
    assert entry["files"]["depth_sensor"].startswith("depth_sensor_")
    assert "target" in json.loads((tmp_path / "ds" / "labels_000000.json").read_text())


def test_mount_on_a_missing_prim_is_a_config_error(grasping):
    from sdgstudio.core.config import ConfigError

    broken = grasping.model_copy(deep=True)
    broken.camera.mount = "/World/Props/nope"
    with pytest.raises(ConfigError, match="camera.mount"):
        RenderSession(broken, make_backend("raster", broken))
