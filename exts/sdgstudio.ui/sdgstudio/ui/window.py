"""The SDG Studio window: a dockable panel (beside Property) holding the config form, Preview and Generate.

It owns one ``ConfigViewModel`` (the draft config), one ``RunController`` (runs and previews) and the file
picker it opened, and only subscribes to their changes. The last config and the window state (collapsed
sections, preview settings) are kept in carb settings under ``/persistent/exts/sdgstudio.ui/`` and restored by
the next window. ``destroy`` (window closed, extension shut down) stops a run at the next frame boundary,
leaving a resumable dataset, and releases everything. Kit-only module.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import carb
import carb.settings
import omni.kit.app
import omni.kit.async_engine
import omni.ui as ui
import omni.usd
import yaml
from omni.kit.menu.utils import MenuHelperWindow
from omni.kit.window.filepicker import FilePickerDialog
from sdgstudio.core.activities import AsyncBackend
from sdgstudio.core.controller import RunController
from sdgstudio.core.extension import builtin_scene, extension_path, raster_device
from sdgstudio.core.progress import Progress

from .actions import open_with_os, report_builder
from .form import NOTE_STYLE, ROW_HEIGHT, ConfigForm
from .panels import WARNING_STYLE, PreviewPanel, RunPanel
from .stage_tools import asset_from_file, asset_from_prim, prim_name
from .view_model import ConfigViewModel

WINDOW_TITLE = "SDG Studio"
EXT_SETTINGS = "/exts/sdgstudio.ui"
PERSISTENT = "/persistent/exts/sdgstudio.ui"
LAST_CONFIG = f"{PERSISTENT}/lastConfig"
WINDOW_STATE = f"{PERSISTENT}/windowState"
CONFIG_SUFFIXES = (".toml", ".yaml", ".yml")
REPLICATOR_EXT = "sdgstudio.replicator"


def default_output_root() -> Path:
    """Where a relative output folder of a built-in scene goes (setting ``/exts/sdgstudio.ui/outputRoot``)."""
    text = carb.settings.get_settings().get(f"{EXT_SETTINGS}/outputRoot") or ""
    return Path(text).expanduser() if text else Path.home() / "sdgstudio"


def loop_backends() -> dict[str, AsyncBackend]:
    """``{"replicator": ...}`` while the sdgstudio.replicator extension is enabled: runs and previews with that
    backend render through Replicator on Kit's loop. Without it nothing: the raster backend renders in the
    controller's worker thread, and choosing "replicator" ends the run with a one-line reason."""
    if not omni.kit.app.get_app().get_extension_manager().is_extension_enabled(REPLICATOR_EXT):
        return {}
    try:
        from sdgstudio.replicator.generate import async_backend
    except ImportError as exc:  # enabled but broken: say so once per run, render nothing through it
        carb.log_warn(f"SDG Studio: {REPLICATOR_EXT} is enabled but cannot be imported ({exc})")
        return {}
    return {"replicator": async_backend()}


def builtin_scenes() -> list[str]:
    return sorted(p.stem for p in (extension_path() / "data" / "scenes").glob("*.toml"))


class SdgStudioWindow(MenuHelperWindow):
    """The window ``MenuHelperExtensionFull`` creates from the Tools/Replicator menu."""

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        super().__init__(title, width=460, height=820)
        self.deferred_dock_in("Property")
        self._settings = carb.settings.get_settings()
        self._state = self._restore_state()
        self._vm = self._restore_config()
        self._controller = RunController(tick=omni.kit.app.get_app().next_update_async,
                                         spawn=omni.kit.async_engine.run_coroutine, device=raster_device(),
                                         async_backends=loop_backends)
        self._picker: Any = None
        self._tasks: set = set()
        self._general = ""
        self._asset_note = ""
        self._widgets: dict[str, Any] = {}
        preview_state = self._state.setdefault("preview", {})
        for key, value in (("seed", self._vm.get(("seed",), 0)), ("frame", 0), ("count", 4), ("boxes", True),
                           ("masks", False)):
            preview_state.setdefault(key, value)
        self._form = ConfigForm(self._vm, pick_path=self._pick_path, asset_buttons=self._asset_buttons,
                                collapsed=self._state.setdefault("collapsed", {}), rebuild=self._rebuild_form)
        self._preview = PreviewPanel(self._vm, self._controller, preview_state)
        self._run = RunPanel(self._vm, self._controller, generate=self.generate, open_folder=self._open_folder,
                             open_report=self._open_report, has_report=report_builder() is not None)
        self._unsubscribe = [self._vm.subscribe(self._on_config_changed), self._controller.subscribe(self._on_progress)]
        self.frame.set_build_fn(self._build)

    # ------------------------------------------------------------------ public (menu, tests)

    @property
    def view_model(self) -> ConfigViewModel:
        return self._vm

    @property
    def controller(self) -> RunController:
        return self._controller

    def generate(self) -> bool:
        """What the Generate button does: start a run of the current config, unless busy or invalid."""
        config = self._vm.config
        if config is None or not self._controller.can_start:
            return False
        self._persist()
        return self._controller.start(config, self._vm.output_dir())

    def add_assets_from_selection(self) -> int:
        """Add one asset per selected prim (primitive or referenced USD file); returns how many were added."""
        context = omni.usd.get_context()
        stage = context.get_stage()
        paths = context.get_selection().get_selected_prim_paths()
        if stage is None or not paths:
            self._set_asset_note("Select prims in the Stage window first.")
            return 0
        notes, added = [], 0
        for path in paths:
            suggestion = asset_from_prim(stage, path, self._vm.unique_name(prim_name(str(path).rsplit("/", 1)[-1])))
            if suggestion.asset is not None:
                self._add_asset(suggestion.asset)
                added += 1
            if suggestion.note:
                notes.append(suggestion.note)
        self._set_asset_note(f"Added {added} asset(s)." + (" " + " ".join(notes) if notes else ""))
        return added

    def destroy(self) -> None:
        self._persist()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._controller.shutdown()
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self._destroy_picker()
        self._form.destroy()
        self._preview.destroy()
        self._run.destroy()
        self._widgets = {}
        super().destroy()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        with ui.ScrollingFrame(), ui.VStack(spacing=6, height=0):
            self._build_toolbar()
            self._widgets["form"] = ui.Frame(height=0)
            self._widgets["form"].set_build_fn(self._form.build)
            for title, build in (("Preview", self._preview.build), ("Generate", self._run.build)):
                frame = ui.CollapsableFrame(title, height=0, collapsed=self._state["collapsed"].get(title, False),
                                            identifier=f"sdg-section:{title}")
                frame.set_collapsed_changed_fn(lambda c, t=title: self._state["collapsed"].__setitem__(t, c))
                with frame:
                    build()

    def _build_toolbar(self) -> None:
        with ui.HStack(height=ROW_HEIGHT, spacing=4):
            ui.Button("Load...", identifier="sdg-file:load", clicked_fn=self._load_dialog,
                      tooltip="Open a TOML or YAML config (the files `sdgstudio generate --config` reads)")
            ui.Button("Save", identifier="sdg-file:save", clicked_fn=self._save, tooltip="Save to the current file")
            ui.Button("Save as...", identifier="sdg-file:save-as", clicked_fn=self._save_as_dialog)
            scenes = builtin_scenes()
            self._widgets["scene"] = ui.ComboBox(0, *scenes, identifier="sdg-file:scene", width=90)
            ui.Button("Open scene", identifier="sdg-file:open-scene", tooltip="Start from a built-in scene",
                      clicked_fn=lambda s=tuple(scenes): self._open_builtin(s))
        self._widgets["file"] = ui.Label(self._file_text(), style=NOTE_STYLE, word_wrap=True, identifier="sdg-file:status")

    def _asset_buttons(self) -> None:
        with ui.HStack(height=ROW_HEIGHT, spacing=4):
            ui.Button("Add USD file...", identifier="sdg-assets:add-file", clicked_fn=self._add_file_dialog)
            ui.Button("Add from selection", identifier="sdg-assets:add-selection",
                      clicked_fn=self.add_assets_from_selection,
                      tooltip="One asset per prim selected in the stage: a primitive or the USD file it references")
        self._widgets["asset_note"] = ui.Label(self._asset_note, style=WARNING_STYLE, word_wrap=True,
                                               visible=bool(self._asset_note), identifier="sdg-assets:note")

    def _rebuild_form(self) -> None:
        form = self._widgets.get("form")
        if form is not None:
            form.rebuild()

    # ------------------------------------------------------------------ reacting

    def _on_config_changed(self, _vm: ConfigViewModel, structural: bool) -> None:
        self._persist()
        if structural:
            self._rebuild_form()
        self._general = self._form.refresh_messages()
        self._run.refresh(self._general)
        label = self._widgets.get("file")
        if label is not None:
            label.text = self._file_text()

    def _on_progress(self, progress: Progress) -> None:
        self._run.refresh(self._general)
        self._preview.on_progress(progress)

    def _file_text(self, message: str = "") -> str:
        source = self._vm.source
        where = f"Config: {source}" if source else "Config: not saved yet (started from a built-in scene or the last session)"
        return f"{where}. {message}" if message else where

    def _say_file(self, message: str) -> None:
        label = self._widgets.get("file")
        if label is not None:
            label.text = self._file_text(message)

    def _set_asset_note(self, text: str) -> None:
        self._asset_note = text
        label = self._widgets.get("asset_note")
        if label is not None:
            label.text = text
            label.visible = bool(text)

    # ------------------------------------------------------------------ assets

    def _add_asset(self, asset: dict) -> None:
        """Add an asset; a class missing from an explicit class list is appended to it."""
        classes = list(self._vm.get(("classes",)) or [])
        semantic_class = asset.get("class")
        if classes and semantic_class and semantic_class not in classes:
            self._vm.set(("classes",), [*classes, semantic_class])
        self._vm.add_item(("assets",), asset)

    def _add_file_dialog(self) -> None:
        def chosen(path: str) -> None:
            suggestion = asset_from_file(path, self._vm.unique_name(prim_name(Path(path).stem)))
            if suggestion.asset is not None:
                self._add_asset(suggestion.asset)
            self._set_asset_note(suggestion.note)

        self._pick_path("file", "USD asset", chosen)

    # ------------------------------------------------------------------ files

    def _open_picker(self, title: str, button: str, on_chosen: Callable[[Path], None]) -> None:
        self._destroy_picker()

        def apply(filename: str, dirname: str) -> None:
            self._hide_picker()
            on_chosen(Path(dirname) / filename if filename else Path(dirname))

        self._picker = FilePickerDialog(title, allow_multi_selection=False, apply_button_label=button,
                                        click_apply_handler=apply, click_cancel_handler=lambda _f, _d: self._hide_picker())

    def _hide_picker(self) -> None:
        if self._picker is not None:
            self._picker.hide()

    def _destroy_picker(self) -> None:
        if self._picker is not None:
            self._picker.destroy()
            self._picker = None

    def _pick_path(self, kind: str, title: str, on_chosen: Callable[[str], None]) -> None:
        self._open_picker(f"SDG Studio: choose the {title.lower()} {kind}", "Select", lambda p: on_chosen(str(p)))

    def _load_dialog(self) -> None:
        self._open_picker("SDG Studio: load a config", "Load", self.load)

    def _save_as_dialog(self) -> None:
        self._open_picker("SDG Studio: save the config as", "Save", self.save)

    def load(self, path: Path | str, *, template: bool = False) -> bool:
        try:
            self._vm.load(path, template=template)
        except (OSError, ValueError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            carb.log_warn(f"SDG Studio: cannot load {path}: {message}")
            self._say_file(f"Cannot load {path}: {message}")
            return False
        self._state["preview"]["seed"] = int(self._vm.get(("seed",), 0) or 0)
        return True

    def save(self, path: Path | str) -> bool:
        path = Path(path)
        if path.suffix.lower() not in CONFIG_SUFFIXES:
            path = path.with_name(path.name + ".toml")
        try:
            written = self._vm.save(path)
        except (OSError, ValueError) as exc:
            carb.log_warn(f"SDG Studio: cannot save {path}: {exc}")
            self._say_file(f"Not saved: {exc}")
            return False
        self._say_file(f"Saved {written.name}.")
        return True

    def _save(self) -> None:
        if self._vm.source is None:
            self._save_as_dialog()
        else:
            self.save(self._vm.source)

    def _open_builtin(self, scenes: tuple[str, ...]) -> None:
        if not scenes:
            return
        index = self._widgets["scene"].model.get_item_value_model().as_int
        self.load(builtin_scene(scenes[min(index, len(scenes) - 1)]), template=True)

    # ------------------------------------------------------------------ results

    def _open_folder(self) -> None:
        progress = self._controller.progress
        folder = progress.out_dir if progress.out_dir is not None else self._vm.output_dir()
        try:
            open_with_os(folder)
        except OSError as exc:
            carb.log_warn(f"SDG Studio: cannot open {folder}: {exc}")

    def _open_report(self) -> None:
        build = report_builder()
        out = self._controller.progress.out_dir
        if build is None or out is None:
            return
        task = omni.kit.async_engine.run_coroutine(self._report(build, out))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, build: Callable[[Path], Path], out: Path) -> None:
        try:
            report = await asyncio.get_running_loop().run_in_executor(None, build, out)
            open_with_os(report)
        except Exception as exc:  # the report module is developed separately: report, do not raise
            carb.log_warn(f"SDG Studio: cannot build the report of {out}: {exc}")

    # ------------------------------------------------------------------ persistence

    def _restore_state(self) -> dict:
        text = self._settings.get(WINDOW_STATE)
        try:
            state = json.loads(text) if text else {}
        except ValueError:
            state = {}
        return state if isinstance(state, dict) else {}

    def _restore_config(self) -> ConfigViewModel:
        text = self._settings.get(LAST_CONFIG)
        if text:
            try:
                return ConfigViewModel.from_state(text)
            except (ValueError, TypeError) as exc:
                carb.log_warn(f"SDG Studio: ignoring the saved config ({exc}); starting from the built-in scene")
        return ConfigViewModel.from_file(builtin_scene(), template=True, output_root=default_output_root())

    def _persist(self) -> None:
        self._settings.set_string(LAST_CONFIG, self._vm.to_state())
        self._settings.set_string(WINDOW_STATE, json.dumps(self._state))
