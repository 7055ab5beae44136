"""Replicator ``motion_vectors`` -> our optical flow (+u right, +v down, pixels, t -> t+1, NaN where invalid).

The payload is built to the documented format (RC annotator docstring, API_FACTS.md A2): (H, W, 4) float32, x
positive for movement to the left and y for movement to the top between the previous render and this one, z and w
unused. The backend renders state t+1 before state t, so that movement is t+1 -> t and the flow t -> t+1 is
(x, y). A round trip through ``synthesize.motion_vectors_from_flow`` checks it against the raster backend's exact
flow, and a backend that supplies flow itself is driven through ``RenderSession`` as the Replicator backend is.
"""

from __future__ import annotations

import numpy as np
import pytest
from sdgstudio.core.flow import optical_flow
from sdgstudio.core.sampler import camera_path
from sdgstudio.core.session import MotionStates, RenderSession, make_backend
from sdgstudio.replicator.normalize import (
    MOTION_VECTOR_UNITS,
    PayloadError,
    flow_from_motion_vectors,
    frame_from_payloads,
)
from sdgstudio.replicator.scene import read_scene
from sdgstudio.replicator.synthesize import motion_vectors_from_flow, payloads_from_frame

H, W = 6, 10


def payload(x: float, y: float) -> np.ndarray:
    mv = np.zeros((H, W, 4), np.float32)
    mv[..., 0], mv[..., 1] = x, y
    mv[..., 2:] = 1.0  # "unused": the docstring's example prints values in z and w too
    return mv


def test_movement_left_and_up_from_the_next_state_is_flow_right_and_down():
    # Between t and t+1 the point moves 2 px right and 1 px down. Rendered t+1 first, then t: from the previous
    # render (t+1) to this one (t) it moved 2 px left (x = +2) and 1 px up (y = +1).
    flow = flow_from_motion_vectors(payload(2.0, 1.0), H, W)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    assert flow[2, 3].tolist() == [2.0, 1.0]


def test_rendered_in_time_order_the_same_vectors_are_the_backward_flow():
    # Rendered t-1 then t: the point moved 2 px right and 1 px down since t-1 (x = -2, y = -1); the flow from t
    # back to t-1 points left and up.
    flow = flow_from_motion_vectors(payload(-2.0, -1.0), H, W)
    assert flow[2, 3].tolist() == [-2.0, -1.0]


@pytest.mark.parametrize(("units", "x", "y", "expected"), [
    ("pixels", 2.0, -1.0, [2.0, -1.0]),
    ("normalized", 0.2, -1 / 6, [2.0, -1.0]),  # fractions of W = 10 and H = 6
    ("ndc", 0.4, -1 / 3, [2.0, -1.0]),  # [-1, 1] spans the image: half-size scale
])
def test_units_scale_to_pixels(units, x, y, expected):
    flow = flow_from_motion_vectors(payload(x, y), H, W, units=units)
    np.testing.assert_allclose(flow[3, 5], expected, rtol=1e-6)


def test_unknown_units_and_bad_shapes_are_named():
    with pytest.raises(PayloadError, match="units 'meters'"):
        flow_from_motion_vectors(payload(0, 0), H, W, units="meters")
    with pytest.raises(PayloadError, match="motion_vectors: expected shape"):
        flow_from_motion_vectors(np.zeros((H, W + 1, 4), np.float32), H, W)
    with pytest.raises(PayloadError, match="hit mask"):
        flow_from_motion_vectors(payload(0, 0), H, W, hit=np.ones((W, H), bool))


def test_invalid_where_nothing_was_hit_the_vector_is_not_finite_or_the_point_leaves_the_image():
    mv = payload(0.0, 0.0)
    mv[0, 0, 0] = -0.4  # pixel centre 0.5 -> 0.1: inside
    mv[0, 1, 0] = -1.6  # 1.5 -> -0.1: left of the image
    mv[0, W - 1, 0] = 0.6  # 9.5 -> 10.1: right of it
    mv[H - 1, 2, 1] = 0.6  # 5.5 -> 6.1: below it
    mv[1, 1, 0] = np.nan
    mv[1, 2, 1] = np.inf
    hit = np.ones((H, W), bool)
    hit[3, 4] = False
    flow = flow_from_motion_vectors(mv, H, W, hit=hit)
    invalid = ~np.all(np.isfinite(flow), axis=-1)
    assert sorted(zip(*np.nonzero(invalid), strict=True)) == [(0, 1), (0, W - 1), (1, 1), (1, 2), (3, 4), (H - 1, 2)]
    assert np.isnan(flow[invalid]).all()  # NaN in both components, never inf
    assert flow[0, 0].tolist() == pytest.approx([-0.4, 0.0])


@pytest.mark.parametrize("units", sorted(MOTION_VECTOR_UNITS))
def test_synthesized_motion_vectors_normalize_back(units):
    rng = np.random.default_rng(3)
    flow = rng.uniform(-2, 2, (H, W, 2)).astype(np.float32)
    flow[2:4, 3:6] = np.nan
    mv = motion_vectors_from_flow(flow, units)
    assert mv.shape == (H, W, 4) and mv.dtype == np.float32 and not mv[..., 2:].any()
    back = flow_from_motion_vectors(mv, H, W, units=units)
    inside = np.isfinite(flow).all(-1) & np.isfinite(back).all(-1)
    np.testing.assert_allclose(back[inside], flow[inside], atol=1e-5)
    np.testing.assert_array_equal(back[2:4, 3:6], 0.0)  # a hit pixel without valid flow: Replicator's vector


# --------------------------------------------------------------------------------------------- vs the raster flow


@pytest.fixture(scope="module")
def moving(tabletop):
    config = tabletop.model_copy(deep=True)
    config.camera.resolution = (96, 72)
    config.annotators = [*config.annotators, "optical_flow"]
    config.sequence.length = 4
    config.sequence.frame_rate = 10
    config.sequence.linear_velocity.min, config.sequence.linear_velocity.max = (-0.3, -0.3, 0.0), (0.3, 0.3, 0.0)
    config.sequence.angular_velocity.min, config.sequence.angular_velocity.max = (0.0, 0.0, -60.0), (0.0, 0.0, 60.0)
    config.sequence.orbit_rate.max, config.sequence.orbit_rate.min = 20.0, 10.0
    config.sequence.backward_flow = True
    return config


@pytest.fixture(scope="module")
def raster_run(moving):
    session = RenderSession(moving, make_backend("raster", moving))
    return session, [session.render(k)[1] for k in range(3)]


@pytest.mark.parametrize("units", ["pixels", "normalized"])
def test_raster_flow_survives_the_trip_through_motion_vectors(moving, raster_run, units):
    session, frames = raster_run
    classes = list(moving.classes)
    for k, raster in enumerate(frames):
        session.apply(k)
        payloads = payloads_from_frame(raster, classes)
        payloads["motion_vectors"] = motion_vectors_from_flow(raster.optical_flow, units)
        back = frame_from_payloads(payloads, read_scene(session.stage, classes), classes, moving.annotators, k,
                                   camera_path(moving), motion_vector_units=units,
                                   backward_motion_vectors=motion_vectors_from_flow(raster.optical_flow_backward,
                                                                                    units))
        for ours, theirs in ((back.optical_flow, raster.optical_flow),
                             (back.optical_flow_backward, raster.optical_flow_backward)):
            valid = np.isfinite(theirs).all(-1)
            assert valid.mean() > 0.5
            np.testing.assert_allclose(ours[valid], theirs[valid], atol=1e-4)
            hit = np.isfinite(raster.depth)
            assert np.isnan(ours[~hit]).all(), "flow where nothing was hit"
            # Where the raster flow is invalid but something was hit (occluded at t+1, or leaving the image),
            # Replicator has a vector of its own (synthesized as 0): it stays valid, occlusion is not detected.
            assert (hit & ~valid).any()
            np.testing.assert_array_equal(ours[hit & ~valid], 0.0)
        assert np.abs(raster.optical_flow[np.isfinite(raster.optical_flow)]).max() > 1.0, "no motion to check"


class FlowSupplyingRaster:
    """The raster backend behind the Replicator backend's flow protocol: ``render(..., motion=)`` renders t,
    then t+1 (and t-1), poses t again and turns the exact flow into motion vectors and back, as RTX would hand
    them over. Counts its renders, so nothing else renders neighbouring states."""

    supplies_flow = True
    name = "flow-supplying raster"

    def __init__(self, config) -> None:
        self.inner = make_backend("raster", config)
        self.renders = 0
        self.motions: list[MotionStates] = []

    def render(self, stage, camera, resolution, annotators, frame_index, motion=None):
        assert "optical_flow" in annotators and motion is not None
        self.motions.append(motion)
        frame = self._render(stage, camera, resolution, annotators - {"optical_flow"}, frame_index)
        hit = np.isfinite(frame.depth)
        for pose, field in ((motion.pose_next, "optical_flow"), (motion.pose_previous, "optical_flow_backward")):
            if field == "optical_flow_backward" and motion.previous is None:
                continue
            pose()
            other = self._render(stage, camera, resolution, {"depth", "instance_segmentation"}, frame_index)
            motion.pose_current()
            vectors = motion_vectors_from_flow(optical_flow(frame, other))
            setattr(frame, field, flow_from_motion_vectors(vectors, *hit.shape, hit=hit))
        return frame

    def _render(self, *args):
        self.renders += 1
        return self.inner.render(*args)


def test_a_backend_that_supplies_flow_is_not_rendered_twice_and_gets_the_raster_velocities(moving, raster_run):
    _, raster_frames = raster_run
    backend = FlowSupplyingRaster(moving)
    session = RenderSession(moving, backend)
    assert session.backend_flow and "optical_flow" in session.render_annotators
    for k, raster in enumerate(raster_frames):
        renders = backend.renders
        params, frame = session.render(k)
        assert backend.renders - renders == 3  # t, t+1, t-1: RenderSession rendered nothing more
        motion = backend.motions[-1]
        assert (motion.current.frame, motion.next.frame, motion.previous.frame) == (k, k + 1, k - 1)
        for ours, theirs in ((frame.optical_flow, raster.optical_flow),
                             (frame.optical_flow_backward, raster.optical_flow_backward)):
            valid = np.isfinite(theirs).all(-1)
            np.testing.assert_allclose(ours[valid], theirs[valid], atol=1e-4)
        assert frame.extra["optical_flow"]["mean_px"] == pytest.approx(raster.extra["optical_flow"]["mean_px"],
                                                                       abs=0.05)
        # Velocities come from the stage posed at t+1 (no render): the raster path's, from its rendered t+1.
        assert [o.prim_path for o in frame.objects] == [o.prim_path for o in raster.objects]
        assert any(np.abs(o.linear_velocity).max() > 0.05 for o in raster.objects if o.linear_velocity)
        for ours, theirs in zip(frame.objects, raster.objects, strict=True):
            np.testing.assert_allclose(ours.linear_velocity, theirs.linear_velocity, atol=1e-9)
            np.testing.assert_allclose(ours.angular_velocity, theirs.angular_velocity, atol=1e-9)
        # The stage is back in frame k's state: rendering it again gives frame k's image.
        again = backend.inner.render(session.stage, session.camera_path, tuple(moving.camera.resolution),
                                     {"rgb"}, k)
        np.testing.assert_array_equal(again.rgb, raster.rgb)
        assert params.frame == k


def test_backends_without_flow_keep_the_render_the_next_state_path(moving):
    session = RenderSession(moving, make_backend("raster", moving))
    assert not session.backend_flow and "optical_flow" not in session.render_annotators
    assert session.motion_kwargs(session.apply(0)) == {}
