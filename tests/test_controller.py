"""The UI-free run controller: states, progress events, re-entry, pause/resume, stop/resume, preview, errors."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from runs import digests, manifest, small_config, until
from sdgstudio.core.controller import RunController
from sdgstudio.core.generate import generate
from sdgstudio.core.progress import Outcome, Progress, RunState, one_line
from sdgstudio.core.session import RunError

FRAMES = 24  # enough that a stop lands mid-run although frames take milliseconds and overlap


@pytest.fixture(scope="module")
def small(tabletop):
    return small_config(tabletop, FRAMES)


@pytest.fixture(scope="module")
def reference(small, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "ds"
    generate(small, out, range(FRAMES))
    return out


def fake_generate(delay: float = 0.01, warnings=("a warning",)):
    """A stand-in for ``generate`` that honours should_stop/on_frame/on_progress without rendering."""
    calls = []

    def run(config, out, indices, *, backend, device, resume, on_frame, should_stop, holding, on_progress):
        calls.append({"out": out, "indices": list(indices), "backend": backend, "resume": resume})
        for index in indices:
            if should_stop():
                break
            time.sleep(delay)
            on_progress(SimpleNamespace(queue_depth=1))
            on_frame(index, SimpleNamespace(extra={"warnings": list(warnings)}))
        return SimpleNamespace(warnings=[])

    run.calls = calls
    return run


def test_a_run_publishes_progress_and_writes_the_dataset(small, reference, tmp_path):
    events: list[Progress] = []

    async def main():
        controller = RunController()
        controller.subscribe(events.append)
        assert controller.start(small, tmp_path / "ds")
        assert controller.state is RunState.RUNNING
        return await controller.wait()

    final = asyncio.run(main())
    assert final.state is RunState.IDLE and final.outcome is Outcome.COMPLETED and final.last_error is None
    assert (final.frames_done, final.frames_total, final.fraction) == (FRAMES, FRAMES, 1.0)
    assert events[0].state is RunState.RUNNING and events[-1] == final
    assert [e.frames_done for e in events] == sorted(e.frames_done for e in events)  # never goes back
    assert any(e.frames_per_second > 0 and e.eta_seconds is not None for e in events[:-1])
    assert digests(tmp_path / "ds") == digests(reference)


def test_a_second_start_or_a_preview_is_refused_while_busy(small, tmp_path):
    fake = fake_generate()

    async def main():
        controller = RunController(generate_fn=fake)
        assert controller.start(small, tmp_path / "a")
        first = controller.task
        assert not controller.start(small, tmp_path / "b")  # double click
        assert not controller.preview(small, [0], on_frame=lambda i, f: None)
        assert controller.task is first
        await controller.wait()
        assert controller.start(small, tmp_path / "c")  # idle again: accepted
        await controller.wait()

    asyncio.run(main())
    assert [c["out"].name for c in fake.calls] == ["a", "c"]


def test_commands_only_act_in_their_states(small, tmp_path):
    async def main():
        controller = RunController(generate_fn=fake_generate(delay=0.02))
        assert not (controller.pause() or controller.resume() or controller.stop())
        controller.start(small, tmp_path / "ds")
        assert not controller.resume()
        assert controller.pause() and controller.state is RunState.PAUSED
        assert not controller.pause()
        assert controller.resume() and controller.state is RunState.RUNNING
        assert controller.stop() and controller.state is RunState.STOPPING
        assert not controller.stop()
        final = await controller.wait()
        assert final.state is RunState.IDLE and final.outcome is Outcome.STOPPED

    asyncio.run(main())


def test_progress_carries_fps_eta_queue_depth_and_distinct_warnings(small, tmp_path):
    events: list[Progress] = []

    async def main():
        controller = RunController(generate_fn=fake_generate(delay=0.02, warnings=("w1", "w2")))
        controller.subscribe(events.append)
        controller.start(small, tmp_path / "ds", frames=10)
        return await controller.wait()

    final = asyncio.run(main())
    running = [e for e in events if e.state is RunState.RUNNING and e.frames_done > 1]
    assert running and all(e.frames_per_second > 0 for e in running)
    assert all(e.eta_seconds is not None for e in running)
    assert any(e.queue_depth == 1 for e in running)
    assert final.warnings == ("w1", "w2") and final.queue_depth == 0 and final.eta_seconds == 0.0


def test_pause_parks_between_frames_and_resume_continues_without_gaps_or_duplicates(small, reference, tmp_path):
    out = tmp_path / "ds"

    async def main():
        controller = RunController()
        paused = []

        def pause_after_two(progress: Progress) -> None:
            if not paused and progress.frames_done >= 2 and progress.state is RunState.RUNNING:
                paused.append(controller.pause())

        controller.subscribe(pause_after_two)
        controller.start(small, out)
        await until(lambda: controller.progress.parked)  # the frame in flight finished, the worker waits
        parked = controller.progress.frames_done
        await asyncio.sleep(0.5)
        assert controller.progress.frames_done == parked < FRAMES
        assert controller.progress.frames_per_second == 0 and controller.progress.eta_seconds is None
        assert controller.resume()
        return await controller.wait()

    final = asyncio.run(main())
    assert final.outcome is Outcome.COMPLETED
    assert [e["frame"] for e in manifest(out)] == list(range(FRAMES))
    assert digests(out) == digests(reference)


def test_stop_leaves_a_resumable_dataset_that_start_completes(small, reference, tmp_path):
    out = tmp_path / "ds"

    async def main():
        controller = RunController()
        controller.start(small, out)
        await until(lambda: controller.progress.frames_done >= 2)
        assert controller.stop()
        stopped = await controller.wait()
        listed = [e["frame"] for e in manifest(out)]
        assert stopped.outcome is Outcome.STOPPED and stopped.resumable
        assert listed == list(range(len(listed))) and 2 <= len(listed) < FRAMES
        events: list[Progress] = []
        controller.subscribe(events.append)
        assert controller.start(small, out)  # resume is automatic when the folder holds this dataset
        final = await controller.wait()
        assert final.resumed and events[0].resumed
        assert min(e.frames_done for e in events[1:]) >= len(listed)  # counts the frames it kept
        return final

    final = asyncio.run(main())
    assert final.outcome is Outcome.COMPLETED and final.frames_done == FRAMES
    assert [e["frame"] for e in manifest(out)] == list(range(FRAMES))
    assert digests(out) == digests(reference)


def test_a_failing_run_reports_one_line_and_returns_to_idle(small, reference, tmp_path):
    other = small.model_copy(update={"seed": 99})

    async def main():
        controller = RunController()
        controller.start(other, reference)  # a dataset made with seed 0: cannot continue it
        failed = await controller.wait()
        assert controller.can_start
        return failed

    failed = asyncio.run(main())
    assert failed.state is RunState.IDLE and failed.outcome is Outcome.FAILED
    assert "other settings" in failed.last_error and "\n" not in failed.last_error
    assert failed.frames_done == 0 and not failed.resumable  # the other dataset's frames are not ours


def test_a_subscriber_that_raises_does_not_stop_the_run(small, tmp_path):
    def bad(_progress):
        raise RuntimeError("subscriber bug")

    async def main():
        controller = RunController(generate_fn=fake_generate())
        controller.subscribe(bad)
        controller.start(small, tmp_path / "ds", frames=3)
        return await controller.wait()

    assert asyncio.run(main()).outcome is Outcome.COMPLETED


def test_preview_delivers_frames_on_the_loop_thread_and_writes_nothing(small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []

    async def main():
        controller = RunController()
        loop_thread = threading.get_ident()
        assert controller.preview(small, [3, 4], seed=7, on_frame=lambda i, f: seen.append(
            (i, f.rgb.shape, threading.get_ident() == loop_thread)))
        assert controller.state is RunState.PREVIEWING
        return await controller.wait()

    final = asyncio.run(main())
    assert final.outcome is Outcome.COMPLETED and final.activity == "preview" and not final.resumable
    assert seen == [(3, (48, 64, 3), True), (4, (48, 64, 3), True)]
    assert list(tmp_path.iterdir()) == []


def test_preview_falls_back_to_raster_with_a_warning_and_stop_ends_it(small):
    seen = []

    async def main():
        controller = RunController()
        controller.preview(small, range(50), backend="replicator", on_frame=lambda i, f: seen.append(i))
        await until(lambda: len(seen) >= 1)
        assert controller.stop()
        return await controller.wait()

    final = asyncio.run(main())
    assert final.outcome is Outcome.STOPPED and len(seen) < 50
    assert any("raster" in w for w in final.warnings)


def test_shutdown_cancels_the_task_and_stops_the_worker(small, tmp_path):
    fake = fake_generate(delay=0.01)

    async def main():
        controller = RunController(generate_fn=fake)
        controller.start(small, tmp_path / "ds", frames=1000)
        await asyncio.sleep(0.05)
        task = controller.task
        controller.shutdown()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert controller.progress.state is RunState.IDLE

    asyncio.run(main())


def test_one_line_messages():
    assert one_line(RunError("first line\nsecond")) == "first line"
    assert one_line(FileNotFoundError(2, "No such file", "/x")) == "No such file: /x"
    assert one_line(ValueError()) == "ValueError"


def test_ui_config_saved_then_cli_generate_equals_the_controller_run(small, tmp_path):
    """Acceptance: build the config in the view-model -> save -> `sdgstudio generate` = what Generate writes."""
    from sdgstudio.core.cli import main
    from sdgstudio.ui.view_model import ConfigViewModel

    vm = ConfigViewModel.from_config(small, base_dir=tmp_path, output_root=tmp_path)
    vm.set(("seed",), 21)
    vm.set(("output", "frames"), 3)
    vm.set(("lighting", "ambient", "max"), 350.0)
    vm.set(("output", "dir"), "clicked")
    assert vm.valid and vm.output_dir() == tmp_path / "clicked"
    saved = vm.save(tmp_path / "ui.yaml")

    async def click_generate():
        controller = RunController()
        assert controller.start(vm.config, vm.output_dir())
        return await controller.wait()

    assert asyncio.run(click_generate()).outcome is Outcome.COMPLETED
    assert main(["generate", "--config", str(saved), "--out", str(tmp_path / "cli"), "--quiet"]) == 0
    assert manifest(tmp_path / "clicked") == manifest(tmp_path / "cli")
    assert (json.loads((tmp_path / "clicked" / "dataset.json").read_text())
            == json.loads((tmp_path / "cli" / "dataset.json").read_text()))
