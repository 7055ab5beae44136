"""The render session: one stage built from the config plus one render backend, rendering any frame alone.

``RenderSession`` samples frame k's parameters, poses the stage, asks the backend for the frame and finishes it
(depth-sensor model, optical flow and object velocities, unrequested layers dropped); ``frames`` renders a run's
frames in order. ``generate`` (the run), the Kit window's preview, ``render-frame`` and the Replicator extension's
``generate_async`` all render through it. Also here: the ``RenderBackend`` protocol, ``make_backend`` (a backend
by name), ``MotionStates`` (what a backend supplying flow poses) and ``RunError``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pxr import Usd

from .config import SDGConfig
from .flow import flow_summary, object_velocities, optical_flow, poses_in_camera, velocities_from_poses
from .frame import FrameData
from .sampler import FrameParams, camera_path, sample_frame_params, sample_sequence_step
from .sensors import DEPTH_NOISE_STREAM, simulate_depth_sensor
from .stage import FrameWriter, apply_frame_params, build_stage, save_stage


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
    * ``prepare(...) -> job``, ``execute(job) -> FrameData`` and ``frames_in_flight > 0``: ``render`` in two
      halves, the first reading the stage, the second not and safe to run for several frames at once (the raster
      backend on the CPU); ``RenderSession.frames`` then overlaps them across frames.
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
        self._writer: FrameWriter | None = None
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
        self.pose(params)
        return params

    def pose(self, params: FrameParams) -> None:
        """Put the stage in the state ``params`` describe."""
        if self._writer is None or self._writer.stage is not self.stage:
            self._writer = FrameWriter(self.stage)
        self._writer.apply(params)

    def render(self, frame_index: int, seed: int | None = None) -> tuple[FrameParams, FrameData]:
        params = self.apply(frame_index, seed)
        frame = self.backend.render(
            self.stage, self.camera_path, tuple(self.config.camera.resolution), self.render_annotators, frame_index,
            **self.motion_kwargs(params),
        )
        return params, self.finish_frame(params, frame)

    def frames(self, frame_indices: Iterable[int], on_posed: Callable[[int], None] | None = None,
               holding: Callable[[], bool] | None = None) -> Iterator[tuple[FrameParams, FrameData]]:
        """``render`` of each index in order, as a generator. With a backend that renders in two halves
        (``prepare``, ``execute``) the next frame is prepared on this thread while up to
        ``backend.frames_in_flight`` earlier frames' passes run on others: the frames are the same, the CPU idles
        less. A backend that can (``prepare_params``: the raster backend) renders each frame from its parameters
        without the stage being posed for it, unless ``on_posed`` is given: ``on_posed(k)`` is called while the
        stage holds frame k's state (``generate --save-stages``). Optical flow poses the stage. While ``holding()``
        is True (a caller about to pause or stop) the frames in flight are yielded before the next index is taken
        from ``frame_indices``, which may then block or end."""
        depth = 0 if self.flow else int(getattr(self.backend, "frames_in_flight", 0))
        # Nothing but the backend looks at the stage: it may render the frames from their parameters alone.
        unposed = on_posed is None and not self.flow and hasattr(self.backend, "prepare_params")
        if depth == 0:
            for index in frame_indices:
                if unposed:
                    params, job = self._prepare(index, unposed)
                    frame = self.finish_frame(params, self.backend.execute(job))
                else:
                    params, frame = self.render(index)
                if on_posed is not None:
                    on_posed(index)
                yield params, frame
            return
        indices = iter(frame_indices)
        running: deque = deque()  # (params, future of execute), in frame order

        def hand_out(everything: bool = False) -> Iterator[tuple[FrameParams, FrameData]]:
            """The oldest frames: beyond ``depth`` in flight, or all of them (asked, or while ``holding()``)."""
            while running and (everything or len(running) > depth or (holding is not None and holding())):
                params, done = running.popleft()
                yield params, self.finish_frame(params, done.result())

        with ThreadPoolExecutor(depth, thread_name_prefix="sdgstudio-passes") as passes:
            while True:
                yield from hand_out()
                try:
                    index = next(indices, None)
                    if index is None:
                        break
                    params, job = self._prepare(index, unposed)
                    if on_posed is not None:
                        on_posed(index)
                except BaseException:  # the frames already rendering are still good: hand them out first
                    yield from hand_out(everything=True)
                    raise
                running.append((params, passes.submit(self.backend.execute, job)))
            yield from hand_out(everything=True)

    def _prepare(self, index: int, unposed: bool):
        """Frame ``index``'s parameters and the first half of its render (the backend's ``prepare``). ``unposed``:
        from the parameters alone where the backend can (``prepare_params``; the stage keeps the state it had),
        else from the stage posed for the frame."""
        params = sample_frame_params(self.config, self.config.seed, index)
        resolution = tuple(self.config.camera.resolution)
        job = None
        if unposed:
            job = self.backend.prepare_params(self.stage, params, self.camera_path, resolution,
                                              self.render_annotators, index)
        if job is None:
            self.pose(params)
            job = self.backend.prepare(self.stage, self.camera_path, resolution, self.render_annotators, index)
        return params, job

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
        self.pose(params)
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
        self.pose(params)

    def _add_velocities(self, frame: FrameData, params: FrameParams) -> None:
        """For a backend that supplied the flow: its summary, and object velocities from the stage posed at t+1
        (poses only, nothing rendered); the stage is put back in frame t's state."""
        if frame.optical_flow is None:
            raise RunError(f"the {getattr(self.backend, 'name', 'render')} backend supplied no optical flow")
        frame.extra["optical_flow"] = flow_summary(frame.optical_flow)
        seq = self.config.sequence
        sequence, step = divmod(frame.index, seq.length)
        self.pose(sample_sequence_step(self.config, params.seed, sequence, step + 1))
        try:
            later = poses_in_camera(self.stage, self.camera_path, [o.prim_path for o in frame.objects])
        finally:
            self.pose(params)
        velocities = velocities_from_poses(frame, later, 1.0 / seq.frame_rate)
        for obj in frame.objects:
            velocity = velocities.get(obj.prim_path)
            if velocity is not None:
                obj.linear_velocity, obj.angular_velocity = (tuple(v) for v in velocity)

    def save_stage(self, path: Path | str) -> None:
        save_stage(self.stage, path)
