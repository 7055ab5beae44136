"""Sequences: objects and camera move between frames; exact optical flow and object velocities."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sdgstudio.core.config import config_from_dict, load_config
from sdgstudio.core.generate import generate
from sdgstudio.core.sampler import sample_frame_params
from sdgstudio.core.session import RenderSession, make_backend

RATE = 10.0  # frames/s


def _session(config):
    return RenderSession(config, make_backend("raster", config))


def _cube_config(velocity=(0.0, 0.0, 0.0), orbit_rate=0.0, props=()):
    """One cube on an invisible floor, a camera at -Y looking +Y horizontally (image x = world +X)."""
    return config_from_dict({
        "annotators": ["rgb", "depth", "instance_segmentation", "optical_flow"],
        "props": list(props),
        "assets": [{"name": "cube", "source": "cube", "class": "cube", "size": 0.2, "color": [0.8, 0.2, 0.2]}],
        "pose": {"region": {"min": [0, 0, 0.5], "max": [0, 0, 0.5]}, "rotation": {"yaw": 0}},
        "camera": {"resolution": [160, 120], "focal_length": 20, "target": [0, 0, 0.6], "distance": 1.5,
                   "azimuth": 270, "elevation": 0, "look_at_jitter": 0},
        "sequence": {"length": 4, "frame_rate": RATE, "orbit_rate": orbit_rate,
                     "linear_velocity": {"min": list(velocity), "max": list(velocity)}},
    })


def test_translated_cube_flow_equals_the_analytic_displacement():
    config = _cube_config(velocity=(0.4, 0.0, 0.0))  # 4 cm per frame along image x
    _, frame = _session(config).render(1)
    mask = frame.instance_segmentation == 1
    front = mask & (np.abs(frame.depth - frame.depth[mask].min()) < 1e-4)  # the face parallel to the image
    assert front.sum() > 200
    z = float(frame.depth[front].mean())
    expected_u = frame.camera.K[0, 0] * 0.04 / z
    flow = frame.optical_flow[front]
    finite = np.all(np.isfinite(flow), axis=1)
    assert finite.mean() > 0.95  # edge pixels whose point lands beside the cube's edge at t+1 are invalid
    flow = flow[finite]
    assert np.abs(flow[:, 0] - expected_u).max() < 0.1
    assert np.abs(flow[:, 1]).max() < 0.1
    cube = frame.objects[0]
    v_cam = np.array(cube.linear_velocity)
    assert np.allclose(v_cam, [0.4, 0.0, 0.0], atol=1e-6)  # world +X is the camera's +X here
    assert np.allclose(cube.angular_velocity, 0.0, atol=1e-9)


def test_background_flow_from_a_known_camera_orbit():
    wall = {"name": "wall", "position": [0.0, 1.0, 0.6], "size": [6.0, 0.02, 4.0]}
    config = _cube_config(orbit_rate=30.0, props=[wall])  # 3 degrees of azimuth per frame
    session = _session(config)
    params, frame = session.render(0)
    later = sample_frame_params(config, config.seed, 1)
    # The wall's front plane y = 0.99 seen from both analytic camera poses.
    ids, depth, cam = frame.instance_segmentation, frame.depth, frame.camera
    v, u = np.mgrid[0:cam.height, 0:cam.width]
    pick = (ids == 0) & np.isfinite(depth)
    rays = np.stack([u + 0.5, v + 0.5, np.ones(u.shape)], -1)[pick] @ np.linalg.inv(cam.K).T
    rays_world = rays @ cam.camera_to_world[:3, :3].T
    origin = np.asarray(params.camera.position)
    t = (0.99 - origin[1]) / rays_world[:, 1]
    points = origin + rays_world * t[:, None]
    from sdgstudio.core.assets import look_at
    from sdgstudio.core.frame import USD_TO_OPENCV

    cam1 = look_at(np.asarray(later.camera.position), np.asarray(later.camera.look_at)) @ USD_TO_OPENCV
    p1 = (points - cam1[:3, 3]) @ cam1[:3, :3]
    uv1 = p1 @ cam.K.T
    expected = uv1[:, :2] / uv1[:, 2:] - np.stack([u[pick] + 0.5, v[pick] + 0.5], -1)
    flow = frame.optical_flow[pick]
    valid = np.all(np.isfinite(flow), axis=1)
    assert valid.mean() > 0.9
    assert np.abs(flow[valid] - expected[valid]).max() < 0.1
    assert np.abs(expected).max() > 3, "the orbit must move the background by several pixels"


@pytest.fixture(scope="module")
def moving_tabletop(tabletop_path):
    config = load_config(tabletop_path)
    config.camera.resolution = (160, 120)
    config.annotators = [*config.annotators, "optical_flow"]
    config.sequence.length = 5
    config.sequence.frame_rate = 10
    config.sequence.linear_velocity.min, config.sequence.linear_velocity.max = (-0.2, -0.2, 0.0), (0.2, 0.2, 0.0)
    config.sequence.angular_velocity.min, config.sequence.angular_velocity.max = (0.0, 0.0, -90.0), (0.0, 0.0, 90.0)
    config.sequence.orbit_rate.min, config.sequence.orbit_rate.max = -20.0, 20.0
    config.sequence.backward_flow = True
    return config


def test_warping_by_forward_flow_reproduces_instance_ids(moving_tabletop):
    session = _session(moving_tabletop)
    checked = 0
    for k in range(3):
        _, frame = session.render(k)
        _, nxt = session.render(k + 1)
        flow = frame.optical_flow
        valid = np.all(np.isfinite(flow), axis=-1)
        v, u = np.nonzero(valid)
        u1 = np.floor(u + 0.5 + flow[v, u, 0]).astype(int)
        v1 = np.floor(v + 0.5 + flow[v, u, 1]).astype(int)
        to_next = {o.instance_id: n.instance_id for o in frame.objects for n in nxt.objects if n.prim_path == o.prim_path}
        to_next[0] = 0
        lut = np.full(int(frame.instance_segmentation.max()) + 1, -1)
        for old, new in to_next.items():
            lut[old] = new
        expected = lut[frame.instance_segmentation[v, u]]
        agree = (nxt.instance_segmentation[v1, u1] == expected).mean()
        assert agree >= 0.99, agree
        assert valid.mean() > 0.5
        assert frame.optical_flow_backward is not None
        checked += 1
    assert checked == 3


def test_frame_of_a_sequence_rendered_alone_equals_the_full_run(moving_tabletop, tmp_path):
    def digests(folder, frame):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(f"*_{frame:06d}.*"))}

    generate(moving_tabletop, tmp_path / "full", range(7))
    generate(moving_tabletop, tmp_path / "alone", [6])
    assert digests(tmp_path / "alone", 6) == digests(tmp_path / "full", 6)
    assert any(name.startswith("flow_backward_") for name in digests(tmp_path / "full", 6))
    # Within a sequence the scene is the same and things move: frames 5 and 6 share their objects.
    a, b = (sample_frame_params(moving_tabletop, moving_tabletop.seed, f) for f in (5, 6))
    assert [o.visible for o in a.objects] == [o.visible for o in b.objects]
    assert a.objects[0].position != b.objects[0].position or not a.objects[0].visible


def test_sequence_motion_is_sampled_once_per_sequence(moving_tabletop):
    p0, p1, p5 = (sample_frame_params(moving_tabletop, 3, f) for f in (0, 1, 5))
    assert p0.sequence["index"] == p1.sequence["index"] == 0 and p5.sequence["index"] == 1
    assert [o.linear_velocity for o in p0.objects] == [o.linear_velocity for o in p1.objects]
    assert [o.linear_velocity for o in p0.objects] != [o.linear_velocity for o in p5.objects]
    moved = next(o for o in p0.objects if o.visible)
    same = next(o for o in p1.objects if o.prim_path == moved.prim_path)
    step = np.asarray(same.position) - np.asarray(moved.position)
    assert np.allclose(step, np.asarray(moved.linear_velocity) / 10.0)


def test_report_shows_flow_statistics_recomputed_from_the_flow_files(moving_tabletop, tmp_path):
    import json

    from sdgstudio.core.report import build_report
    from sdgstudio.core.writer import read_layer

    out = tmp_path / "flowset"
    generate(moving_tabletop, out, range(3))
    report = json.loads((build_report(out).with_name("report.json")).read_text())
    flow_stats = report["optical_flow"]
    assert flow_stats["frames"] == 3
    means = []
    for frame in range(3):
        flow = read_layer(out / f"flow_{frame:06d}.tif")
        valid = np.all(np.isfinite(flow), axis=-1)
        means.append(float(np.hypot(flow[..., 0], flow[..., 1])[valid].mean()))
    assert flow_stats["mean_px"]["max"] == pytest.approx(max(means), abs=1e-3)
    assert flow_stats["mean_px"]["min"] == pytest.approx(min(means), abs=1e-3)
    assert sum(flow_stats["mean_px"]["counts"]) == 3
