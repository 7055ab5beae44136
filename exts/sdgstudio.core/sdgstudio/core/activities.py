"""What the run controller runs: a generate run or a preview, in its worker thread or as a task on its loop.

Each builder returns an ``Activity``: the work (a function for the worker thread, or, for an ``AsyncBackend`` that
renders on the loop, a coroutine function), how a finished activity tells completed from stopped, and what to do
on the loop's thread each tick (a preview hands its frames over). The work counts frames and warnings into the
controller's ``WorkerReport`` and asks its ``Hooks`` before each frame whether to stop (parking there while
paused). ``controller.RunController`` owns the states and drives an ``Activity``; nothing here touches them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import SDGConfig
from .frame import FrameData
from .progress import WorkerReport
from .session import RenderBackend, RenderSession, RunError

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AsyncBackend:
    """A backend that renders on the controller's event loop (Replicator inside Kit), not in the worker thread.

    Attributes:
        generate: ``async (config, out_dir, frame_indices, *, resume, on_frame, before_frame, on_progress)``
            (``sdgstudio.replicator.generate.generate_async``). It awaits ``before_frame()`` before each frame and
            ends there (a resumable dataset) when that returns True.
        make_backend: ``(config) -> backend`` whose ``async render_async`` renders previews (``RenderSession``
            ``render_async``); None: previews go through ``backend_factory`` in the worker thread.
    """

    generate: Callable[..., Awaitable[Any]]
    make_backend: Callable[[SDGConfig], Any] | None = None


AsyncBackends = Mapping[str, AsyncBackend] | Callable[[], Mapping[str, AsyncBackend]]


@dataclass(frozen=True)
class Hooks:
    """What the controller lends an activity."""

    shared: WorkerReport  #: this activity's counters
    should_stop: Callable[[], bool]  #: asked in the worker thread before each frame: parks while paused
    holding: Callable[[], bool]  #: True once a pause or stop is asked for (never blocks)
    before_frame: Callable[[], Awaitable[bool]]  #: the same, awaited on the loop before each frame
    poll: Callable[[], None]  #: on the loop's thread: publish the counters now
    device: str  #: Warp device of the raster backend


@dataclass(frozen=True)
class Activity:
    """One generate run or preview for the controller to drive."""

    work: Callable[[], Any]  #: runs in the worker thread; ``on_loop``: ``work()`` is a coroutine run on the loop
    finished: Callable[[], bool]  #: asked once ``work`` returned: True when every frame was done (else stopped)
    on_tick: Callable[[], None] | None = None  #: called on the loop's thread each tick and once at the end
    on_loop: bool = False


def generate_activity(hooks: Hooks, config: SDGConfig, out: Path, indices: list[int], backend: str, resume: bool,
                      generate_fn: Callable[..., Any], on_loop: AsyncBackend | None = None) -> Activity:
    """A generate run: ``generate_fn`` in the worker thread, or ``on_loop.generate`` on the loop."""
    shared = hooks.shared

    def on_frame(_index: int, frame: FrameData) -> None:
        with shared.lock:
            shared.frame_done()
            shared.add_warnings(frame.extra.get("warnings", []))

    def on_progress(writer_progress: Any) -> None:
        with shared.lock:
            shared.queue_depth = int(writer_progress.queue_depth)

    def count_kept() -> None:
        if resume:
            from .generate import check_resumable
            from .manifest import listed_frames

            check_resumable(out, config, backend)  # refuse before counting another dataset's frames as ours
            kept = len(listed_frames(out) & set(indices))
            with shared.lock:
                shared.frames_before = kept

    def ended(summary: Any) -> None:
        with shared.lock:
            shared.add_warnings(getattr(summary, "warnings", []))

    def work() -> None:
        count_kept()
        ended(generate_fn(config, out, indices, backend=backend, device=hooks.device, resume=resume,
                          on_frame=on_frame, should_stop=hooks.should_stop, holding=hooks.holding,
                          on_progress=on_progress))

    def on_frame_on_loop(index: int, frame: FrameData) -> None:
        on_frame(index, frame)
        hooks.poll()  # on the loop's thread already: publish each frame as it ends

    async def work_on_loop() -> None:
        count_kept()
        ended(await on_loop.generate(config, out, indices, resume=resume, on_frame=on_frame_on_loop,
                                     before_frame=hooks.before_frame, on_progress=on_progress))

    def finished() -> bool:
        with shared.lock:
            return shared.frames_before + shared.frames_this_run >= len(indices)

    if on_loop is not None:
        return Activity(work_on_loop, finished, on_loop=True)
    return Activity(work, finished)


def preview_activity(hooks: Hooks, config: SDGConfig, indices: list[int], seed: int | None, backend: str,
                     on_frame: Callable[[int, FrameData], None],
                     backend_factory: Callable[[str, SDGConfig, str], RenderBackend]) -> Activity:
    """A preview in the worker thread (falling back to the raster backend); frames reach ``on_frame`` on the
    loop's thread, each tick."""
    shared = hooks.shared

    def work() -> None:
        try:
            chosen = backend_factory(backend, config, hooks.device)
        except RunError as exc:
            with shared.lock:
                shared.add_warnings([f"{exc}; the preview uses the raster backend"])
            chosen = backend_factory("raster", config, hooks.device)
        session = RenderSession(config, chosen)
        for index in indices:
            if hooks.should_stop():
                break
            _params, frame = session.render(index, seed)
            with shared.lock:
                shared.frame_done()
                shared.add_warnings(frame.extra.get("warnings", []))
                shared.previews.append((index, frame))

    def deliver() -> None:
        """Hand finished thumbnails to ``on_frame`` on the loop's thread."""
        while True:
            with shared.lock:
                if not shared.previews:
                    return
                index, frame = shared.previews.popleft()
            try:
                on_frame(index, frame)
            except Exception:
                _log.warning("the preview frame callback raised", exc_info=True)

    def finished() -> bool:
        with shared.lock:
            return shared.frames_this_run >= len(indices)

    return Activity(work, finished, deliver)


def preview_activity_on_loop(hooks: Hooks, on_loop: AsyncBackend, config: SDGConfig, indices: list[int],
                             seed: int | None, on_frame: Callable[[int, FrameData], None]) -> Activity:
    """A preview through an ``AsyncBackend``'s backend (``render_async``) on the loop; nothing is written."""
    shared = hooks.shared

    async def work() -> None:
        backend = on_loop.make_backend(config)
        try:
            session = RenderSession(config, backend)
            for index in indices:
                if await hooks.before_frame():
                    break
                _params, frame = await session.render_async(index, seed)
                with shared.lock:
                    shared.frame_done()
                    shared.add_warnings(frame.extra.get("warnings", []))
                hooks.poll()
                try:
                    on_frame(index, frame)
                except Exception:
                    _log.warning("the preview frame callback raised", exc_info=True)
            finish = getattr(backend, "finish_async", None)
            if finish is not None:
                await finish()
        finally:
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    def finished() -> bool:
        with shared.lock:
            return shared.frames_this_run >= len(indices)

    return Activity(work, finished, on_loop=True)
