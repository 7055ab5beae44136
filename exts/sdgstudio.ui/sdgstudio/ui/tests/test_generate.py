"""Generate, Pause/Resume, Stop, Preview and the scrubber, clicked through the window inside Kit's loop."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
from pathlib import Path

import carb.eventdispatcher
import omni.kit.app
import omni.kit.test
import omni.usd
from sdgstudio.core.config import load_config
from sdgstudio.core.progress import Outcome, RunState
from sdgstudio.core.sampler import sample_frame_params

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

__all__ = ["TestGenerate", "TestWindowApi"]


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


class TestGenerate(omni.kit.test.AsyncTestCase):
    async def setUp(self):
        if not STANDIN:
            self.skipTest(SKIP_REASON)
        reset_persistent_state()
        await omni.usd.get_context().new_stage_async()
        self._tmp = Path(tempfile.mkdtemp(prefix="sdgstudio-ui-run-"))
        self._updates = [0]
        self._observer = carb.eventdispatcher.get_eventdispatcher().observe_event(
            event_name=omni.kit.app.GLOBAL_EVENT_UPDATE, on_event=lambda _e: self._count(),
            observer_name="sdgstudio.ui test: update counter")
        self._window = await open_window()
        self._window.load(small_config_file(self._tmp, frames=4))
        await updates(3)

    def _count(self) -> None:
        self._updates[0] += 1

    async def tearDown(self):
        await close_window(self._window)
        self._window = None
        self._observer.reset()
        self._observer = None
        shutil.rmtree(self._tmp, ignore_errors=True)
        reset_persistent_state()

    def _set_output(self, name: str) -> Path:
        out = self._tmp / name
        widget(self._window, "sdg:output.dir").model.set_value(str(out))
        return out

    async def _run_cli(self, config: Path, out: Path) -> int:
        from sdgstudio.core.cli import main

        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, main, ["generate", "--config", str(config), "--out", str(out), "--quiet"])
        while not future.done():
            await updates()
        return await future

    async def test_generate_writes_the_requested_frames_while_kit_keeps_ticking(self):
        window = self._window
        widget(window, "sdg:output.frames").model.set_value(3)
        out = self._set_output("clicked")
        frames_at: dict[int, int] = {}  # frames done -> Kit updates when the window heard of it
        unsubscribe = window.controller.subscribe(lambda p: frames_at.setdefault(p.frames_done, self._updates[0]))
        generate = widget(window, "sdg-run:generate")
        generate.call_clicked_fn()
        generate.call_clicked_fn()  # a double click starts nothing more
        first_task = window.controller.task
        self.assertEqual(window.controller.state, RunState.RUNNING)
        self.assertFalse(generate.enabled)
        await updates()
        self.assertIs(window.controller.task, first_task)
        start = self._updates[0]
        await wait_until(lambda: not window.controller.progress.busy)
        unsubscribe()
        progress = window.controller.progress
        self.assertEqual((progress.outcome, progress.last_error), (Outcome.COMPLETED, None))
        self.assertEqual([e["frame"] for e in manifest(out)], [0, 1, 2])
        self.assertEqual(len(list(out.glob("rgb_*.png"))), 3)
        self.assertGreater(self._updates[0] - start, 3, "Kit did not keep updating during the run")
        self.assertEqual(max(frames_at), 3)
        heard = [frames_at[k] for k in sorted(frames_at)]  # progress reached the window over several updates
        self.assertGreater(heard[-1], heard[0], frames_at)
        self.assertIn("Done: 3 of 3", widget(window, "sdg-run:status").text)
        self.assertAlmostEqual(widget(window, "sdg-run:progress").model.as_float, 1.0)
        self.assertTrue(widget(window, "sdg-run:open-folder").enabled)
        self.assertTrue(generate.enabled)

    async def test_round_trip_saved_config_through_the_cli_gives_the_same_dataset(self):
        picker = standin("omni.kit.window.filepicker")
        window = self._window
        widget(window, "sdg:seed").model.set_value(11)
        widget(window, "sdg:materials.metallic#max").model.set_value(0.5)
        widget(window, "sdg:output.frames").model.set_value(2)
        clicked = self._set_output("clicked")
        click(window, "sdg-file:save-as")
        picker.choose(picker.dialogs()[-1], "roundtrip.toml", str(self._tmp))
        click(window, "sdg-run:generate")
        await wait_until(lambda: not window.controller.progress.busy)
        self.assertEqual(window.controller.progress.outcome, Outcome.COMPLETED)

        cli_out = self._tmp / "cli"
        self.assertEqual(await self._run_cli(self._tmp / "roundtrip.toml", cli_out), 0)
        self.assertEqual(manifest(clicked), manifest(cli_out))  # same params, same files, same sha256
        self.assertEqual(json.loads((clicked / "dataset.json").read_text()),
                         json.loads((cli_out / "dataset.json").read_text()))
        self.assertEqual(load_config(self._tmp / "roundtrip.toml").seed, 11)

    async def test_pause_resume_and_stop_leave_a_complete_dataset_without_gaps_or_duplicates(self):
        window = self._window
        widget(window, "sdg:output.frames").model.set_value(12)  # long enough to stop mid-run with frames in flight
        out = self._set_output("interrupted")
        controller = window.controller
        click(window, "sdg-run:generate")
        await wait_until(lambda: controller.progress.frames_done >= 1)
        click(window, "sdg-run:pause")
        self.assertEqual(controller.state, RunState.PAUSED)
        self.assertEqual(widget(window, "sdg-run:pause").text, "Resume")
        await wait_until(lambda: controller.progress.parked)  # the frame in flight finished, the worker waits
        parked = controller.progress.frames_done
        self.assertTrue(widget(window, "sdg-run:status").text.startswith("Paused:"))
        await updates(30)
        self.assertEqual(controller.progress.frames_done, parked, "frames were rendered while paused")
        click(window, "sdg-run:pause")  # Resume
        self.assertEqual(controller.state, RunState.RUNNING)
        await wait_until(lambda: controller.progress.frames_done >= parked + 1)
        click(window, "sdg-run:stop")
        await wait_until(lambda: not controller.progress.busy)
        stopped = controller.progress
        self.assertEqual(stopped.outcome, Outcome.STOPPED)
        self.assertTrue(stopped.resumable)
        self.assertLess(stopped.frames_done, 12)
        listed = [e["frame"] for e in manifest(out)]
        self.assertEqual(listed, list(range(len(listed))))
        self.assertIn("Generate continues", widget(window, "sdg-run:status").text)

        click(window, "sdg-run:generate")  # continues the dataset in the folder
        await wait_until(lambda: not controller.progress.busy)
        self.assertEqual(controller.progress.outcome, Outcome.COMPLETED)
        self.assertTrue(controller.progress.resumed)
        entries = manifest(out)
        self.assertEqual([e["frame"] for e in entries], list(range(12)))

        reference = self._tmp / "reference"
        widget(window, "sdg:output.frames").model.set_value(12)
        click(window, "sdg-file:save-as")
        picker = standin("omni.kit.window.filepicker")
        picker.choose(picker.dialogs()[-1], "same.toml", str(self._tmp))
        self.assertEqual(await self._run_cli(self._tmp / "same.toml", reference), 0)
        self.assertEqual([e["sha256"] for e in entries], [e["sha256"] for e in manifest(reference)])

    async def test_closing_the_window_mid_run_stops_at_a_frame_boundary_and_the_next_window_continues(self):
        widget(self._window, "sdg:output.frames").model.set_value(40)
        out = self._set_output("closed")
        click(self._window, "sdg-run:generate")
        await wait_until(lambda: self._window.controller.progress.frames_done >= 1)
        await close_window(self._window)
        await wait_until(lambda: not any(t.name.startswith("sdgstudio-run") for t in threading.enumerate()))
        listed = [e["frame"] for e in manifest(out)]
        self.assertEqual(listed, list(range(len(listed))))
        self.assertLess(len(listed), 40)
        self._window = window = await open_window()  # the config and its output folder were kept
        self.assertIn("Generate continues it", widget(window, "sdg-run:target").text)
        click(window, "sdg-run:generate")
        await wait_until(lambda: not window.controller.progress.busy)
        self.assertEqual(window.controller.progress.outcome, Outcome.COMPLETED)
        self.assertEqual([e["frame"] for e in manifest(out)], list(range(40)))

    async def test_preview_renders_thumbnails_and_writes_nothing(self):
        from contract_standin import recorder

        window = self._window
        out = self._set_output("never")
        widget(window, "sdg-preview:count").model.set_value(3)
        self.assertEqual(widget(window, "sdg-preview:run").text, "Preview 3")
        widget(window, "sdg-preview:masks").model.set_value(True)
        click(window, "sdg-preview:run")
        self.assertEqual(window.controller.state, RunState.PREVIEWING)
        self.assertFalse(widget(window, "sdg-run:generate").enabled)
        await wait_until(lambda: not window.controller.progress.busy)
        await updates(2)
        self.assertEqual(window.controller.progress.outcome, Outcome.COMPLETED)
        import omni.ui as ui

        uploads = recorder(ui).find("ByteImageProvider.set_bytes_data")
        self.assertGreaterEqual(len(uploads), 3)
        self.assertEqual(list(uploads[-1].args[1]), [64, 48])  # the frame size (thumbnails are at most 160 px wide)
        for index in range(3):
            widget(window, f"sdg-preview:thumb:{index}")
        self.assertFalse(out.exists())
        self.assertIn("nothing was written", widget(window, "sdg-preview:message").text)

    async def test_scrubber_poses_the_live_stage_as_frame_k(self):
        window = self._window
        widget(window, "sdg-preview:seed").model.set_value(5)
        widget(window, "sdg-preview:frame").model.set_value(2)
        stage = omni.usd.get_context().get_stage()
        params = sample_frame_params(window.view_model.config, 5, 2)
        for obj in params.objects:
            prim = stage.GetPrimAtPath(obj.prim_path)
            self.assertTrue(prim.IsValid(), obj.prim_path)
            self.assertEqual(prim.GetAttribute("visibility").Get(), "inherited" if obj.visible else "invisible")
            if obj.visible:
                self.assertEqual(list(prim.GetAttribute("xformOp:translate").Get()), list(obj.position))
        self.assertIn("frame 2 of seed 5", widget(window, "sdg-preview:message").text)
        click(window, "sdg-preview:next")
        moved = sample_frame_params(window.view_model.config, 5, 3)
        shown = next(o for o in moved.objects if o.visible)
        translate = stage.GetPrimAtPath(shown.prim_path).GetAttribute("xformOp:translate").Get()
        self.assertEqual(list(translate), list(shown.position))
        self.assertFalse((self._tmp / "out").exists())


class TestWindowApi(omni.kit.test.AsyncTestCase):
    """Only the window's own API (no stand-in helpers), so it runs unchanged under Isaac Sim's real omni.ui."""

    async def setUp(self):
        reset_persistent_state()
        self._tmp = Path(tempfile.mkdtemp(prefix="sdgstudio-ui-api-"))
        self._window = None

    async def tearDown(self):
        if self._window is not None:
            self._window.destroy()
            self._window = None
        await updates(2)
        shutil.rmtree(self._tmp, ignore_errors=True)
        reset_persistent_state()

    async def test_the_window_builds_and_generates_a_dataset(self):
        from sdgstudio.ui.window import SdgStudioWindow

        self._window = window = SdgStudioWindow("SDG Studio (API test)")
        await updates(5)
        self.assertTrue(window.load(small_config_file(self._tmp, frames=2)))
        out = self._tmp / "api"
        window.view_model.set(("output", "dir"), str(out))
        self.assertTrue(window.generate())
        self.assertFalse(window.generate())  # one run at a time
        await wait_until(lambda: not window.controller.progress.busy)
        self.assertEqual(window.controller.progress.outcome, Outcome.COMPLETED)
        self.assertEqual([e["frame"] for e in manifest(out)], [0, 1])
