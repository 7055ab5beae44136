"""The generate pipeline: sample -> apply to the stage -> render -> stream to the writer.

``RenderSession`` owns one stage and one backend and renders any frame alone; the CLI, the Kit window's
preview and ``render-frame`` all use it. ``generate`` adds the writer and the run's bookkeeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pxr import Usd

from . import __version__
from .config import SDGConfig, config_to_dict
from .flow import flow_summary, object_velocities, optical_flow, poses_in_camera, velocities_from_poses
from .frame import FrameData
from .sampler import FrameParams, camera_path, sample_frame_params, sample_sequence_step
from .sensors import DEPTH_NOISE_STREAM, simulate_depth_sensor
from .stage import apply_frame_params, build_stage, save_stage

if TYPE_CHECKING:
    from .writer import DatasetWriter, WriterProgress


class RenderBackend(Protocol):
    """What every backend provides (raster here, Replicator inside Isaac Sim).

    Optional extras a backend may define (the Replicator backend does, see exts/sdgstudio.replicator):

    * ``build_stage(config) -> Usd.Stage``: the stage to render; ``RenderSession`` uses it instead of a fresh
      in-memory stage (Replicator renders the live ``omni.usd`` stage, so the scene is built there);
    * ``async render_async(...)``: the same as ``render`` without blocking Kit's event loop;
    * ``supplies_flow = True``: the backend renders ``optical_flow`` itself (Replicator: ``motion_vectors``).
      ``RenderSession`` then keeps ``optical_flow`` in the annotators it asks for and passes
      ``motion=MotionStates`` to ``render`` / ``render_async`` so the backend can pose the neighbouring states;
      it does not render them itself (``RenderSession._add_motion`` is the path of backends without flow);
    * ``prepare(...) -> job``, ``execute(job) -> FrameData`` and ``overlaps_frames = True``: ``render`` in two
      halves, the first reading the stage, the second not (the raster backend on the CPU);
      ``RenderSession.frames`` then overlaps them across frames.
    """

    def render(
        self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int], annotators: set[str], frame_index: int
    ) -> FrameData: ...


class RunError(RuntimeError):
    """A run that cannot start or continue, with a message fit for one line."""


def make_backend(name: str, config: SDGConfig, device: str = "cpu") -> RenderBackend:
    """The backend called ``name``; Replicator exists only inside Isaac Sim."""
    if name == "raster":
        from .raster import RasterBackend, RasterSettings

        return RasterBackend(class_names=list(config.classes), settings=RasterSettings(device=device))
    if name == "replicator":
        return _replicator_backend(config)
    raise RunError(f"unknown backend '{name}' (expected raster or replicator)")


def _replicator_backend(config: SDGConfig) -> RenderBackend:
    """The Replicator backend of the sdgstudio.replicator extension, when omni.replicator.core is importable."""
    import importlib
    import importlib.util

    try:
        available = importlib.util.find_spec("omni.replicator.core") is not None
    except (ImportError, ValueError):  # no "omni" package at all
        available = False
    if not available:
        raise RunError("the replicator backend runs inside Isaac Sim (see docs/isaac-sim.md); use --backend raster here")
    try:
        backend = importlib.import_module("sdgstudio.replicator.backend")
    except ImportError as exc:
        raise RunError(f"omni.replicator.core is available but the sdgstudio.replicator extension is not ({exc}); "
                       "enable it or put exts/sdgstudio.replicator on the Python path (docs/isaac-sim.md)") from None
    return backend.ReplicatorBackend(class_names=list(config.classes), rt_subframes=config.output.rt_subframes)


@dataclass
class MotionStates:
    """The states around frame t that a backend supplying flow renders (``RenderBackend.supplies_flow``).

    ``pose_next()`` / ``pose_previous()`` put the stage in the sequence's state at t+1 / t-1 (``previous`` is None
    unless ``sequence.backward_flow``), ``pose_current()`` puts it back in frame t's state. The backend must leave
    the stage in frame t's state.
    """

    stage: Usd.Stage
    current: FrameParams
    next: FrameParams
    previous: FrameParams | None = None

    def pose_next(self) -> None:
        apply_frame_params(self.stage, self.next)

    def pose_previous(self) -> None:
        if self.previous is None:
            raise ValueError("no previous state: sequence.backward_flow is off")
        apply_frame_params(self.stage, self.previous)

    def pose_current(self) -> None:
        apply_frame_params(self.stage, self.current)


class RenderSession:
    """One stage built from the config plus one backend; renders frame k of seed s on demand."""

    def __init__(self, config: SDGConfig, backend: RenderBackend, stage: Usd.Stage | None = None):
        self.config = config
        self.backend = backend
        backend_stage = getattr(backend, "build_stage", None)  # e.g. Replicator: the scene goes on the live stage
        if stage is None:
            stage = backend_stage(config) if backend_stage is not None else build_stage(config)
        self.stage = stage
        self.annotators = set(config.annotators)
        self.camera_path = camera_path(config)
        self.sensor = config.depth_sensor if config.depth_sensor.enabled else None
        self.flow = "optical_flow" in self.annotators
        #: the backend renders the flow itself (Replicator's motion_vectors); else ``_add_motion`` renders t+1
        self.backend_flow = self.flow and bool(getattr(backend, "supplies_flow", False))
        # The depth sensor model needs the exact depth and normals, flow the depth and ids, written or not.
        self.render_annotators = (self.annotators - {"optical_flow"}) | ({"depth", "normals"} if self.sensor else set())
        if self.flow:
            self.render_annotators |= {"depth", "instance_segmentation"}
        if self.backend_flow:
            self.render_annotators.add("optical_flow")

    def apply(self, frame_index: int, seed: int | None = None) -> FrameParams:
        """Put the stage in frame ``frame_index``'s randomized state (what the UI scrubber shows)."""
        params = sample_frame_params(self.config, self.config.seed if seed is None else seed, frame_index)
        apply_frame_params(self.stage, params)
        return params

    def render(self, frame_index: int, seed: int | None = None) -> tuple[FrameParams, FrameData]:
        params = self.apply(frame_index, seed)
        frame = self.backend.render(
            self.stage, self.camera_path, tuple(self.config.camera.resolution), self.render_annotators, frame_index,
            **self.motion_kwargs(params),
        )
        return params, self.finish_frame(params, frame)

    def frames(self, frame_indices: Iterable[int], on_posed: Callable[[int], None] | None = None
               ) -> Iterator[tuple[FrameParams, FrameData]]:
        """``render`` of each index in order, as a generator. With a backend that renders in two halves
        (``prepare``, ``execute``) the next frame is posed and read on this thread while the current frame's passes
        run on another: the frames are the same, the CPU idles less. ``on_posed(k)`` is called while the stage
        holds frame k's state (``generate --save-stages``)."""
        # Flow renders neighbouring states on the stage; a backend may also say that overlapping does not pay.
        if self.flow or not getattr(self.backend, "overlaps_frames", False):
            for index in frame_indices:
                params, frame = self.render(index)
                if on_posed is not None:
                    on_posed(index)
                yield params, frame
            return
        resolution = tuple(self.config.camera.resolution)
        with ThreadPoolExecutor(1, thread_name_prefix="sdgstudio-passes") as passes:
            running = None
            for index in frame_indices:
                params = self.apply(index)
                job = self.backend.prepare(self.stage, self.camera_path, resolution, self.render_annotators, index)
                if on_posed is not None:
                    on_posed(index)
                queued = (params, passes.submit(self.backend.execute, job))
                if running is not None:
                    yield running[0], self.finish_frame(running[0], running[1].result())
                running = queued
            if running is not None:
                yield running[0], self.finish_frame(running[0], running[1].result())

    async def render_async(self, frame_index: int, seed: int | None = None) -> tuple[FrameParams, FrameData]:
        """``render`` through the backend's ``render_async`` (a backend that renders on Kit's loop)."""
        params = self.apply(frame_index, seed)
        frame = await self.backend.render_async(
            self.stage, self.camera_path, tuple(self.config.camera.resolution), self.render_annotators, frame_index,
            **self.motion_kwargs(params),
        )
        return params, self.finish_frame(params, frame)

    def motion_kwargs(self, params: FrameParams) -> dict:
        """``{"motion": MotionStates}`` for a backend that supplies flow, else nothing (other backends' ``render``
        takes no such argument)."""
        if not self.backend_flow:
            return {}
        seq = self.config.sequence
        sequence, step = divmod(params.frame, seq.length)
        later = sample_sequence_step(self.config, params.seed, sequence, step + 1)
        earlier = sample_sequence_step(self.config, params.seed, sequence, step - 1) if seq.backward_flow else None
        return {"motion": MotionStates(self.stage, params, later, earlier)}

    def finish_frame(self, params: FrameParams, frame: FrameData) -> FrameData:
        """Post-process a backend's frame of ``params``: depth-sensor model, unrequested layers dropped, warnings.

        ``render`` calls it; an async loop (``sdgstudio.replicator.generate_async``) calls it after
        ``await backend.render_async(...)``.
        """
        if self.sensor is not None:
            frame.depth_sensor = simulate_depth_sensor(
                frame.depth, frame.normals, frame.camera, self.sensor, params.seed, params.frame
            )
        if self.backend_flow:
            self._add_velocities(frame, params)
        elif self.flow:
            self._add_motion(frame, params)
        for layer in ("depth", "normals", "instance_segmentation"):
            if layer not in self.annotators:
                setattr(frame, layer, None)
        if params.warnings:
            frame.extra.setdefault("warnings", []).extend(params.warnings)
        return frame

    def manifest_record(self, params: FrameParams, frame_index: int) -> dict:
        """The frame's manifest line (before the writer adds ``files`` and ``sha256``)."""
        record = {"frame": frame_index, "seed": self.config.seed, "params": params.to_json()}
        if self.sensor is not None:
            record["depth_sensor"] = self.sensor.model_dump() | {
                "noise_stream": [self.config.seed, frame_index, DEPTH_NOISE_STREAM]}
        return record

    def _render_state(self, params: FrameParams) -> FrameData:
        apply_frame_params(self.stage, params)
        return self.backend.render(
            self.stage, self.camera_path, tuple(self.config.camera.resolution),
            {"depth", "instance_segmentation"}, params.frame,
        )

    def _add_motion(self, frame: FrameData, params: FrameParams) -> None:
        """Forward (and backward) flow and object velocities: render the neighbouring states of the sequence.

        The states at t+1 and t-1 exist even past a sequence's ends (motion is linear in time), so every frame,
        rendered alone or in a run, gets the same flow. The stage is put back in frame t's state afterwards.
        """
        seq = self.config.sequence
        sequence, step = divmod(frame.index, seq.length)
        later = self._render_state(sample_sequence_step(self.config, params.seed, sequence, step + 1))
        frame.optical_flow = optical_flow(frame, later)
        frame.extra["optical_flow"] = flow_summary(frame.optical_flow)
        for obj in frame.objects:
            velocity = object_velocities(frame, later, 1.0 / seq.frame_rate).get(obj.prim_path)
            if velocity is not None:
                obj.linear_velocity, obj.angular_velocity = (tuple(v) for v in velocity)
        if seq.backward_flow:
            earlier = self._render_state(sample_sequence_step(self.config, params.seed, sequence, step - 1))
            frame.optical_flow_backward = optical_flow(frame, earlier)
        apply_frame_params(self.stage, params)

    def _add_velocities(self, frame: FrameData, params: FrameParams) -> None:
        """For a backend that supplied the flow: its summary, and object velocities from the stage posed at t+1
        (poses only, nothing rendered); the stage is put back in frame t's state."""
        if frame.optical_flow is None:
            raise RunError(f"the {getattr(self.backend, 'name', 'render')} backend supplied no optical flow")
        frame.extra["optical_flow"] = flow_summary(frame.optical_flow)
        seq = self.config.sequence
        sequence, step = divmod(frame.index, seq.length)
        apply_frame_params(self.stage, sample_sequence_step(self.config, params.seed, sequence, step + 1))
        try:
            later = poses_in_camera(self.stage, self.camera_path, [o.prim_path for o in frame.objects])
        finally:
            apply_frame_params(self.stage, params)
        velocities = velocities_from_poses(frame, later, 1.0 / seq.frame_rate)
        for obj in frame.objects:
            velocity = velocities.get(obj.prim_path)
            if velocity is not None:
                obj.linear_velocity, obj.angular_velocity = (tuple(v) for v in velocity)

    def save_stage(self, path: Path | str) -> None:
        save_stage(self.stage, path)


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
    on_progress: Callable[[WriterProgress], None] | None = None,
) -> RunSummary:
    """Render ``frame_indices`` of ``config`` into ``out_dir``.

    ``out_dir`` must not already hold a dataset, unless ``resume``: then the frames its manifest lists are kept
    and only the missing ones are rendered (the config, seed and backend must be the ones it was made with).
    ``should_stop`` is asked before each frame (a stop leaves a dataset ``resume`` continues).
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

        for params, frame in session.frames(wanted(), on_posed=save_stage if save_stages else None):
            index = frame.index
            writer.submit(frame, session.manifest_record(params, index))
            summary.add_frame(params, frame)
            if on_frame is not None:
                on_frame(index, frame)
    summary.exports = exports.summaries
    summary.finish(start, writer)
    return summary
