"""ReplicatorBackend: SDG Studio's render interface on omni.replicator.core and the live RTX stage (Kit only).

The shape follows Isaac Sim's own Python-randomized Replicator loops (the Synthetic Data Recorder, the randomizer
snippets; ../shared/API_FACTS.md A3): the stage is edited in Python (``sdgstudio.core.stage.apply_frame_params``),
then ``await rep.orchestrator.step_async(rt_subframes=...)`` renders it and each annotator's ``get_data`` is read.

Per (camera, resolution, annotators) the backend creates one render product on the camera prim and attaches the
annotators ``plan.replicator_annotators`` lists, one annotator per render product (Replicator 1.12 attaches no
list). Per frame: step, ``get_data(do_array_copy=True)`` for every annotator (the default returns a view the next
render overwrites, and our writer keeps frames), ``scene.read_scene`` on the stage, ``normalize.frame_from_payloads``.

``render`` (synchronous, for ``sdgstudio.core.generate`` under Isaac Sim's ``SimulationApp``) steps with
``rep.orchestrator.step``; inside an extension Replicator refuses synchronous steps, so Kit code awaits
``render_async`` (``generate.generate_async`` does).

**Optical flow** (``supplies_flow``): ``motion_vectors`` holds, per pixel of a render, the vector to where its
surface point was in the *previous* render (``normalize.flow_from_motion_vectors``). So after the frame's own step
the backend renders the sequence's state t+1 (one subframe), poses state t again and renders it (one subframe):
that render's ``motion_vectors`` is the forward flow t -> t+1 at frame t's pixels. With ``sequence.backward_flow``
the same with state t-1. One subframe each, because with several subframes of an unchanged stage the last one's
motion would be that of the unchanged stage (nothing). Three steps per frame (five with backward flow) instead of
one; ``RenderSession`` passes the states (``MotionStates``) and renders nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable

import carb.settings
import omni.replicator.core as rep
import omni.usd
from pxr import Usd
from sdgstudio.core.config import SDGConfig
from sdgstudio.core.frame import FrameData
from sdgstudio.core.session import MotionStates, RunError
from sdgstudio.core.stage import build_stage

from .normalize import DEFAULT_MOTION_VECTOR_UNITS, MOTION_VECTOR_UNITS, frame_from_payloads
from .plan import replicator_annotators
from .scene import read_scene

CAPTURE_ON_PLAY = "/omni/replicator/captureOnPlay"
RENDER_PRODUCT_NAME = "SDGStudio"
#: Units of ``motion_vectors`` (``normalize.MOTION_VECTOR_UNITS``; "pixels" unless this setting says otherwise).
MOTION_VECTOR_UNITS_SETTING = "/exts/sdgstudio.replicator/motionVectorUnits"
MOTION_VECTORS = "motion_vectors"
#: Subframes of each step that renders a neighbouring state or captures the motion vectors (module docstring).
MOTION_RT_SUBFRAMES = 1


def build_on_live_stage(config: SDGConfig) -> Usd.Stage:
    """Build the config's scene on the live ``omni.usd`` stage: the shared stage builder makes it in memory, and
    its root layer replaces the live stage's (session layer untouched). Returns the live stage."""
    stage = omni.usd.get_context().get_stage()
    if stage is None:
        raise RunError("no USD stage is open in Kit (omni.usd.get_context().get_stage() is None)")
    built = build_stage(config)
    stage.GetRootLayer().TransferContent(built.GetRootLayer())
    return stage


class ReplicatorBackend:
    """Renders with Replicator on the live stage; ``render_async`` inside Kit, ``render`` under SimulationApp."""

    name = "replicator"
    supplies_flow = True  #: ``optical_flow`` comes from ``motion_vectors`` (module docstring)

    def __init__(self, class_names: list[str], rt_subframes: int = 4, delta_time: float = 0.0,
                 render_product_name: str = RENDER_PRODUCT_NAME, motion_vector_units: str | None = None) -> None:
        self.class_names = list(class_names)
        self.rt_subframes = int(rt_subframes)
        self.delta_time = float(delta_time)  #: seconds the timeline advances per step (0: frames are stills)
        self.render_product_name = render_product_name
        units = motion_vector_units or carb.settings.get_settings().get(MOTION_VECTOR_UNITS_SETTING) \
            or DEFAULT_MOTION_VECTOR_UNITS
        if units not in MOTION_VECTOR_UNITS:
            raise RunError(f"motion vector units '{units}' ({MOTION_VECTOR_UNITS_SETTING}) unknown; expected one of "
                           f"{sorted(MOTION_VECTOR_UNITS)}")
        self.motion_vector_units = str(units)
        self._render_product = None
        self._annotators: dict = {}  # Replicator annotator name -> attached Annotator
        self._key: tuple | None = None
        self._capture_on_play = None

    # -- RenderSession hooks ------------------------------------------------------------------------------

    def build_stage(self, config: SDGConfig) -> Usd.Stage:
        """Used by ``RenderSession``: the scene is built where Replicator renders, on the live stage."""
        return build_on_live_stage(config)

    # -- rendering ----------------------------------------------------------------------------------------

    def prepare(self, camera_path: str, resolution: tuple[int, int], annotators: set[str]) -> None:
        """Create the render product and attach the annotators (again only when one of the three changed)."""
        key = (str(camera_path), (int(resolution[0]), int(resolution[1])), frozenset(annotators))
        if key == self._key:
            return
        self.close()
        if self._capture_on_play is None:  # as Isaac's recorder: no capture on timeline play while we step
            self._capture_on_play = bool(carb.settings.get_settings().get(CAPTURE_ON_PLAY))
            rep.orchestrator.set_capture_on_play(False)
        self._render_product = rep.create.render_product(key[0], key[1], force_new=True,
                                                         name=self.render_product_name)
        for spec in replicator_annotators(sorted(annotators)):
            annotator = rep.AnnotatorRegistry.get_annotator(spec.name, init_params=spec.init_params or None,
                                                            do_array_copy=True)
            self._annotators[spec.name] = annotator.attach(self._render_product)
        self._key = key

    @classmethod
    def for_config(cls, config: SDGConfig) -> ReplicatorBackend:
        """The backend a run of ``config`` uses (its class list and ``output.rt_subframes``)."""
        return cls(list(config.classes), rt_subframes=config.output.rt_subframes)

    async def render_async(self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int],
                           annotators: set[str], frame_index: int, motion: MotionStates | None = None) -> FrameData:
        """Render the stage as it is now; Kit's loop keeps running while Replicator renders the subframes."""
        self.prepare(camera_path, resolution, annotators)
        await rep.orchestrator.step_async(rt_subframes=self.rt_subframes, delta_time=self.delta_time)
        payloads = self._read(exclude=MOTION_VECTORS)
        backward = None
        if "optical_flow" in annotators:
            motion = self._need_motion(motion)
            payloads[MOTION_VECTORS] = await self._motion_vectors_async(motion.pose_next, motion.pose_current)
            if motion.previous is not None:
                backward = await self._motion_vectors_async(motion.pose_previous, motion.pose_current)
        return self._frame(stage, payloads, camera_path, annotators, frame_index, backward)

    def render(self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int], annotators: set[str],
               frame_index: int, motion: MotionStates | None = None) -> FrameData:
        """Synchronous render: only under SimulationApp (``python -m sdgstudio.replicator.run``)."""
        self.prepare(camera_path, resolution, annotators)
        self._step(self.rt_subframes)
        payloads = self._read(exclude=MOTION_VECTORS)
        backward = None
        if "optical_flow" in annotators:
            motion = self._need_motion(motion)
            payloads[MOTION_VECTORS] = self._motion_vectors(motion.pose_next, motion.pose_current)
            if motion.previous is not None:
                backward = self._motion_vectors(motion.pose_previous, motion.pose_current)
        return self._frame(stage, payloads, camera_path, annotators, frame_index, backward)

    def _step(self, rt_subframes: int) -> None:
        try:
            rep.orchestrator.step(rt_subframes=rt_subframes, delta_time=self.delta_time)
        except rep.orchestrator.OrchestratorError as exc:
            raise RunError(f"Replicator refused a synchronous step ({exc}); inside Kit use "
                           "sdgstudio.replicator.generate.generate_async") from None

    @staticmethod
    def _need_motion(motion: MotionStates | None) -> MotionStates:
        if motion is None:
            raise RunError("optical_flow with the replicator backend needs the neighbouring states of the frame "
                           "(render through sdgstudio.core.session.RenderSession, which passes them)")
        return motion

    async def _motion_vectors_async(self, pose_other: Callable[[], None], pose_back: Callable[[], None]):
        """Render the other state, then frame t's state again: the second render's motion vectors point from
        frame t's pixels to the other state (one subframe each, module docstring)."""
        pose_other()
        try:
            await rep.orchestrator.step_async(rt_subframes=MOTION_RT_SUBFRAMES, delta_time=self.delta_time)
        finally:
            pose_back()
        await rep.orchestrator.step_async(rt_subframes=MOTION_RT_SUBFRAMES, delta_time=self.delta_time)
        return self._annotators[MOTION_VECTORS].get_data(do_array_copy=True)

    def _motion_vectors(self, pose_other: Callable[[], None], pose_back: Callable[[], None]):
        pose_other()
        try:
            self._step(MOTION_RT_SUBFRAMES)
        finally:
            pose_back()
        self._step(MOTION_RT_SUBFRAMES)
        return self._annotators[MOTION_VECTORS].get_data(do_array_copy=True)

    def _read(self, exclude: str = "") -> dict:
        return {name: ann.get_data(do_array_copy=True) for name, ann in self._annotators.items() if name != exclude}

    def _frame(self, stage: Usd.Stage, payloads: dict, camera_path: str, annotators: set[str], frame_index: int,
               backward_motion_vectors=None) -> FrameData:
        scene = read_scene(stage, self.class_names)
        return frame_from_payloads(payloads, scene, self.class_names, annotators, frame_index, str(camera_path),
                                   motion_vector_units=self.motion_vector_units,
                                   backward_motion_vectors=backward_motion_vectors)

    async def finish_async(self) -> None:
        """Let Replicator finish the frames it scheduled (STEPPED -> STOPPED), then release everything."""
        if self._key is not None:
            await rep.orchestrator.wait_until_complete_async()
        self.close()

    def close(self) -> None:
        """Detach the annotators, destroy the render product, restore capture-on-play. Safe to call twice."""
        for annotator in self._annotators.values():
            annotator.detach()
        self._annotators = {}
        if self._render_product is not None:
            self._render_product.destroy()
            self._render_product = None
        if self._capture_on_play is not None:
            rep.orchestrator.set_capture_on_play(self._capture_on_play)
            self._capture_on_play = None
        self._key = None
