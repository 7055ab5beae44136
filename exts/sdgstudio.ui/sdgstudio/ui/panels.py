"""The window's two lower panels: Preview (scrubber + thumbnail grid) and Run (Generate / Pause / Stop, progress).

Both only call the view-model and the ``RunController`` and subscribe to their changes. Kit-only module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import carb
import omni.ui as ui
import omni.usd
from sdgstudio.core.controller import RunController
from sdgstudio.core.frame import FrameData
from sdgstudio.core.progress import Outcome, Progress, RunState

from .form import ERROR_STYLE, NOTE_STYLE, ROW_HEIGHT
from .status import generate_status, preview_config, run_summary
from .thumbnails import rgba_bytes, thumbnail
from .view_model import ConfigViewModel

WARNING_STYLE = {"color": 0xFF40C8FF}  # 0xAABBGGRR: amber
THUMB_WIDTH = 160
GRID_COLUMNS = 2
MAX_PREVIEW = 16


class PreviewPanel:
    """Seed + frame scrubber that poses the live stage, and "Preview N" rendering thumbnails (nothing written)."""

    def __init__(self, vm: ConfigViewModel, controller: RunController, state: dict) -> None:
        self._vm = vm
        self._controller = controller
        self._state = state  # persisted window state: seed, frame, count, boxes, masks
        self._message = None
        self._grid_frame = None
        self._providers: dict[int, Any] = {}
        self._frames: dict[int, FrameData] = {}
        self._button = None

    def destroy(self) -> None:
        self._providers = {}
        self._frames = {}
        self._message = self._grid_frame = self._button = None
        self._vm = self._controller = None  # type: ignore[assignment]

    def build(self) -> None:
        with ui.VStack(spacing=4, height=0):
            with ui.HStack(height=ROW_HEIGHT, spacing=4):
                ui.Label("Seed", width=40, tooltip="Run seed of the scrubber and the preview (default: the config's)")
                self._int_field("seed", "sdg-preview:seed", lambda _v: self._scrub())
                ui.Label("Frame", width=44, tooltip="Frame index: moving it poses the stage as that frame")
                self._int_field("frame", "sdg-preview:frame", lambda _v: self._scrub())
                ui.Button("<", width=24, identifier="sdg-preview:prev", clicked_fn=lambda: self._step(-1))
                ui.Button(">", width=24, identifier="sdg-preview:next", clicked_fn=lambda: self._step(1))
                ui.Button("Show on stage", identifier="sdg-preview:show", clicked_fn=self._scrub,
                          tooltip="Apply exactly this frame's sampled parameters to the open stage")
            with ui.HStack(height=ROW_HEIGHT, spacing=4):
                self._int_field("count", "sdg-preview:count", None, width=40)
                self._check("boxes", "Boxes", "sdg-preview:boxes")
                self._check("masks", "Masks", "sdg-preview:masks")
                self._button = ui.Button(f"Preview {self._state.get('count', 4)}", identifier="sdg-preview:run",
                                         clicked_fn=self.preview,
                                         tooltip="Render the next N frames from the scrubber's frame as thumbnails "
                                         "(through the active backend; nothing is written)")
            self._message = ui.Label("", word_wrap=True, style=NOTE_STYLE, identifier="sdg-preview:message")
            self._grid_frame = ui.Frame(height=0)
            self._grid_frame.set_build_fn(self._build_grid)

    def _int_field(self, key: str, identifier: str, on_change: Callable[[int], None] | None, width: int = 60) -> None:
        model = ui.SimpleIntModel(int(self._state.get(key, 0)))
        ui.IntField(model, width=width, identifier=identifier)

        def changed(m, k=key) -> None:
            self._state[k] = max(0, m.as_int) if k != "count" else max(1, min(MAX_PREVIEW, m.as_int))
            if k == "count" and self._button is not None:
                self._button.text = f"Preview {self._state[k]}"
            if on_change is not None:
                on_change(self._state[k])

        model.add_value_changed_fn(changed)

    def _check(self, key: str, text: str, identifier: str) -> None:
        model = ui.SimpleBoolModel(bool(self._state.get(key, False)))
        ui.CheckBox(model, width=18, identifier=identifier)
        ui.Label(text, width=44)
        model.add_value_changed_fn(lambda m, k=key: self._set_overlay(k, m.as_bool))

    def _set_overlay(self, key: str, on: bool) -> None:
        self._state[key] = on
        for index in list(self._frames):
            self._show_thumbnail(index)

    def _step(self, delta: int) -> None:
        self._state["frame"] = max(0, int(self._state.get("frame", 0)) + delta)
        self._scrub()

    def _say(self, text: str, style: dict = NOTE_STYLE) -> None:
        if self._message is not None:
            self._message.text = text
            self._message.style = style

    def _scrub(self) -> None:
        """Pose the live stage as frame k of the seed (builds the SDG scene in it the first time)."""
        from .stage_tools import show_frame

        config = self._vm.config
        if config is None:
            self._say("Fix the marked settings to show a frame.", ERROR_STYLE)
            return
        stage = omni.usd.get_context().get_stage()
        if stage is None:
            self._say("No stage is open.", ERROR_STYLE)
            return
        seed, frame = int(self._state.get("seed", config.seed)), int(self._state.get("frame", 0))
        try:
            params = show_frame(stage, config, seed, frame)
        except Exception as exc:  # a scene that cannot be built (a missing mount prim ...): say so, never raise
            carb.log_warn(f"SDG Studio: cannot show frame {frame}: {exc}")
            self._say(f"Cannot show frame {frame}: {exc}", ERROR_STYLE)
            return
        shown = sum(1 for o in params.objects if o.visible)
        warn = f"; {params.warnings[0]}" if params.warnings else ""
        self._say(f"Stage shows frame {frame} of seed {seed}: {shown} objects{warn}",
                  WARNING_STYLE if params.warnings else NOTE_STYLE)

    def preview(self) -> None:
        config = self._vm.config
        if config is None:
            self._say("Fix the marked settings to preview.", ERROR_STYLE)
            return
        count = max(1, min(MAX_PREVIEW, int(self._state.get("count", 4))))
        start = int(self._state.get("frame", 0))
        seed = int(self._state.get("seed", config.seed))
        self._frames = {}
        self._providers = {i: ui.ByteImageProvider() for i in range(start, start + count)}
        if not self._controller.preview(preview_config(config, THUMB_WIDTH * 2), range(start, start + count),
                                        seed=seed, on_frame=self._on_frame):
            self._say("Busy: wait for the run or preview to finish.", ERROR_STYLE)
            return
        self._say(f"Rendering frames {start}..{start + count - 1} of seed {seed} ...")
        if self._grid_frame is not None:
            self._grid_frame.rebuild()

    def _on_frame(self, index: int, frame: FrameData) -> None:
        for layer in ("depth", "depth_sensor", "normals", "semantic_segmentation", "optical_flow"):
            setattr(frame, layer, None)  # keep only what thumbnails draw
        self._frames[index] = frame
        self._show_thumbnail(index)

    def _show_thumbnail(self, index: int) -> None:
        provider = self._providers.get(index)
        frame = self._frames.get(index)
        if provider is None or frame is None:
            return
        image = thumbnail(frame, THUMB_WIDTH, boxes=bool(self._state.get("boxes")), masks=bool(self._state.get("masks")))
        data, size = rgba_bytes(image)
        provider.set_bytes_data(data, size)

    def _build_grid(self) -> None:
        indices = sorted(self._providers)
        config = self._vm.config if self._vm is not None else None
        width, height = config.camera.resolution if config is not None else (4, 3)
        thumb_h = max(1, round(THUMB_WIDTH * height / width))
        with ui.VStack(spacing=4, height=0):
            for row in range(0, len(indices), GRID_COLUMNS):
                with ui.HStack(spacing=4, height=0):
                    for index in indices[row:row + GRID_COLUMNS]:
                        with ui.VStack(width=THUMB_WIDTH, height=0):
                            ui.ImageWithProvider(self._providers[index], width=THUMB_WIDTH, height=thumb_h,
                                                 identifier=f"sdg-preview:thumb:{index}")
                            ui.Label(f"frame {index}", style=NOTE_STYLE)

    def on_progress(self, progress: Progress) -> None:
        if progress.activity != "preview" or self._message is None:
            if self._button is not None:
                self._button.enabled = not progress.busy
            return
        if self._button is not None:
            self._button.enabled = not progress.busy
        if progress.state is RunState.IDLE:
            if progress.outcome is Outcome.FAILED:
                self._say(f"Preview failed: {progress.last_error}", ERROR_STYLE)
            else:
                warn = f" ({progress.warnings[0]})" if progress.warnings else ""
                self._say(f"Previewed {progress.frames_done} frame(s); nothing was written{warn}",
                          WARNING_STYLE if progress.warnings else NOTE_STYLE)


class RunPanel:
    """Generate / Pause / Stop, a progress bar, fps, ETA, queue, warnings, errors, Open folder / Open report."""

    def __init__(self, vm: ConfigViewModel, controller: RunController, *, generate: Callable[[], None],
                 open_folder: Callable[[], None], open_report: Callable[[], None], has_report: bool) -> None:
        self._vm = vm
        self._controller = controller
        self._generate = generate
        self._open_folder = open_folder
        self._open_report = open_report
        self._has_report = has_report
        self._w: dict[str, Any] = {}

    def destroy(self) -> None:
        self._w = {}
        self._vm = self._controller = None  # type: ignore[assignment]

    def build(self) -> None:
        w = self._w
        with ui.VStack(spacing=4, height=0):
            w["target"] = ui.Label("", style=NOTE_STYLE, word_wrap=True, identifier="sdg-run:target")
            w["problems"] = ui.Label("", style=ERROR_STYLE, word_wrap=True, visible=False, identifier="sdg-run:problems")
            with ui.HStack(height=30, spacing=4):
                w["generate"] = ui.Button("Generate", identifier="sdg-run:generate", clicked_fn=self._generate,
                                          tooltip="Render output.frames frames into the output folder (continues "
                                          "a dataset that is already there with the same settings)")
                w["pause"] = ui.Button("Pause", width=80, identifier="sdg-run:pause", clicked_fn=self._pause_resume)
                w["stop"] = ui.Button("Stop", width=80, identifier="sdg-run:stop", clicked_fn=self._stop,
                                      tooltip="Stop after the frame in progress; Generate continues the dataset")
            w["bar"] = ui.ProgressBar(height=18, identifier="sdg-run:progress")
            w["status"] = ui.Label("", identifier="sdg-run:status")
            w["warnings"] = ui.Label("", style=WARNING_STYLE, word_wrap=True, visible=False, identifier="sdg-run:warnings")
            w["error"] = ui.Label("", style=ERROR_STYLE, word_wrap=True, visible=False, identifier="sdg-run:error")
            with ui.HStack(height=ROW_HEIGHT, spacing=4):
                w["open_folder"] = ui.Button("Open folder", identifier="sdg-run:open-folder", clicked_fn=self._open_folder)
                w["open_report"] = ui.Button(
                    "Open report", identifier="sdg-run:open-report", clicked_fn=self._open_report,
                    tooltip="Build and open the dataset report" if self._has_report
                    else "Needs sdgstudio.core.report, which this install does not have")
        self.refresh()

    def _pause_resume(self) -> None:
        if self._controller.state is RunState.PAUSED:
            self._controller.resume()
        else:
            self._controller.pause()

    def _stop(self) -> None:
        self._controller.stop()

    def refresh(self, general_problem: str = "") -> None:
        """Buttons and lines from the current view-model and progress (called on every change of either)."""
        w = self._w
        if not w or self._vm is None:
            return
        progress = self._controller.progress
        blockers = self._vm.generate_blockers(busy=progress.busy)
        w["generate"].enabled = not blockers
        w["generate"].tooltip = "; ".join(blockers) if blockers else "Render output.frames frames into the output folder"
        running = progress.state in (RunState.RUNNING, RunState.PAUSED)
        w["pause"].enabled = running
        w["pause"].text = "Resume" if progress.state is RunState.PAUSED else "Pause"
        w["stop"].enabled = progress.state in (RunState.RUNNING, RunState.PAUSED, RunState.PREVIEWING)
        problems = general_problem or (f"{len(self._vm.problems)} setting(s) to fix (marked in red above)"
                                       if self._vm.problems else "")
        w["problems"].text = problems
        w["problems"].visible = bool(problems)
        out = self._vm.output_dir()
        w["target"].text = generate_status(out, self._vm.frames())
        if progress.activity == "generate":
            w["bar"].model.set_value(progress.fraction)
            w["status"].text = run_summary(progress)
            w["warnings"].text = "Warnings: " + " | ".join(progress.warnings[:3]) if progress.warnings else ""
            w["warnings"].visible = bool(progress.warnings)
            w["error"].text = f"Error: {progress.last_error}" if progress.last_error else ""
            w["error"].visible = bool(progress.last_error)
        done_dir = progress.out_dir if progress.activity == "generate" and progress.outcome is not Outcome.NONE else None
        w["open_folder"].enabled = Path(done_dir or out).is_dir()
        w["open_report"].enabled = (self._has_report and done_dir is not None and not progress.busy
                                    and (done_dir / "dataset.json").is_file())
