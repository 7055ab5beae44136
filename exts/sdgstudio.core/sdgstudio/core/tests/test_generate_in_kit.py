"""Generating inside Kit: the raster backend renders in a worker thread while Kit's loop keeps updating."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import carb.eventdispatcher
import omni.kit.app
import omni.kit.test
from sdgstudio.core.config import load_config
from sdgstudio.core.extension import builtin_scene, raster_device

__all__ = ["TestGenerateInKit"]

FRAMES = 8  # a run overlaps frames: several, so that Kit must update between the first and the last


class TestGenerateInKit(omni.kit.test.AsyncTestCase):
    async def setUp(self):
        self._out = Path(tempfile.mkdtemp(prefix="sdgstudio-kit-test-"))

    async def tearDown(self):
        shutil.rmtree(self._out, ignore_errors=True)

    async def test_frames_render_while_kit_keeps_updating(self):
        from sdgstudio.core.generate import generate

        config = load_config(builtin_scene("tabletop"))
        config.camera.resolution = (160, 120)
        out = self._out / "dataset"
        updates = [0]  # Kit update events seen on the main thread
        updates_at_frame: list[int] = []  # ... when the worker finished each frame

        def count_update(_event) -> None:
            updates[0] += 1

        observer = carb.eventdispatcher.get_eventdispatcher().observe_event(
            event_name=omni.kit.app.GLOBAL_EVENT_UPDATE, on_event=count_update,
            observer_name="sdgstudio.core test: update counter")
        app = omni.kit.app.get_app()
        awaited = 0
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdgstudio-generate") as pool:
                future = asyncio.get_running_loop().run_in_executor(
                    pool, lambda: generate(config, out, range(FRAMES), backend="raster", device=raster_device(),
                                           on_frame=lambda _i, _f: updates_at_frame.append(updates[0])))
                while not future.done():
                    await app.next_update_async()
                    awaited += 1
                summary = await future
        finally:
            observer.reset()

        self.assertEqual(summary.frames_written, FRAMES)
        lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
        self.assertEqual([e["frame"] for e in lines], list(range(FRAMES)))
        for entry in lines:
            for name in entry["files"].values():
                self.assertTrue((out / name).is_file(), f"frame {entry['frame']}: {name} missing")
        self.assertTrue(any(n.startswith("rgb_") for e in lines for n in e["files"].values()))
        # Kit kept ticking: updates before the first frame finished and while the others did (a run overlaps
        # frames, so two may finish within one update)
        self.assertEqual(len(updates_at_frame), FRAMES)
        self.assertGreater(updates_at_frame[0], 0, "no Kit update while the first frame rendered")
        self.assertGreater(updates_at_frame[-1], updates_at_frame[0], f"Kit did not update: {updates_at_frame}")
        self.assertGreaterEqual(awaited, FRAMES)
