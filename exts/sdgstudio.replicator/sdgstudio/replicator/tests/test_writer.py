"""SDGStudioWriter driven as Replicator scripts and the Synthetic Data Recorder drive a custom writer."""

from __future__ import annotations

import omni.replicator.core as rep
from sdgstudio.core.config import save_config
from sdgstudio.core.sampler import sample_frame_params
from sdgstudio.core.stage import apply_frame_params
from sdgstudio.replicator.backend import build_on_live_stage

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
)

__all__ = ["TestSDGStudioWriter"]

FRAMES = range(3)


class TestSDGStudioWriter(LiveStageTestCase):
    async def test_recorder_style_custom_writer_writes_our_dataset(self):
        config = small_config()
        config_file = self._tmp / "scene.toml"
        save_config(config, config_file)
        reference = await raster_frames(config, FRAMES)
        if STANDIN:
            queue_reference_payloads(config, reference)
        stage = build_on_live_stage(config)
        out = self._tmp / "recorded"
        # the Synthetic Data Recorder's sequence (API_FACTS.md A3): get, capture off, initialize, attach, step...
        writer = rep.WriterRegistry.get("SDGStudioWriter")
        rep.orchestrator.set_capture_on_play(False)
        writer.initialize(output_dir=str(out), config=str(config_file))
        product = rep.create.render_product("/World/Camera", RESOLUTION, force_new=True, name="recorder")
        try:
            writer.attach([product])
            for index in FRAMES:
                apply_frame_params(stage, sample_frame_params(config, config.seed, index))
                await rep.orchestrator.step_async(rt_subframes=4, delta_time=0.0, pause_timeline=False)
            await rep.orchestrator.wait_until_complete_async()  # on_final_frame: the dataset is closed
        finally:
            writer.detach()
            product.destroy()
        written = read_dataset(out)
        self.assertEqual([w["entry"]["frame"] for w in written], list(FRAMES))
        self.assertEqual({w["entry"]["writer"] for w in written}, {"SDGStudioWriter"})
        for w, raster in zip(written, reference, strict=True):
            check_consistent(self, w, config)
            if STANDIN:  # real Replicator writes a frame later than it renders: the stage has moved on
                check_against_raster(self, w, raster, exact=True)

    async def test_an_existing_dataset_is_never_appended_to(self):
        (self._tmp / "dataset.json").write_text("{}")
        writer = rep.WriterRegistry.get("SDGStudioWriter")
        with self.assertRaisesRegex(ValueError, "already holds a dataset"):
            writer.initialize(output_dir=str(self._tmp), classes=["mug"])

    async def test_several_render_products_write_one_dataset_each(self):
        if not STANDIN:
            self.skipTest("stand-in only: checks the <annotator>-<render product> payload keys")
        config = small_config()
        config.annotators = ["rgb", "instance_segmentation"]
        reference = await raster_frames(config, range(1))
        queue_reference_payloads(config, reference)
        apply_frame_params(build_on_live_stage(config), sample_frame_params(config, config.seed, 0))
        writer = rep.WriterRegistry.get("SDGStudioWriter")
        writer.initialize(output_dir=str(self._tmp / "multi"), classes=list(config.classes),
                          annotators=config.annotators)
        left = rep.create.render_product("/World/Camera", RESOLUTION, name="left")
        right = rep.create.render_product("/World/Camera", RESOLUTION, name="right")
        try:
            writer.attach([left, right])
            await rep.orchestrator.step_async(rt_subframes=1, delta_time=0.0)
            await rep.orchestrator.wait_until_complete_async()
        finally:
            writer.detach()
            left.destroy()
            right.destroy()
        folders = sorted(p.name for p in (self._tmp / "multi").iterdir())
        self.assertEqual(len(folders), 2)
        for folder in folders:
            (w,) = read_dataset(self._tmp / "multi" / folder)
            self.assertEqual(sorted(w["entry"]["files"]), ["instance_segmentation", "labels", "rgb"])
            check_against_raster(self, w, reference[0], exact=True)
