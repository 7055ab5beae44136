"""The run controller with a backend that renders on the event loop (``AsyncBackend``, Replicator's path).

The real ``generate_async`` of sdgstudio.replicator runs here with the raster backend behind an async interface
(``LoopRaster``), so the dataset it writes can be compared with the synchronous path's, byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from runs import digests, manifest, small_config, until
from sdgstudio.core.activities import AsyncBackend
from sdgstudio.core.controller import RunController
from sdgstudio.core.generate import generate
from sdgstudio.core.manifest import lock_holder
from sdgstudio.core.progress import Outcome, Progress, RunState
from sdgstudio.core.session import RunError, make_backend
from sdgstudio.replicator.generate import generate_async

FRAMES = 6


@pytest.fixture(scope="module")
def small(tabletop):
    return small_config(tabletop, FRAMES)


@pytest.fixture(scope="module")
def reference(small, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "ds"
    generate(small, out, range(FRAMES))
    return out


class LoopRaster:
    """The raster backend behind the Replicator backend's async interface: each frame is awaited on the loop."""

    name = "replicator"

    def __init__(self, config, log: dict) -> None:
        self.inner = make_backend("raster", config)
        self.log = log

    async def render_async(self, stage, camera, resolution, annotators, frame_index):
        await asyncio.sleep(0.01)  # the loop runs while "RTX renders"
        self.log.setdefault("threads", set()).add(threading.get_ident())
        self.log["renders"] = self.log.get("renders", 0) + 1
        return self.inner.render(stage, camera, resolution, annotators, frame_index)

    async def finish_async(self) -> None:
        self.log["finished"] = self.log.get("finished", 0) + 1

    def close(self) -> None:
        self.log["closed"] = self.log.get("closed", 0) + 1


def loop_backend(log: dict) -> AsyncBackend:
    def run(config, out, indices, **kwargs):
        return generate_async(config, out, indices, backend=LoopRaster(config, log), **kwargs)

    return AsyncBackend(generate=run, make_backend=lambda config: LoopRaster(config, log))


def worker_threads() -> set[threading.Thread]:
    """Live run-worker threads (an earlier test's idle executor may still hold one: compare with a baseline)."""
    return {t for t in threading.enumerate() if t.name.startswith("sdgstudio-run")}


def test_a_run_on_the_loop_publishes_progress_and_writes_the_same_frames(small, reference, tmp_path):
    before = worker_threads()
    events: list[Progress] = []
    log: dict = {}

    async def main():
        controller = RunController(async_backends={"replicator": loop_backend(log)})
        controller.subscribe(events.append)
        assert controller.start(small, tmp_path / "ds", backend="replicator")
        assert not controller.start(small, tmp_path / "other", backend="replicator")  # a double click
        assert not controller.preview(small, [0], on_frame=lambda i, f: None)
        log["loop_thread"] = threading.get_ident()
        return await controller.wait()

    final = asyncio.run(main())
    assert final.outcome is Outcome.COMPLETED and final.last_error is None
    assert (final.frames_done, final.frames_total) == (FRAMES, FRAMES)
    assert [e.frames_done for e in events] == sorted(e.frames_done for e in events)
    assert any(e.frames_per_second > 0 and e.eta_seconds is not None for e in events if e.busy)
    assert log["threads"] == {log["loop_thread"]}, "rendered off the loop"
    assert (log["renders"], log["finished"], log["closed"]) == (FRAMES, 1, 1)
    assert worker_threads() <= before and not (tmp_path / "other").exists()
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["backend"] == "replicator"
    assert digests(tmp_path / "ds") == digests(reference)


def test_pause_parks_on_the_loop_without_blocking_it_and_resume_has_no_gaps(small, reference, tmp_path):
    out = tmp_path / "ds"

    async def main():
        controller = RunController(async_backends={"replicator": loop_backend({})})
        paused: list[bool] = []

        def pause_after_two(progress: Progress) -> None:
            if not paused and progress.frames_done >= 2 and progress.state is RunState.RUNNING:
                paused.append(controller.pause())

        controller.subscribe(pause_after_two)
        controller.start(small, out, backend="replicator")
        await until(lambda: controller.progress.parked)
        parked = controller.progress.frames_done
        spins = 0
        for _ in range(40):  # the loop keeps running while the run is parked
            await asyncio.sleep(0.005)
            spins += 1
        assert spins == 40 and controller.progress.frames_done == parked < FRAMES
        assert controller.state is RunState.PAUSED and controller.progress.eta_seconds is None
        assert controller.resume()
        return await controller.wait()

    final = asyncio.run(main())
    assert final.outcome is Outcome.COMPLETED
    assert [e["frame"] for e in manifest(out)] == list(range(FRAMES))
    assert digests(out) == digests(reference)


def test_stop_while_paused_leaves_a_dataset_that_start_continues(small, reference, tmp_path):
    out = tmp_path / "ds"

    async def main():
        controller = RunController(async_backends={"replicator": loop_backend({})})
        controller.start(small, out, backend="replicator")
        await until(lambda: controller.progress.frames_done >= 2)
        assert controller.pause()
        await until(lambda: controller.progress.parked)
        assert controller.stop() and controller.state is RunState.STOPPING
        stopped = await controller.wait()
        listed = [e["frame"] for e in manifest(out)]
        assert stopped.outcome is Outcome.STOPPED and stopped.resumable
        assert listed == list(range(len(listed))) and 2 <= len(listed) < FRAMES
        events: list[Progress] = []
        controller.subscribe(events.append)
        assert controller.start(small, out, backend="replicator")  # continues (resume) with the same backend
        final = await controller.wait()
        assert final.resumed and min(e.frames_done for e in events[1:]) >= len(listed)
        return final

    final = asyncio.run(main())
    assert final.outcome is Outcome.COMPLETED and final.frames_done == FRAMES
    assert [e["frame"] for e in manifest(out)] == list(range(FRAMES))
    assert digests(out) == digests(reference)


def test_shutdown_lets_the_frame_in_flight_finish_and_leaves_a_resumable_dataset(small, reference, tmp_path):
    out = tmp_path / "ds"

    async def main():
        controller = RunController(async_backends={"replicator": loop_backend({})})
        controller.start(small, out, frames=1000, backend="replicator")
        await until(lambda: controller.progress.frames_done >= 1)
        task = controller.task
        controller.shutdown()
        assert not controller.can_start  # the frame in flight is still being finished
        with pytest.raises(asyncio.CancelledError):
            await task
        assert controller.progress.state is RunState.IDLE
        await until(lambda: controller.can_start)
        await until(lambda: lock_holder(out) is None)  # the run closed its dataset by itself
        for _ in range(5):
            await asyncio.sleep(0.02)
        return [e["frame"] for e in manifest(out)]

    listed = asyncio.run(main())
    assert listed == list(range(len(listed))) and 1 <= len(listed) < 1000
    assert digests(out)[:FRAMES] == digests(reference)[:len(listed)]


def test_a_failing_run_on_the_loop_reports_one_line(small, tmp_path):
    async def broken(*_args, **_kwargs):
        raise RunError("Replicator refused\nsecond line")

    async def main():
        controller = RunController(async_backends={"replicator": AsyncBackend(generate=broken)})
        controller.start(small, tmp_path / "ds", backend="replicator")
        final = await controller.wait()
        assert controller.can_start
        return final

    final = asyncio.run(main())
    assert final.outcome is Outcome.FAILED and final.last_error == "Replicator refused"


def test_preview_through_the_loop_backend_delivers_on_the_loop_and_writes_nothing(small, tmp_path, monkeypatch):
    before = worker_threads()
    monkeypatch.chdir(tmp_path)
    log: dict = {}
    seen = []

    async def main():
        controller = RunController(async_backends={"replicator": loop_backend(log)})
        loop_thread = threading.get_ident()
        assert controller.preview(small, [3, 4], seed=7, backend="replicator", on_frame=lambda i, f: seen.append(
            (i, f.rgb.shape, threading.get_ident() == loop_thread)))
        assert controller.state is RunState.PREVIEWING
        return await controller.wait()

    final = asyncio.run(main())
    assert final.outcome is Outcome.COMPLETED and final.warnings == ()
    assert seen == [(3, (48, 64, 3), True), (4, (48, 64, 3), True)]
    assert (log["renders"], log["finished"], log["closed"]) == (2, 1, 1)
    assert list(tmp_path.iterdir()) == [] and worker_threads() <= before


def test_the_backends_are_asked_at_each_start(small, tmp_path):
    available: dict = {}
    log: dict = {}

    async def main():
        controller = RunController(async_backends=lambda: available)
        assert controller.async_backend("replicator") is None
        available["replicator"] = loop_backend(log)  # the extension was enabled meanwhile
        controller.start(small, tmp_path / "ds", frames=2, backend="replicator")
        return await controller.wait()

    assert asyncio.run(main()).outcome is Outcome.COMPLETED and log["renders"] == 2
