"""A 3-frame generate through Replicator: every call it makes (stand-in) and the dataset it writes (both worlds)."""

from __future__ import annotations

import omni.kit.app
import omni.kit.test
import omni.replicator.core as rep
import omni.usd
from sdgstudio.replicator.generate import generate_async

from .reference import (
    RESOLUTION,
    STANDIN,
    LiveStageTestCase,
    check_against_raster,
    check_consistent,
    queue_reference_payloads,
    raster_frames,
    read_dataset,
    small_config,
    standin_helpers,
)

__all__ = ["TestGenerateWithReplicator"]

FRAMES = range(3)
#: The Replicator annotators the tabletop scene's annotators need, in attach order: the label core, then the layers
#: of its annotators sorted by our name (bounding boxes, depth, normals, pose_6d -> bounding_box_3d, rgb, semantic).
ANNOTATORS = ["camera_params", "instance_segmentation", "bounding_box_2d_loose", "bounding_box_2d_tight",
              "bounding_box_3d", "distance_to_image_plane", "normals", "rgb", "semantic_segmentation"]
CLASS_ONLY = {"semanticTypes": ["class"]}


def expected_calls(frames: int) -> list[tuple]:
    """(name, args, kwargs) of every Replicator call a generate of ``frames`` frames makes, in order."""
    calls = [("orchestrator.set_capture_on_play", (False,), {}),
             ("create.render_product", ("/World/Camera", RESOLUTION), {"force_new": True, "name": "SDGStudio"})]
    init = {"instance_segmentation": {**CLASS_ONLY, "colorize": False},
            "semantic_segmentation": {**CLASS_ONLY, "colorize": False}, "bounding_box_2d_loose": CLASS_ONLY,
            "bounding_box_2d_tight": CLASS_ONLY, "bounding_box_3d": CLASS_ONLY}
    for name in ANNOTATORS:
        calls.append(("AnnotatorRegistry.get_annotator", (name,),
                      {"init_params": init.get(name), "do_array_copy": True}))
        calls.append(("Annotator.attach", ("<render product>",), {}))
    for _ in range(frames):
        calls.append(("orchestrator.step_async", (), {"rt_subframes": 4, "delta_time": 0.0}))
        calls += [("Annotator.get_data", (), {"do_array_copy": True})] * len(ANNOTATORS)
    calls.append(("orchestrator.wait_until_complete_async", (), {}))
    calls += [("Annotator.detach", (), {})] * len(ANNOTATORS)
    calls += [("RenderProduct.destroy", (), {}), ("orchestrator.set_capture_on_play", (False,), {})]
    return calls


def recorded_calls(recorder, render_product) -> list[tuple]:
    out = []
    for call in recorder.calls:
        args = tuple("<render product>" if a == render_product else a for a in call.args)
        out.append((call.name, args, dict(call.kwargs)))
    return out


class TestGenerateWithReplicator(LiveStageTestCase):
    async def test_three_frames_on_the_live_stage(self):
        config = small_config()
        reference = await raster_frames(config, FRAMES)
        if STANDIN:
            from contract_standin import recorder

            queue_reference_payloads(config, reference)
            recorder(rep).clear()
        out = self._tmp / "dataset"
        seen = []
        summary = await generate_async(config, out, FRAMES, on_frame=lambda i, _f: seen.append(i))

        self.assertEqual((summary.frames_written, seen), (len(FRAMES), list(FRAMES)))
        stage = omni.usd.get_context().get_stage()
        self.assertTrue(stage.GetPrimAtPath("/World/Camera"), "the scene was not built on the live stage")
        written = read_dataset(out)
        self.assertEqual([w["entry"]["frame"] for w in written], list(FRAMES))
        for w, raster in zip(written, reference, strict=True):
            self.assertEqual(sorted(w["entry"]["files"]), sorted(["labels", *[
                a for a in config.annotators if a in ("rgb", "depth", "instance_segmentation",
                                                      "semantic_segmentation", "normals")]]))
            check_consistent(self, w, config)
            check_against_raster(self, w, raster, exact=STANDIN)
        if STANDIN:
            (product,) = [c.result for c in recorder(rep).find("create.render_product")]
            self.assertEqual(recorded_calls(recorder(rep), product), expected_calls(len(FRAMES)))
            self.assertEqual(standin_helpers().pending_payloads(), 0)

    async def test_a_second_run_reuses_nothing_and_refuses_a_used_folder(self):
        config = small_config()
        config.annotators = ["rgb"]
        reference = await raster_frames(config, range(1))
        if STANDIN:
            queue_reference_payloads(config, reference)
        out = self._tmp / "rgb_only"
        summary = await generate_async(config, out, range(1))
        self.assertEqual(summary.frames_written, 1)
        self.assertEqual(sorted(read_dataset(out)[0]["entry"]["files"]), ["labels", "rgb"])
        from sdgstudio.core.session import RunError

        with self.assertRaises(RunError):
            await generate_async(config, out, range(1))
