"""What the run controller reports: ``Progress`` snapshots, their ``RunState`` and ``Outcome``, and ``one_line``.

The work of a run or preview (in the worker thread, or a task on the loop) counts into a ``WorkerReport`` under its
lock; ``controller.RunController`` folds those counts into an immutable ``Progress`` on the loop's thread and
publishes it to its subscribers (the Kit window, tests). ``one_line`` is how a failure reads in ``last_error``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from .config import ConfigError

_RATE_WINDOW_S = 5.0  #: frames per second are measured over this many recent seconds
_MAX_WARNINGS = 20  #: distinct warnings kept per run


class RunState(StrEnum):
    IDLE = "idle"
    PREVIEWING = "previewing"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"


class Outcome(StrEnum):
    NONE = ""  #: nothing finished yet (or the activity is still going)
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class Progress:
    """One snapshot of what the controller is doing; subscribers receive a new one whenever something changed."""

    state: RunState = RunState.IDLE
    activity: str = ""  #: "generate" or "preview" (the current or last one)
    frames_done: int = 0  #: frames of the dataset (or preview) finished, including frames a resumed run kept
    frames_total: int = 0
    frames_this_run: int = 0  #: frames rendered by this run
    frames_per_second: float = 0.0  #: over the last few seconds of running (0 while paused)
    eta_seconds: float | None = None  #: None while unknown or paused
    queue_depth: int = 0  #: frames waiting for the writer
    warnings: tuple[str, ...] = ()  #: distinct warnings of this run (sampler placement, backend fallbacks)
    last_error: str | None = None  #: one line: why the last run or preview failed
    out_dir: Path | None = None
    outcome: Outcome = Outcome.NONE  #: how the last activity ended
    resumed: bool = False  #: this run continued a dataset already in out_dir
    parked: bool = False  #: paused, and the worker has finished its frame and waits before the next one

    @property
    def fraction(self) -> float:
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total else 0.0

    @property
    def busy(self) -> bool:
        return self.state is not RunState.IDLE

    @property
    def resumable(self) -> bool:
        """A generate run that ended early left frames of a dataset that ``start`` continues."""
        return (self.activity == "generate" and self.outcome in (Outcome.STOPPED, Outcome.FAILED)
                and self.frames_done > 0 and self.out_dir is not None and (self.out_dir / "dataset.json").is_file())


def one_line(exc: BaseException) -> str:
    """An exception as the one line a user sees (ConfigError lists its problems)."""
    if isinstance(exc, ConfigError):
        return "; ".join(f"{path}: {msg}" for path, msg in exc.problems)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class WorkerReport:
    """What the worker (thread or loop task) reports; read by the loop thread under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    frames_before: int = 0
    frames_this_run: int = 0
    stamps: deque = field(default_factory=deque)  # perf_counter of each finished frame
    segment_start: float = 0.0  # start of the current unpaused stretch
    queue_depth: int = 0
    parked: bool = False
    warnings: list[str] = field(default_factory=list)
    previews: deque = field(default_factory=deque)  # (frame index, FrameData) not yet handed to on_frame

    def add_warnings(self, messages: Iterable[str]) -> None:
        for message in messages:
            if message not in self.warnings and len(self.warnings) < _MAX_WARNINGS:
                self.warnings.append(message)

    def frame_done(self) -> None:
        now = time.perf_counter()
        self.frames_this_run += 1
        self.stamps.append(now)
        while self.stamps and self.stamps[0] < now - _RATE_WINDOW_S:
            self.stamps.popleft()

    def rate(self) -> float:
        now = time.perf_counter()
        since = max(now - _RATE_WINDOW_S, self.segment_start)
        span = now - since
        count = sum(1 for t in self.stamps if t >= since)
        return count / span if span > 0 else 0.0
