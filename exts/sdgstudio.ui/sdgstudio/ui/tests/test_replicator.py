"""Generate, Pause/Resume, Stop and Preview with the Replicator backend, clicked through the window.

With the sdgstudio.replicator extension enabled the window hands the controller Replicator's ``generate_async``:
the run awaits ``rep.orchestrator.step_async`` on Kit's loop (no worker thread). Under the contract stand-in each
step "renders" the next queued payload set, made from the raster backend's frames of the same config
(``sdgstudio.replicator.synthesize``), so the dataset on disk must hold exactly those frames.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import carb.eventdispatcher
import numpy as np
import omni.kit.app
import omni.kit.test
import omni.replicator.core as rep
import omni.usd
from sdgstudio.core.extension import raster_device
from sdgstudio.core.progress import Outcome, RunState
from sdgstudio.core.writer import read_layer

from .helpers import (
    SKIP_REASON,
    STANDIN,
    click,
    close_window,
    open_window,
    reset_persistent_state,
    small_config_file,
    standin,
    updates,
    wait_until,
    widget,
)

__all__ = ["TestReplicatorBackend"]

REPLICATOR_EXT = "sdgstudio.replicator"
#: Frames of the interrupted run: the stand-in "renders" several frames per Kit update, so Stop needs room.
FRAMES = 10


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sdgstudio-run")}


async def raster_frames(config, indices, seed=None) -> list:
    """The raster backend's frames of ``config`` with every layer the payloads need, off Kit's main thread."""
    from sdgstudio.core.frame import ANNOTATORS
    from sdgstudio.core.raster import RasterBackend, RasterSettings
    from sdgstudio.core.session import RenderSession

    config = config.model_copy(deep=True)
    config.annotators = [a for a in ANNOTATORS if a != "optical_flow"]

    def render() -> list:
        session = RenderSession(config, RasterBackend(list(config.classes), RasterSettings(device=raster_device())))
        return [session.render(i, seed)[1] for i in indices]

    return await asyncio.get_running_loop().run_in_executor(None, render)


class TestReplicatorBackend(omni.kit.test.AsyncTestCase):
    async def setUp(self):
        if not (STANDIN and getattr(rep, "__standin__", False)):
            self.skipTest(SKIP_REASON)
        if not omni.kit.app.get_app().get_extension_manager().is_extension_enabled(REPLICATOR_EXT):
            self.skipTest(f"{REPLICATOR_EXT} is not enabled")
        reset_persistent_state()
        await omni.usd.get_context().new_stage_async()
        self._tmp = Path(tempfile.mkdtemp(prefix="sdgstudio-ui-rep-"))
        self._updates = [0]
        self._observer = carb.eventdispatcher.get_eventdispatcher().observe_event(
            event_name=omni.kit.app.GLOBAL_EVENT_UPDATE, on_event=lambda _e: self._count(),
            observer_name="sdgstudio.ui test: update counter (replicator)")
        self._window = await open_window()
        self._window.load(small_config_file(self._tmp, frames=3))
        combo = widget(self._window, "sdg:output.backend")
        combo.model.get_item_value_model().set_value(1)  # raster, replicator
        await updates(3)
        self.assertEqual(self._window.view_model.config.output.backend, "replicator")

    def _count(self) -> None:
        self._updates[0] += 1

    async def tearDown(self):
        standin("omni.replicator.core").clear_payloads()
        await close_window(self._window)
        self._window = None
        self._observer.reset()
        self._observer = None
        shutil.rmtree(self._tmp, ignore_errors=True)
        reset_persistent_state()

    async def _queue(self, frames: int, seed=None) -> list:
        """The next ``frames`` steps render frames 0.. of the window's config (as the raster backend does)."""
        from sdgstudio.replicator.synthesize import payloads_from_frame

        config = self._window.view_model.config
        reference = await raster_frames(config, range(frames), seed)
        standin("omni.replicator.core").queue_payloads(
            [payloads_from_frame(f, list(config.classes)) for f in reference])
        return reference

    def _set_output(self, name: str) -> Path:
        out = self._tmp / name
        widget(self._window, "sdg:output.dir").model.set_value(str(out))
        return out

    def _check_frames(self, out: Path, reference: list) -> None:
        entries = manifest(out)
        self.assertEqual([e["frame"] for e in entries], list(range(len(reference))))
        for entry, raster in zip(entries, reference, strict=True):
            np.testing.assert_array_equal(read_layer(out / entry["files"]["rgb"]), raster.rgb)
            labels = json.loads((out / entry["files"]["labels"]).read_text())
            self.assertEqual([o["pixel_count"] for o in labels["objects"]], [o.pixel_count for o in raster.objects])
        self.assertEqual(json.loads((out / "dataset.json").read_text())["backend"], "replicator")

    async def test_generate_renders_through_replicator_on_kits_loop(self):
        from contract_standin import recorder

        window = self._window
        reference = await self._queue(3)
        recorder(rep).clear()
        out = self._set_output("replicator")
        before = worker_threads()  # earlier windows' raster runs may have left idle workers
        threads_seen: list[set] = []
        unsubscribe = window.controller.subscribe(lambda _p: threads_seen.append(worker_threads() - before))
        generate = widget(window, "sdg-run:generate")
        generate.call_clicked_fn()
        generate.call_clicked_fn()  # a double click starts nothing more
        self.assertEqual(window.controller.state, RunState.RUNNING)
        start = self._updates[0]
        await wait_until(lambda: not window.controller.progress.busy)
        unsubscribe()
        progress = window.controller.progress
        self.assertEqual((progress.outcome, progress.last_error), (Outcome.COMPLETED, None))
        self._check_frames(out, reference)
        self.assertGreater(self._updates[0] - start, 3, "Kit did not keep updating during the run")
        self.assertEqual([t for t in threads_seen if t], [], "the Replicator run used the worker thread")
        self.assertEqual(len(recorder(rep).find("orchestrator.step_async")), 3)
        self.assertEqual(standin("omni.replicator.core").pending_payloads(), 0)
        self.assertIn("Done: 3 of 3", widget(window, "sdg-run:status").text)

        # Open report: built off the main thread into the dataset folder, then opened.
        import sdgstudio.ui.window as window_module

        opened: list[Path] = []
        original = window_module.open_with_os
        window_module.open_with_os = opened.append
        try:
            click(window, "sdg-run:open-report")
            deadline = time.monotonic() + 90  # matplotlib's first import and the plots take seconds here
            while not opened and time.monotonic() < deadline:
                await updates()
        finally:
            window_module.open_with_os = original
        self.assertEqual(len(opened), 1, "the report was not built and opened")
        self.assertEqual(Path(opened[0]), out / "report" / "index.html")
        self.assertTrue((out / "report" / "report.json").is_file())

    async def test_pause_resume_and_stop_on_the_replicator_path(self):
        window = self._window
        controller = window.controller
        widget(window, "sdg:output.frames").model.set_value(FRAMES)
        reference = await self._queue(FRAMES)
        helpers = standin("omni.replicator.core")
        out = self._set_output("interrupted")
        click(window, "sdg-run:generate")
        await wait_until(lambda: controller.progress.frames_done >= 1)
        click(window, "sdg-run:pause")
        self.assertEqual(controller.state, RunState.PAUSED)
        await wait_until(lambda: controller.progress.parked)  # the frame in flight finished; the run waits
        parked, pending = controller.progress.frames_done, helpers.pending_payloads()
        self.assertTrue(widget(window, "sdg-run:status").text.startswith("Paused:"))
        ticks = self._updates[0]
        await updates(30)
        self.assertGreaterEqual(self._updates[0] - ticks, 30, "pausing blocked Kit's loop")
        self.assertEqual((controller.progress.frames_done, helpers.pending_payloads()), (parked, pending),
                         "Replicator stepped while paused")
        click(window, "sdg-run:pause")  # Resume
        self.assertEqual(controller.state, RunState.RUNNING)
        await wait_until(lambda: controller.progress.frames_done >= parked + 1)
        click(window, "sdg-run:stop")
        await wait_until(lambda: not controller.progress.busy)
        stopped = controller.progress
        self.assertEqual(stopped.outcome, Outcome.STOPPED)
        self.assertTrue(stopped.resumable)
        listed = [e["frame"] for e in manifest(out)]
        self.assertEqual(listed, list(range(len(listed))))
        self.assertLess(len(listed), FRAMES)
        self.assertEqual(helpers.pending_payloads(), FRAMES - len(listed), "one Replicator step per listed frame")

        click(window, "sdg-run:generate")  # continues the dataset, through Replicator again
        await wait_until(lambda: not controller.progress.busy)
        self.assertEqual(controller.progress.outcome, Outcome.COMPLETED)
        self.assertTrue(controller.progress.resumed)
        self._check_frames(out, reference)
        self.assertEqual(helpers.pending_payloads(), 0)

    async def test_preview_renders_through_replicator_and_writes_nothing(self):
        import omni.ui as ui
        from contract_standin import recorder

        window = self._window
        seed = window.view_model.config.seed
        await self._queue(2, seed)
        recorder(rep).clear()
        out = self._set_output("never")
        widget(window, "sdg-preview:count").model.set_value(2)
        uploads_before = len(recorder(ui).find("ByteImageProvider.set_bytes_data"))
        click(window, "sdg-preview:run")
        self.assertEqual(window.controller.state, RunState.PREVIEWING)
        await wait_until(lambda: not window.controller.progress.busy)
        await updates(2)
        progress = window.controller.progress
        self.assertEqual((progress.outcome, progress.warnings), (Outcome.COMPLETED, ()))  # no raster fallback
        self.assertEqual(len(recorder(rep).find("orchestrator.step_async")), 2)
        self.assertGreaterEqual(len(recorder(ui).find("ByteImageProvider.set_bytes_data")) - uploads_before, 2)
        self.assertEqual(standin("omni.replicator.core").pending_payloads(), 0)
        self.assertFalse(out.exists())
        self.assertIn("nothing was written", widget(window, "sdg-preview:message").text)
