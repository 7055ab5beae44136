"""Optical flow from ``motion_vectors``: a 2-frame sequence through Replicator, checked against the raster flow.

Per frame the backend steps three times (five with backward flow): frame t with ``rt_subframes``, then state t+1
and state t again with one subframe each; the last render's ``motion_vectors`` is the flow t -> t+1 (backend.py).
Under the stand-in the queued payloads are the raster frames' (flow turned into motion vectors by
``synthesize.motion_vectors_from_flow``), so the written flow must equal the raster flow wherever that is valid. In
Isaac Sim RTX renders: the flow must agree with the raster backend's within ``FLOW_TOLERANCE_PX`` (median) on the
pixels both call valid - the check that settles the units and direction docs/sequences.md leaves unconfirmed.
"""

from __future__ import annotations

import asyncio

import numpy as np
import omni.kit.app
import omni.kit.test
import omni.replicator.core as rep
import omni.usd
from sdgstudio.core.extension import raster_device
from sdgstudio.core.sampler import sample_frame_params
from sdgstudio.replicator.generate import generate_async

from .reference import STANDIN, LiveStageTestCase, read_dataset, small_config, standin_helpers

__all__ = ["TestFlowFromMotionVectors"]

FRAMES = range(2)
#: Real RTX vs the raster backend: median |difference| on pixels valid in both (anti-aliased edges excluded).
FLOW_TOLERANCE_PX = 0.5


def moving_config():
    config = small_config()
    config.annotators = ["rgb", "depth", "instance_segmentation", "optical_flow"]
    config.sequence.length = 3
    config.sequence.frame_rate = 10
    config.sequence.linear_velocity.min, config.sequence.linear_velocity.max = (-0.3, -0.3, 0.0), (0.3, 0.3, 0.0)
    config.sequence.orbit_rate.max, config.sequence.orbit_rate.min = 20.0, 10.0
    config.sequence.backward_flow = True
    return config


async def raster_reference(config) -> list:
    """The raster backend's frames of ``config`` (exact flow, both directions), off Kit's main thread."""
    from sdgstudio.core.raster import RasterBackend, RasterSettings
    from sdgstudio.core.session import RenderSession

    def render() -> list:
        session = RenderSession(config, RasterBackend(list(config.classes), RasterSettings(device=raster_device())))
        return [session.render(i)[1] for i in FRAMES]

    return await asyncio.get_running_loop().run_in_executor(None, render)


def queue_flow_payloads(config, frames: list) -> None:
    """Per frame: the frame's payloads, then (state t+1, t again) and (state t-1, t again); the renders of t
    carry the motion vectors of the raster flow (stand-in only)."""
    from sdgstudio.replicator.synthesize import motion_vectors_from_flow, payloads_from_frame

    queue = []
    for frame in frames:
        queue += [payloads_from_frame(frame, list(config.classes)),
                  {}, {"motion_vectors": motion_vectors_from_flow(frame.optical_flow)}]
        if frame.optical_flow_backward is not None:
            queue += [{}, {"motion_vectors": motion_vectors_from_flow(frame.optical_flow_backward)}]
    standin_helpers().queue_payloads(queue)


class TestFlowFromMotionVectors(LiveStageTestCase):
    async def test_flow_and_velocities_of_a_sequence_through_replicator(self):
        config = moving_config()
        reference = await raster_reference(config)
        if STANDIN:
            from contract_standin import recorder

            queue_flow_payloads(config, reference)
            recorder(rep).clear()
        out = self._tmp / "flow"
        summary = await generate_async(config, out, FRAMES)
        self.assertEqual(summary.frames_written, len(FRAMES))
        written = read_dataset(out)
        for w, raster in zip(written, reference, strict=True):
            self.assertIn("optical_flow", w["entry"]["files"])
            for layer, theirs in (("optical_flow", raster.optical_flow),
                                  ("optical_flow_backward", raster.optical_flow_backward)):
                ours = w[layer]
                self.assertEqual((ours.shape, ours.dtype), (theirs.shape, np.float32), layer)
                both = np.isfinite(ours).all(-1) & np.isfinite(theirs).all(-1)
                self.assertGreater(both.mean(), 0.5, f"{layer}: too few valid pixels")
                self.assertTrue(np.isnan(ours[~np.isfinite(raster.depth)]).all(), f"{layer} where nothing was hit")
                if STANDIN:
                    np.testing.assert_allclose(ours[both], theirs[both], atol=1e-4, err_msg=layer)
                else:
                    error = float(np.median(np.abs(ours[both] - theirs[both])))
                    self.assertLess(error, FLOW_TOLERANCE_PX, f"{layer}: median error {error:.3f} px vs raster")
            self.assertIsNotNone(w["labels"]["extra"]["optical_flow"]["mean_px"])
            motion = {o["prim_path"]: o["motion"] for o in w["labels"]["objects"] if "motion" in o}
            self.assertEqual(sorted(motion), sorted(o.prim_path for o in raster.objects))
            for o in raster.objects:
                np.testing.assert_allclose(motion[o.prim_path]["linear_velocity"], o.linear_velocity, atol=1e-6)
        # The stage is left in the last frame's state (t+1 and t-1 were posed only for the motion renders).
        stage = omni.usd.get_context().get_stage()
        last = sample_frame_params(config, config.seed, FRAMES[-1])
        for obj in (o for o in last.objects if o.visible):
            translate = stage.GetPrimAtPath(obj.prim_path).GetAttribute("xformOp:translate").Get()
            np.testing.assert_allclose(list(translate), list(obj.position), atol=1e-9)
        if STANDIN:
            steps = [c.kwargs["rt_subframes"] for c in recorder(rep).find("orchestrator.step_async")]
            self.assertEqual(steps, [config.output.rt_subframes, 1, 1, 1, 1] * len(FRAMES))
            self.assertEqual(standin_helpers().pending_payloads(), 0)

    async def test_the_synchronous_render_steps_the_same_states(self):
        """``render`` (under SimulationApp: ``python -m sdgstudio.replicator.run``) steps as ``render_async``."""
        if not STANDIN:
            self.skipTest("stand-in only: synchronous steps need SimulationApp")
        import builtins

        from contract_standin import recorder
        from sdgstudio.core.session import RenderSession
        from sdgstudio.replicator.backend import ReplicatorBackend

        config = moving_config()
        config.sequence.backward_flow = False
        reference = await raster_reference(config)
        queue_flow_payloads(config, reference[:1])
        recorder(rep).clear()
        before = getattr(builtins, "ISAAC_LAUNCHED_FROM_TERMINAL", None)
        builtins.ISAAC_LAUNCHED_FROM_TERMINAL = False  # as SimulationApp sets it: synchronous steps allowed
        backend = ReplicatorBackend.for_config(config)
        try:
            _params, frame = RenderSession(config, backend).render(0)
        finally:
            backend.close()
            if before is None:
                del builtins.ISAAC_LAUNCHED_FROM_TERMINAL
            else:
                builtins.ISAAC_LAUNCHED_FROM_TERMINAL = before
        valid = np.isfinite(reference[0].optical_flow).all(-1)
        np.testing.assert_allclose(frame.optical_flow[valid], reference[0].optical_flow[valid], atol=1e-4)
        self.assertIsNone(frame.optical_flow_backward)
        steps = [c.kwargs["rt_subframes"] for c in recorder(rep).find("orchestrator.step")]
        self.assertEqual(steps, [config.output.rt_subframes, 1, 1])
        self.assertEqual(standin_helpers().pending_payloads(), 0)
