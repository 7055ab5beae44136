"""Streaming dataset writer: a bounded queue in front of a thread pool that encodes, writes and lists frames.

The renderer calls ``submit``, which returns at once unless ``queue_depth`` frames are already waiting; only
then does it block (the time is counted in ``WriterProgress.blocked_seconds``). Worker threads encode each
layer (formats and the measurements behind them: ``encoders.py``), hash it and write it crash-safely, and the
frame is appended to ``manifest.jsonl`` in frame order (a small reorder buffer holds frames that finish
early). Threads suffice: deflate (ISA-L or zlib), SHA-256, numpy and file I/O release the GIL.

Durability policy (what a crash can and cannot leave):

1. each file: write to a temp name in the same folder, fsync, drop its pages from the page cache, rename
   over the final name (``manifest.write_file_durably``);
2. once the frames at the head of the frame order are all renamed: fsync the folder (the renames are
   durable), append their manifest lines in one write, flush, fsync the manifest.

So a frame the manifest lists has every file complete, even after a power loss, and a frame that
``progress`` counts survives one too. A crash can leave files of unlisted frames (rewritten on resume), a
torn last manifest line (ignored by readers, cut by the next ``start``) and temp files (``.*.tmp``, removed
by the next ``start``). Measured on the 2-core VM (bench/writer.py): workers wait in fsync ~15% of the time,
hidden by running 2 workers per core; fsyncing the manifest every frame instead of every ~30 made no
difference beyond run-to-run noise (59-64 vs 49-62 frames/s), so nothing is batched.

Usage (submit/close/abort from one thread, e.g. the controller's)::

    with DatasetWriter(out_dir) as writer:
        writer.start({"name": "bins", "config": config_dict})
        for frame, record in frames:
            writer.submit(frame, record)
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .encoders import LAYER_PREFIX, check_layer, encode_labels, encode_layer, encode_manifest_line, read_layer
from .frame import FrameData
from .manifest import (
    DatasetLock,
    DatasetLockedError,
    ManifestAppender,
    fsync_dir,
    remove_temp_files,
    write_dataset_info,
    write_file_durably,
)

__all__ = ["DatasetWriter", "WriterError", "WriterProgress", "read_layer"]

_log = logging.getLogger(__name__)
_STOP = object()  # queue sentinel: one per worker, sent by close/abort
_RATE_WINDOW_S = 5.0  # frames_per_second is measured over this many recent seconds
_ABORTED = object()  # result of a frame dropped because the writer stopped


def default_workers() -> int:
    """Two threads per core, 2 to 8: a worker waits in fsync ~15% of its time, so one per core leaves cores
    idle (bench on 2 cores: 2 workers 51-53 frames/s, 4: 58-60, 6: 60); 8 encode ~250 frames/s, more than a
    renderer makes, and cap the memory held by frames in flight (~23 MB each at 1280x720 with every layer).
    """
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


class WriterError(RuntimeError):
    """The writer could not finish a frame (encode or I/O failure) or cannot start; the message is one line."""


def _reason(exc: OSError) -> str:
    """"No space left on device" rather than "[Errno 28] No space left on device: '/long/.tmp/path'"."""
    return exc.strerror or str(exc)


class _FrameAborted(Exception):
    """Raised inside a worker to stop a frame midway when the writer is aborting."""


class _LayerFailed(Exception):
    """One layer of a frame could not be encoded or written; the message says which step and file."""


@dataclass(frozen=True)
class WriterProgress:
    """A snapshot of the writer's progress."""

    frames_written: int  #: frames listed in the manifest since start()
    frames_per_second: float  #: frames listed per second over the last 5 s (since start() if shorter)
    queue_depth: int  #: frames submitted and waiting for a worker
    bytes_written: int  #: bytes of the listed frames' files
    blocked_seconds: float  #: total seconds submit() waited for queue space
    elapsed_seconds: float  #: seconds since start()


@dataclass
class _FrameResult:
    line: bytes  # the encoded manifest line
    nbytes: int


class DatasetWriter:
    """Writes FrameData to per-frame files plus ``manifest.jsonl`` without stalling the renderer.

    Args:
        out_dir: dataset folder (created by ``start``).
        queue_depth: frames that may wait for a worker before ``submit`` blocks (default 2 x workers).
        workers: encoder/writer threads (default ``default_workers()``: 2 per core, 2 to 8).
        rgb_format: "png" (lossless, default) or "jpg" (JPEG quality 95).
        on_progress: called with a ``WriterProgress`` after frames are listed and once at the end, from a
            worker thread (or the closing thread); keep it short and thread-safe (marshal to the UI loop).
    """

    def __init__(self, out_dir: Path | str, *, queue_depth: int | None = None, workers: int | None = None,
                 rgb_format: str = "png", on_progress: Callable[[WriterProgress], None] | None = None) -> None:
        if rgb_format not in ("png", "jpg"):
            raise ValueError(f"rgb_format: expected 'png' or 'jpg', got {rgb_format!r}")
        self.out_dir = Path(out_dir)
        self.workers = default_workers() if workers is None else workers
        self.queue_depth = 2 * self.workers if queue_depth is None else queue_depth
        if self.workers < 1 or self.queue_depth < 1:
            raise ValueError(f"workers and queue_depth must be >= 1, got {self.workers} and {self.queue_depth}")
        self.rgb_format = rgb_format
        self._on_progress = on_progress
        self._queue: queue.Queue = queue.Queue(maxsize=self.queue_depth)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # guards the reorder buffer, the manifest and the counters
        self._progress_lock = threading.Lock()  # serializes on_progress calls
        self._stopping = threading.Event()  # set by abort(): drop queued frames, stop frames in flight
        self._order: deque[int] = deque()  # submitted frames not yet listed, in submission (= frame) order
        self._finished: dict[int, _FrameResult | object | None] = {}  # reorder buffer; None marks a failure
        self._error: WriterError | None = None
        self._manifest: ManifestAppender | None = None
        self._manifest_failed = False  # set when an append failed: a torn line may end the file
        self._dir_lock = DatasetLock(self.out_dir)
        self._state = "new"  # new -> started -> closed
        self._last_index: int | None = None
        self._frames_written = 0
        self._bytes_written = 0
        self._blocked = 0.0
        self._t0 = 0.0  # perf_counter() at start()
        self._t_end = 0.0  # perf_counter() when close()/abort() finished; progress() stops the clock there
        self._recent: deque[float] = deque()  # listing times within the rate window
        self._reported = -1  # frames_written of the last on_progress call

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self, dataset_info: dict) -> None:
        """Create the folder, take its lock, write ``dataset.json`` (``dataset_info`` + ``format_version``).

        An existing ``manifest.jsonl`` is appended to (resume); temp files a crashed run left are removed.
        """
        if self._state != "new":
            raise RuntimeError(f"start() called on a writer that is {self._state}")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._dir_lock.acquire()
        except DatasetLockedError as exc:
            raise WriterError(str(exc)) from exc
        except OSError as exc:
            raise WriterError(f"cannot lock {self.out_dir}: {_reason(exc)}") from exc
        if self._dir_lock.stale_holder:
            _log.warning("took over the stale lock of %s", self._dir_lock.stale_holder)
        try:
            remove_temp_files(self.out_dir)
            write_dataset_info(self.out_dir, dataset_info)
            self._manifest = ManifestAppender(self.out_dir)
        except (OSError, TypeError, ValueError) as exc:
            self._dir_lock.release()
            reason = _reason(exc) if isinstance(exc, OSError) else str(exc)
            raise WriterError(f"cannot start writing {self.out_dir}: {reason}") from exc
        self._t0 = time.perf_counter()
        self._state = "started"
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"sdgstudio-writer-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, frame: FrameData, record: dict) -> None:
        """Queue ``frame`` to be written; ``record`` becomes its manifest line plus "files" and "sha256".

        Returns at once unless the queue is full. Frame indices must increase (gaps allowed, e.g. on resume).
        The writer keeps references to the frame's arrays until they are written: do not modify them after
        submitting (copy views such as Replicator's ``get_data()`` first).

        Raises:
            WriterError: a frame submitted earlier failed (the writer accepts no more frames).
            ValueError: bad index, a layer breaking the FrameData contract, or a record that is not JSON.
        """
        if self._state != "started":
            raise RuntimeError(f"submit() needs a started writer, this one is {self._state}")
        self._raise_if_failed()
        index = frame.index
        if self._last_index is not None and index <= self._last_index:
            raise ValueError(f"frame {index}: frame indices must increase, the previous one was {self._last_index}")
        for name, array in frame.images().items():
            check_layer(name, array, frame.camera.height, frame.camera.width)
        if "files" in record or "sha256" in record:
            raise ValueError(f"frame {index}: record keys 'files' and 'sha256' are filled in by the writer")
        entry = {**record, "frame": record.get("frame", index)}
        if entry["frame"] != index:
            raise ValueError(f"record['frame'] = {entry['frame']!r} but the FrameData index is {index}")
        try:
            encode_manifest_line(entry)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"frame {index}: record is not JSON-serializable: {exc}") from exc
        with self._lock:
            self._order.append(index)
        self._last_index = index
        item = (frame, entry)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            waited_from = time.perf_counter()
            try:
                while True:
                    self._raise_if_failed()
                    try:
                        self._queue.put(item, timeout=0.05)
                        break
                    except queue.Full:
                        continue
            finally:
                self._blocked += time.perf_counter() - waited_from

    def close(self) -> None:
        """Write every queued frame, list it, fsync and release the folder.

        Raises:
            WriterError: the first failure of any frame (the manifest lists only frames before it).
        """
        if self._state == "started":
            self._shutdown()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop without writing queued frames; frames being encoded stop at their next file. Never raises.

        Whatever the manifest lists is complete; anything else is not done (its files may exist).
        """
        if self._state != "started":
            return
        self._stopping.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._shutdown()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif exc is self._error and self._state == "started":
            self._shutdown()  # our own failure is propagating: finish the frames in flight, list what is complete
        else:
            self.abort()

    @property
    def stale_lock_holder(self) -> str | None:
        """What a dead run's leftover lock file said ("pid 123 on host") if start() took it over, else None."""
        return self._dir_lock.stale_holder

    def progress(self) -> WriterProgress:
        """The current progress (also what ``on_progress`` receives)."""
        with self._lock:
            now = self._t_end or time.perf_counter()
            elapsed = now - self._t0 if self._t0 else 0.0
            self._forget_before(now - _RATE_WINDOW_S)
            window = min(_RATE_WINDOW_S, elapsed)
            return WriterProgress(
                frames_written=self._frames_written,
                frames_per_second=len(self._recent) / window if window > 0 else 0.0,
                queue_depth=self._queue.qsize(),
                bytes_written=self._bytes_written,
                blocked_seconds=self._blocked,
                elapsed_seconds=elapsed,
            )

    # -- internals ---------------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()
        self._state = "closed"
        self._t_end = time.perf_counter()
        try:
            self._manifest.sync()
        except OSError as exc:
            self._set_error(f"syncing {self._manifest.path.name} failed: {_reason(exc)}", exc)
        finally:
            try:
                self._manifest.close()
            finally:
                self._dir_lock.release()
        self._report_progress(final=True)

    def _forget_before(self, oldest: float) -> None:
        while self._recent and self._recent[0] < oldest:
            self._recent.popleft()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _set_error(self, message: str, cause: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = WriterError(message.replace("\n", " "))
                self._error.__cause__ = cause

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            frame, entry = item
            try:
                if self._stopping.is_set() or self._error is not None:
                    raise _FrameAborted  # not started: dropped (frames already in flight still finish)
                result = self._write_frame(frame, entry)
            except _FrameAborted:
                result = _ABORTED
            except _LayerFailed as exc:
                self._set_error(f"frame {frame.index}: {exc}", exc.__cause__)
                result = None
            except Exception as exc:  # noqa: BLE001 - any failure is reported through close()/submit()
                self._set_error(f"frame {frame.index}: {type(exc).__name__}: {exc}", exc)
                result = None
            del item, frame  # release the arrays before waiting for the next frame
            self._finish(entry["frame"], result)

    def _write_frame(self, frame: FrameData, entry: dict) -> _FrameResult:
        """Encode, hash and durably write every layer of one frame; returns its manifest line."""
        files: dict[str, str] = {}
        digests: dict[str, str] = {}
        nbytes = 0
        layers: list[tuple[str, object]] = list(frame.images().items()) + [("labels", None)]
        for name, array in layers:
            if self._stopping.is_set():
                raise _FrameAborted
            stem = f"{LAYER_PREFIX[name]}_{frame.index:06d}"
            try:
                if name == "labels":
                    suffix, data = ".json", encode_labels(frame.labels_json())
                else:
                    suffix, data = encode_layer(name, array, rgb_format=self.rgb_format)
            except Exception as exc:
                raise _LayerFailed(f"encoding {name} failed: {type(exc).__name__}: {exc}") from exc
            file_name = stem + suffix
            try:
                write_file_durably(self.out_dir / file_name, data)
            except OSError as exc:
                raise _LayerFailed(f"writing {file_name} failed: {_reason(exc)}") from exc
            files[name] = file_name
            digests[file_name] = hashlib.sha256(data).hexdigest()
            nbytes += len(data)
        return _FrameResult(encode_manifest_line({**entry, "files": files, "sha256": digests}), nbytes)

    def _finish(self, index: int, result: _FrameResult | object | None) -> None:
        """Record a frame's outcome and list every frame at the head of the order that is now written."""
        with self._lock:
            self._finished[index] = result
            ready: list[_FrameResult] = []
            while self._order and isinstance(self._finished.get(self._order[0]), _FrameResult):
                ready.append(self._finished.pop(self._order.popleft()))
            if not ready or self._manifest_failed:
                return
            try:
                fsync_dir(self.out_dir)
                self._manifest.append([r.line for r in ready])
                self._manifest.sync()
            except OSError as exc:
                self._manifest_failed = True  # a torn line may now end the file: append nothing after it
                failure = exc
            else:
                failure = None
                now = time.perf_counter()
                self._frames_written += len(ready)
                self._bytes_written += sum(r.nbytes for r in ready)
                self._recent.extend([now] * len(ready))
                self._forget_before(now - _RATE_WINDOW_S)
        if failure is not None:
            self._set_error(f"appending to manifest.jsonl failed: {_reason(failure)}", failure)
        else:
            self._report_progress()

    def _report_progress(self, final: bool = False) -> None:
        if self._on_progress is None:
            return
        with self._progress_lock:
            snapshot = self.progress()
            if snapshot.frames_written <= self._reported and not final:
                return  # another thread already reported this count: keep frames_written increasing
            self._reported = snapshot.frames_written
            try:
                self._on_progress(snapshot)
            except Exception:  # noqa: BLE001 - a broken display must not lose frames
                _log.warning("on_progress callback failed", exc_info=True)
