"""A UI-free run controller: one generate run or one preview at a time, driven from an asyncio loop.

State machine (``RunState``)::

    IDLE -> PREVIEWING -> IDLE                      preview(); stop() ends it early
    IDLE -> RUNNING <-> PAUSED -> STOPPING -> IDLE  start(), pause()/resume(), stop()
            RUNNING -> IDLE                         the run completed or failed

Rendering blocks, so it runs in one worker thread (``generate`` / ``RenderSession``) while the controller's own
asyncio task awaits ``tick`` (Kit: ``next_update_async``) and publishes ``Progress`` snapshots to subscribers on
the loop's thread: the loop keeps running and the window only subscribes. The controller keeps its task (so it
can be cancelled and its outcome seen) and refuses a second start while busy, so a double click on Generate
cannot start two runs.

Pause parks the worker *between* frames (in ``generate``'s ``should_stop``), so no frame is skipped or rendered
twice; Stop ends the run at the next frame boundary, the writer lists what was finished and the folder is a
dataset that ``start`` (``resume`` semantics of ``sdgstudio generate --resume``) continues.

A backend that must render on the loop itself (Replicator awaits ``rep.orchestrator.step_async``) plugs in as an
``AsyncBackend``: its ``generate`` coroutine (and its preview backend's ``render_async``) run as a second task on
the same loop, never in the worker thread. The same states and events apply: pause parks that task in the awaited
``before_frame`` hook (awaiting ``tick``, so the loop keeps running), stop ends it at the next frame boundary.

This module is the state machine and its driving (commands, the worker thread, polling, publishing). What it
publishes (``Progress``, ``RunState``, ``Outcome``, ``one_line``) is in ``progress``; what a run or preview does,
in the thread or on the loop, and ``AsyncBackend`` are in ``activities``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from .activities import (
    Activity,
    AsyncBackend,
    AsyncBackends,
    Hooks,
    generate_activity,
    preview_activity,
    preview_activity_on_loop,
)
from .config import ConfigError, SDGConfig
from .frame import FrameData
from .generate import generate
from .progress import Outcome, Progress, RunState, WorkerReport, one_line
from .session import RenderBackend, RunError, make_backend

_log = logging.getLogger(__name__)


class RunController:
    """Owns one worker thread and one asyncio task; see the module docstring for the states.

    Args:
        tick: awaited between progress polls (Kit: ``omni.kit.app.get_app().next_update_async``).
        spawn: schedules the controller's coroutine on the loop and returns its task
            (Kit: ``omni.kit.async_engine.run_coroutine``; default ``asyncio.ensure_future``).
        device: Warp device of the raster backend.
        backend_factory: ``(name, config, device) -> RenderBackend`` for previews (default ``make_backend``).
        generate_fn: the run itself in the worker thread (default ``generate``).
        async_backends: backend name -> ``AsyncBackend`` rendering on the loop instead (the window passes
            ``{"replicator": ...}`` when the sdgstudio.replicator extension is enabled), or a function returning
            that mapping, asked at each start and preview.
    """

    def __init__(self, *, tick: Callable[[], Awaitable[Any]] | None = None,
                 spawn: Callable[[Coroutine], asyncio.Future] | None = None, device: str = "cpu",
                 backend_factory: Callable[[str, SDGConfig, str], RenderBackend] = make_backend,
                 generate_fn: Callable[..., Any] = generate, async_backends: AsyncBackends | None = None) -> None:
        self._tick = tick or (lambda: asyncio.sleep(0.02))
        self._spawn = spawn or asyncio.ensure_future
        self._device = device
        self._backend_factory = backend_factory
        self._generate = generate_fn
        self._async_backends = async_backends
        self._loop_work: asyncio.Future | None = None  # an AsyncBackend's run or preview, awaited by the task
        self._subscribers: dict[int, Callable[[Progress], None]] = {}
        self._next_id = 0
        self._progress = Progress()
        self._task: asyncio.Future | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused: the worker parks before its next frame
        self._shared = WorkerReport()

    # ------------------------------------------------------------------ observing

    @property
    def progress(self) -> Progress:
        return self._progress

    @property
    def state(self) -> RunState:
        return self._progress.state

    @property
    def task(self) -> asyncio.Future | None:
        """The current (or last) activity's task."""
        return self._task

    @property
    def can_start(self) -> bool:
        """Idle, and no run on the loop is still finishing its last frame (after ``shutdown``)."""
        return self._progress.state is RunState.IDLE and (self._loop_work is None or self._loop_work.done())

    def subscribe(self, fn: Callable[[Progress], None]) -> Callable[[], None]:
        """Call ``fn(progress)`` on every change (on the loop's thread); returns the function that unsubscribes."""
        self._next_id += 1
        key = self._next_id
        self._subscribers[key] = fn
        return lambda: self._subscribers.pop(key, None)

    async def wait(self) -> Progress:
        """Until the current activity ends; returns the final progress."""
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task})
        return self._progress

    # ------------------------------------------------------------------ commands

    def start(self, config: SDGConfig, out_dir: Path | str, *, frames: int | Iterable[int] | None = None,
              backend: str | None = None, resume: bool | None = None) -> bool:
        """Generate ``frames`` (a count or frame indices; default ``output.frames``) into ``out_dir``.

        ``resume=None`` continues the dataset already in ``out_dir`` (as ``--resume``) and starts a new one in an
        empty folder. Returns False, doing nothing, unless idle.
        """
        if not self.can_start:
            return False
        out = Path(out_dir)
        count = config.output.frames if frames is None else frames
        indices = list(range(count)) if isinstance(count, int) else list(count)
        resume = (out / "dataset.json").is_file() if resume is None else resume
        name = backend or config.output.backend
        on_loop = self.async_backend(name)
        self._begin(Progress(state=RunState.RUNNING, activity="generate", frames_total=len(indices), out_dir=out,
                             resumed=resume))
        self._launch(self._run(generate_activity(self._hooks(), config, out, indices, name, resume, self._generate,
                                                 on_loop)))
        return True

    def preview(self, config: SDGConfig, frame_indices: Iterable[int], *,
                on_frame: Callable[[int, FrameData], None], seed: int | None = None,
                backend: str | None = None) -> bool:
        """Render ``frame_indices`` through the backend without writing anything; ``on_frame(index, frame)`` runs
        on the loop's thread as each finishes. Returns False, doing nothing, unless idle."""
        if not self.can_start:
            return False
        indices = list(frame_indices)
        name = backend or config.output.backend
        on_loop = self.async_backend(name)
        self._begin(Progress(state=RunState.PREVIEWING, activity="preview", frames_total=len(indices)))
        if on_loop is not None and on_loop.make_backend is not None:
            self._launch(self._run(preview_activity_on_loop(self._hooks(), on_loop, config, indices, seed, on_frame)))
        else:
            self._launch(self._run(preview_activity(self._hooks(), config, indices, seed, name, on_frame,
                                                    self._backend_factory)))
        return True

    def async_backend(self, name: str) -> AsyncBackend | None:
        """The ``AsyncBackend`` that renders ``name`` on the loop, if one was given (else the worker thread runs)."""
        backends = self._async_backends
        if callable(backends):
            backends = backends()
        return (backends or {}).get(name)

    def pause(self) -> bool:
        if self._progress.state is not RunState.RUNNING:
            return False
        self._running.clear()
        self._set(state=RunState.PAUSED, frames_per_second=0.0, eta_seconds=None)
        return True

    def resume(self) -> bool:
        if self._progress.state is not RunState.PAUSED:
            return False
        with self._shared.lock:
            self._shared.segment_start = time.perf_counter()
            self._shared.stamps.clear()
        self._running.set()
        self._set(state=RunState.RUNNING)
        return True

    def stop(self) -> bool:
        """End the run (or preview) after the frame in progress; the dataset stays resumable."""
        if self._progress.state not in (RunState.RUNNING, RunState.PAUSED, RunState.PREVIEWING):
            return False
        self._stop.set()
        self._running.set()
        self._set(state=RunState.STOPPING)
        return True

    def shutdown(self) -> None:
        """Stop whatever runs, cancel the task and forget the subscribers (the window is going away)."""
        self._subscribers.clear()
        self._stop.set()
        self._running.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False)  # the worker finishes its frame; the writer closes the dataset
            self._executor = None

    # ------------------------------------------------------------------ internals

    def _begin(self, progress: Progress) -> None:
        self._stop.clear()
        self._running.set()
        self._shared = WorkerReport(segment_start=time.perf_counter())
        self._progress = progress
        self._publish()

    def _launch(self, coro: Coroutine) -> None:
        try:
            self._task = self._spawn(coro)
        except BaseException:
            coro.close()
            self._progress = replace(self._progress, state=RunState.IDLE)
            raise

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdgstudio-run")
        return self._executor

    def _hooks(self) -> Hooks:
        """What an activity built now (after ``_begin``) may call: this activity's counters, the pause/stop checks
        (thread and loop), publishing."""
        return Hooks(shared=self._shared, should_stop=self._should_stop, holding=self._holding,
                     before_frame=self._before_frame, poll=self._poll, device=self._device)

    async def _before_frame(self) -> bool:
        """Awaited on the loop before each frame of an ``AsyncBackend``: parks while paused (awaiting ticks, so the
        loop keeps running), True once stopped."""
        if not self._running.is_set() and not self._stop.is_set():
            shared = self._shared
            with shared.lock:
                shared.parked = True
            self._poll()
            while not self._running.is_set() and not self._stop.is_set():
                await self._tick()
            with shared.lock:
                shared.parked = False
        return self._stop.is_set()

    def _holding(self) -> bool:
        """A pause or stop is asked for (the run then writes the frames it has in flight before parking)."""
        return not self._running.is_set() or self._stop.is_set()

    def _should_stop(self) -> bool:
        """Asked by the worker before each frame: parks while paused, True once stopped."""
        if not self._running.is_set() and not self._stop.is_set():
            shared = self._shared
            with shared.lock:
                shared.parked = True
            while not self._running.is_set() and not self._stop.is_set():
                self._running.wait(0.05)
            with shared.lock:
                shared.parked = False
        return self._stop.is_set()

    def _set(self, **changes: Any) -> None:
        self._progress = replace(self._progress, **changes)
        self._publish()

    def _publish(self) -> None:
        for fn in list(self._subscribers.values()):
            try:
                fn(self._progress)
            except Exception:
                _log.warning("a progress subscriber raised", exc_info=True)

    def _poll(self) -> None:
        """Fold the worker's counters into a new snapshot; publish when it differs."""
        shared = self._shared
        with shared.lock:
            done = shared.frames_before + shared.frames_this_run
            rate = shared.rate() if self._progress.state is RunState.RUNNING else 0.0
            snapshot = replace(self._progress, frames_done=done, frames_this_run=shared.frames_this_run,
                               queue_depth=shared.queue_depth, warnings=tuple(shared.warnings), parked=shared.parked)
        remaining = max(0, snapshot.frames_total - done)
        eta = remaining / rate if rate > 0 else (0.0 if remaining == 0 else None)
        snapshot = replace(snapshot, frames_per_second=round(rate, 2),
                           eta_seconds=None if snapshot.state is RunState.PAUSED else eta)
        if snapshot != self._progress:
            self._progress = snapshot
            self._publish()

    async def _await_worker(self, fn: Callable[[], Any], on_tick: Callable[[], None] | None = None) -> Any:
        """Await ``fn`` in the worker thread, polling progress once per tick."""
        return await self._poll_until_done(self._worker().submit(fn), on_tick)

    async def _poll_until_done(self, future: Any, on_tick: Callable[[], None] | None) -> Any:
        """Tick, call ``on_tick`` and poll progress until ``future`` (thread or loop) is done; its result.

        Cancelled while waiting (``shutdown``): the work is asked to stop at its next frame boundary.
        """
        try:
            while not future.done():
                await self._tick()
                if on_tick is not None:
                    on_tick()
                self._poll()
        except asyncio.CancelledError:
            self._stop.set()
            self._running.set()
            raise
        return future.result()

    async def _await_loop(self, work: Callable[[], Coroutine], on_tick: Callable[[], None] | None = None) -> Any:
        """Run ``work()`` as a second task on this loop (an ``AsyncBackend``), polling progress once per tick.

        Cancelling the controller's task (``shutdown``) stops that work at its next frame boundary instead of
        cancelling it mid-frame: it finishes the frame and closes its dataset, as the worker thread does.
        """
        task = asyncio.ensure_future(work())
        self._loop_work = task
        task.add_done_callback(self._loop_work_done)
        return await self._poll_until_done(task, on_tick)

    def _loop_work_done(self, task: asyncio.Future) -> None:
        """Retrieve the outcome of loop work whose awaiting task was cancelled (else asyncio logs it as lost)."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self._task is not None and self._task.cancelled():
            _log.warning("the %s ended with an error after shutdown: %s", self._progress.activity, one_line(exc))

    def _finish(self, outcome: Outcome, error: str | None = None) -> None:
        self._poll()
        self._set(state=RunState.IDLE, outcome=outcome, last_error=error, frames_per_second=0.0, parked=False,
                  eta_seconds=None if outcome is not Outcome.COMPLETED else 0.0, queue_depth=0)

    async def _run(self, activity: Activity) -> None:
        """Run ``activity.work`` in the worker thread (``on_loop``: the coroutine ``work()`` on this loop); whatever
        happens, end IDLE with an outcome (and one-line error)."""
        outcome, error = Outcome.FAILED, None
        try:
            if activity.on_loop:
                await self._await_loop(activity.work, activity.on_tick)
            else:
                await self._await_worker(activity.work, activity.on_tick)
            if activity.on_tick is not None:
                activity.on_tick()
            outcome = Outcome.COMPLETED if activity.finished() else Outcome.STOPPED
        except asyncio.CancelledError:
            outcome = Outcome.STOPPED
            raise
        except (RunError, ConfigError, OSError, ValueError) as exc:  # user-facing: one line, no traceback
            error = one_line(exc)
        except Exception as exc:
            _log.warning("the %s worker failed", self._progress.activity, exc_info=True)
            error = one_line(exc)
        finally:
            self._finish(outcome, error)
