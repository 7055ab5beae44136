"""The generate run: a ``RenderSession``'s frames streamed to the ``DatasetWriter``, with the run's bookkeeping.

``generate`` checks the output folder (another live run, a dataset already there, what ``--resume`` can continue),
writes ``dataset.json`` (``dataset_info``), renders the frames the manifest lacks, streams them to the writer and
the streaming exports, and returns a ``RunSummary``. The steps are public so that the Replicator extension's
``generate_async`` runs the same ones on Kit's event loop. Rendering a frame is ``session.RenderSession``'s job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import SDGConfig, config_to_dict
from .frame import FrameData
from .sampler import FrameParams
from .session import RenderBackend, RenderSession, RunError, make_backend

if TYPE_CHECKING:
    from .writer import DatasetWriter, WriterProgress


def dataset_info(config: SDGConfig, backend: str) -> dict:
    """What ``dataset.json`` records: tool version, stable class ids, annotators and the full config."""
    return {
        "tool": "sdgstudio",
        "version": __version__,
        "name": config.name,
        "seed": config.seed,
        "backend": backend,
        "resolution": list(config.camera.resolution),
        "annotators": list(config.annotators),
        "classes": [{"id": config.class_id(name), "name": name} for name in config.classes],
        "config": config_to_dict(config),
    }


@dataclass
class RunSummary:
    out_dir: Path
    frames_written: int = 0
    objects_labeled: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  #: each distinct warning once, in order of appearance
    bytes_written: int = 0  #: bytes of the frames' files written by this run
    blocked_seconds: float = 0.0  #: seconds the renderer waited for the writer's queue
    exports: dict[str, dict] = field(default_factory=dict)  #: format -> export summary (config output.formats)

    def warn(self, message: str) -> None:
        if message not in self.warnings:  # a warning repeated every frame must not grow memory
            self.warnings.append(message)

    def add_frame(self, params: FrameParams, frame: FrameData) -> None:
        """Count one submitted frame, its visible objects and its warnings."""
        self.frames_written += 1
        self.objects_labeled += sum(1 for o in frame.objects if o.pixel_count > 0)
        for warning in params.warnings:
            self.warn(warning)

    def finish(self, started: float, writer: DatasetWriter) -> None:
        """Wall time since ``started`` (``time.perf_counter()``) and the writer's totals."""
        self.seconds = time.perf_counter() - started
        progress = writer.progress()
        self.bytes_written, self.blocked_seconds = progress.bytes_written, progress.blocked_seconds

    @property
    def frames_per_second(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else 0.0


def _config_differences(stored: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts."""
    keys = sorted(set(stored) | set(current))
    diffs = []
    for key in keys:
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}")
    return diffs


def check_resumable(out: Path, config: SDGConfig, backend: str) -> None:
    """Refuse to resume a folder that holds no dataset or one made with other settings (read-only check)."""
    from .manifest import read_dataset_info

    if not (out / "dataset.json").is_file():
        raise RunError(f"{out} holds no dataset to resume (no dataset.json); run without --resume")
    stored = read_dataset_info(out)
    diffs = _config_differences({k: v for k, v in stored.items() if k != "format_version"}, dataset_info(config, backend))
    if diffs:
        raise RunError(f"{out} was made with other settings ({', '.join(diffs[:5])} differ); cannot resume it")


def missing_frames(out: Path, frame_indices: Iterable[int]) -> list[int]:
    """The frames the manifest does not list yet. Call while holding the folder's lock: files of unlisted
    frames (rendered when a run was killed) are deleted, since they are re-rendered — nothing unlisted survives
    and nothing is duplicated."""
    from .manifest import listed_frames

    done = listed_frames(out)
    for path in out.iterdir():
        number = path.name.split(".")[0].rsplit("_", 1)[-1]
        if path.is_file() and len(number) == 6 and number.isdigit() and int(number) not in done:
            path.unlink()
    return [i for i in frame_indices if i not in done]


class _closing:
    """Calls the backend's ``close()`` (when it has one) however the run ends: Replicator releases its render
    product and annotators, the raster backend its caches."""

    def __init__(self, backend: RenderBackend):
        self.backend = backend

    def __enter__(self) -> RenderBackend:
        return self.backend

    def __exit__(self, *exc) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


def check_output_folder(out: Path, config: SDGConfig, backend: str, resume: bool,
                        resume_hint: str = "pass --resume to continue it") -> None:
    """Refuse a folder another live run writes, a dataset when not resuming, and one ``resume`` cannot continue."""
    from .manifest import lock_holder

    holder = lock_holder(out)
    if holder is not None:
        raise RunError(f"{out} is being written by another run ({holder}); wait for it or choose another folder")
    if resume:
        check_resumable(out, config, backend)
    elif (out / "manifest.jsonl").exists() or (out / "dataset.json").exists():
        raise RunError(f"{out} already holds a dataset; {resume_hint}, or choose an empty folder")


def start_writer(writer: DatasetWriter, info: dict, summary: RunSummary) -> None:
    """Start ``writer``: a folder another run took meanwhile is a ``RunError`` (exit 2); other start failures stay
    ``WriterError`` (exit 1); a lock a killed run left is taken over with a warning."""
    from .manifest import DatasetLockedError
    from .writer import WriterError

    try:
        writer.start(info)
    except WriterError as exc:
        if isinstance(exc.__cause__, DatasetLockedError):  # another run took the folder since the check
            raise RunError(str(exc)) from None
        raise
    if writer.stale_lock_holder:
        summary.warn(f"took over the lock a killed run left in {writer.out_dir} ({writer.stale_lock_holder})")


def generate(
    config: SDGConfig,
    out_dir: Path | str,
    frame_indices: Iterable[int],
    *,
    backend: str = "raster",
    device: str = "cpu",
    resume: bool = False,
    save_stages: bool = False,
    on_frame: Callable[[int, FrameData], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    holding: Callable[[], bool] | None = None,
    on_progress: Callable[[WriterProgress], None] | None = None,
) -> RunSummary:
    """Render ``frame_indices`` of ``config`` into ``out_dir``.

    ``out_dir`` must not already hold a dataset, unless ``resume``: then the frames its manifest lists are kept
    and only the missing ones are rendered (the config, seed and backend must be the ones it was made with).
    ``should_stop`` is asked before each frame (a stop leaves a dataset ``resume`` continues); it may block (a
    pause). ``holding`` (non-blocking) says the caller is about to pause or stop: the frames already in flight
    (``RenderSession.frames``) are then written before ``should_stop`` is asked, so a paused run holds none.
    ``on_frame`` is called after each frame is queued (this thread); ``on_progress`` with the writer's
    ``WriterProgress`` as frames are listed (a writer thread: keep it short, marshal to the UI).

    Raises:
        RunError: another live run writes ``out_dir``, or it holds a dataset that cannot be (re)used.
        WriterError: a frame could not be written (disk full, permission denied); listed frames are complete.
    """
    from .export import StreamingExport
    from .writer import DatasetWriter

    out = Path(out_dir)
    check_output_folder(out, config, backend, resume)
    session = RenderSession(config, make_backend(backend, config, device))
    summary = RunSummary(out_dir=out)
    start = time.perf_counter()
    exports = StreamingExport(out, list(config.output.formats))  # exports listed frames on its own thread

    def progress(writer_progress: WriterProgress) -> None:
        exports.notify()
        if on_progress is not None:
            on_progress(writer_progress)

    writer = DatasetWriter(out, rgb_format=config.output.rgb_format, on_progress=progress)
    start_writer(writer, dataset_info(config, backend), summary)
    with exports, writer, _closing(session.backend):
        exports.start()
        def wanted() -> Iterator[int]:
            for index in missing_frames(out, frame_indices) if resume else frame_indices:
                if should_stop is not None and should_stop():
                    return
                yield index

        def save_stage(index: int) -> None:
            (out / "stages").mkdir(exist_ok=True)
            session.save_stage(out / "stages" / f"frame_{index:06d}.usda")

        for params, frame in session.frames(wanted(), on_posed=save_stage if save_stages else None, holding=holding):
            index = frame.index
            writer.submit(frame, session.manifest_record(params, index))
            summary.add_frame(params, frame)
            if on_frame is not None:
                on_frame(index, frame)
    summary.exports = exports.summaries
    summary.finish(start, writer)
    return summary
