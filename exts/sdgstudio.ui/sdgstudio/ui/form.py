"""Builds the config form from ``schema_form`` specs with omni.ui and binds each widget to the view-model.

Every value widget carries ``identifier = "sdg:<path>"`` (components ``"sdg:<path>#min"``, ``#x``...) and every
field a hidden message label (``"sdg-msg:<path>"``) that shows the first problem about it. Widgets write into the
view-model on change; the form never reads back except on a rebuild (after a file is loaded or a row is added
or removed). Kit-only module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import omni.ui as ui

from .schema_form import FieldSpec, item_template, sections, template
from .view_model import GENERAL, ConfigViewModel, KeyPath, path_text

ID = "sdg:"
MSG_ID = "sdg-msg:"
LABEL_WIDTH = 150
ROW_HEIGHT = 22
ERROR_STYLE = {"color": 0xFF5050F0}  # omni.ui colours are 0xAABBGGRR: a light red
NOTE_STYLE = {"color": 0xFF9A9A9A}
#: String fields that hold a path: a "..." button opens a picker ("file" or "folder").
PATH_FIELDS = {"assets[].source": "file", "assets[].library": "folder", "assets[].library_classes": "file",
               "assets[].library[].file": "file", "props[].source": "file", "background.textures": "folder",
               "output.dir": "folder"}
VEC_AXES = ("x", "y", "z", "w")


class ConfigForm:
    """The collapsable sections of the config, rebuilt as a whole when the draft's structure changes.

    Args:
        vm: the view-model the widgets write into.
        pick_path: ``pick_path(kind, title, on_chosen(path))`` opens a file or folder picker.
        asset_buttons: builds the extra "add asset" buttons (from file, from selection) under the Assets list.
        collapsed: section title -> collapsed, shared with the window (persisted with its state).
        rebuild: asks the window to rebuild the form (next frame).
    """

    def __init__(self, vm: ConfigViewModel, *, pick_path: Callable[[str, str, Callable[[str], None]], None],
                 asset_buttons: Callable[[], None], collapsed: dict[str, bool], rebuild: Callable[[], None]) -> None:
        self._vm = vm
        self._pick_path = pick_path
        self._asset_buttons = asset_buttons
        self._collapsed = collapsed
        self._rebuild = rebuild
        self._messages: dict[str, Any] = {}  # anchor path -> ui.Label
        self._models: list = []

    def destroy(self) -> None:
        self._messages = {}
        self._models = []
        self._vm = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ building

    def build(self) -> None:
        """The build function of the window's form frame."""
        self._messages = {}
        self._models = []
        with ui.VStack(spacing=4, height=0):
            for title, specs in sections():
                frame = ui.CollapsableFrame(title, height=0, collapsed=self._collapsed.get(title, title != "Assets"),
                                            identifier=f"sdg-section:{title}")
                frame.set_collapsed_changed_fn(lambda c, t=title: self._collapsed.__setitem__(t, c))
                with frame, ui.VStack(spacing=2, height=0):
                    for spec in specs:
                        self._field(spec, (spec.key,))
                    if title == "Assets":
                        self._asset_buttons()
        self.refresh_messages()

    def _field(self, spec: FieldSpec, path: KeyPath) -> None:
        kind = spec.kind
        if kind == "model":
            self._model(spec, path)
        elif kind == "model_list":
            self._model_list(spec, path)
        elif kind == "path_or_list":
            self._path_or_list(spec, path)
        elif kind == "multi_choice":
            self._multi_choice(spec, path)
        else:
            with ui.HStack(height=ROW_HEIGHT, spacing=4):
                ui.Label(spec.label, width=LABEL_WIDTH, tooltip=spec.tooltip)
                self._value_widgets(spec, path)
            self._message_label(path)

    def _message_label(self, path: KeyPath) -> None:
        key = path_text(path)
        self._messages[key] = ui.Label("", style=ERROR_STYLE, word_wrap=True, visible=False,
                                       identifier=f"{MSG_ID}{key}")

    def _value_widgets(self, spec: FieldSpec, path: KeyPath) -> None:
        vm = self._vm
        value = vm.get(path, spec.default)
        key = path_text(path)
        widgets: list = []
        toggled = spec.optional and spec.kind in ("bool", "int", "float", "vec", "range", "int_range", "choice")
        if toggled:
            toggle = ui.SimpleBoolModel(value is not None)
            ui.CheckBox(toggle, width=18, identifier=f"{ID}{key}#set", tooltip="Set this value (untick: unset)")
            toggle.add_value_changed_fn(lambda m, s=spec, p=path, w=widgets: self._toggle(s, p, m.as_bool, w))
            self._models.append(toggle)
        shown = value if value is not None else template(spec)
        kind = spec.kind
        if kind == "bool":
            model = ui.SimpleBoolModel(bool(shown))
            widgets.append(ui.CheckBox(model, identifier=f"{ID}{key}", tooltip=spec.tooltip))
            model.add_value_changed_fn(lambda m, p=path: self._vm.set(p, m.as_bool))
        elif kind in ("int", "float"):
            widgets.append(self._number(kind, shown, f"{ID}{key}", spec.tooltip, lambda v, p=path: self._vm.set(p, v)))
        elif kind in ("range", "int_range"):
            number = "int" if kind == "int_range" else "float"
            for end in ("min", "max"):
                ui.Label(end, width=24, style=NOTE_STYLE)
                widgets.append(self._number(number, shown.get(end, 0) if isinstance(shown, dict) else shown,
                                            f"{ID}{key}#{end}", spec.tooltip,
                                            lambda v, p=path, e=end, s=spec: self._set_part(s, p, e, v)))
        elif kind == "vec":
            items = list(shown) if isinstance(shown, list | tuple) else list(template(spec))
            for i in range(spec.size):
                widgets.append(self._number(spec.item_type, items[i] if i < len(items) else 0,
                                            f"{ID}{key}#{VEC_AXES[i]}", spec.tooltip,
                                            lambda v, p=path, i=i, s=spec: self._set_part(s, p, i, v)))
        elif kind == "choice":
            options = list(spec.options)
            index = options.index(shown) if shown in options else 0
            combo = ui.ComboBox(index, *options, identifier=f"{ID}{key}", tooltip=spec.tooltip)
            combo.model.add_item_changed_fn(
                lambda m, _item, p=path, o=tuple(options): self._vm.set(p, o[m.get_item_value_model().as_int]))
            widgets.append(combo)
        elif kind == "string_list":
            items = shown if isinstance(shown, list) else [shown] if shown else []
            model = ui.SimpleStringModel(", ".join(str(v) for v in items))
            widgets.append(ui.StringField(model, identifier=f"{ID}{key}", tooltip=spec.tooltip))
            model.add_value_changed_fn(
                lambda m, p=path: self._vm.set(p, [t.strip() for t in m.as_string.split(",") if t.strip()]))
        else:  # str
            model = ui.SimpleStringModel("" if shown is None else str(shown))
            widgets.append(ui.StringField(model, identifier=f"{ID}{key}", tooltip=spec.tooltip))
            model.add_value_changed_fn(lambda m, p=path, s=spec: self._vm.set(p, m.as_string or (None if s.optional else "")))
            self._models.append(model)
            picker = PATH_FIELDS.get(spec.path)
            if picker:
                ui.Button("...", width=24, identifier=f"sdg-pick:{key}", tooltip=f"Choose a {picker}",
                          clicked_fn=lambda k=picker, s=spec, m=model: self._pick_path(k, s.title, m.set_value))
        for widget in widgets:
            widget.enabled = value is not None or not toggled
            self._models.append(widget.model)

    def _number(self, kind: str, value: Any, identifier: str, tooltip: str, write: Callable[[Any], None]):
        if kind == "int":
            model = ui.SimpleIntModel(int(value) if isinstance(value, int | float) else 0)
            field = ui.IntField(model, identifier=identifier, tooltip=tooltip)
            model.add_value_changed_fn(lambda m: write(m.as_int))
        else:
            model = ui.SimpleFloatModel(float(value) if isinstance(value, int | float) else 0.0)
            field = ui.FloatField(model, identifier=identifier, tooltip=tooltip, precision=4)
            model.add_value_changed_fn(lambda m: write(m.as_float))
        return field

    def _set_part(self, spec: FieldSpec, path: KeyPath, part: str | int, value: Any) -> None:
        """Write one end of a range or one component of a vector (the whole value is rewritten)."""
        current = self._vm.get(path)
        if isinstance(part, int):
            items = list(current) if isinstance(current, list | tuple) else list(template(spec))
            items[part] = value
            self._vm.set(path, items)
        else:
            pair = dict(current) if isinstance(current, dict) else dict(template(spec))
            pair[part] = value
            self._vm.set(path, pair)

    def _toggle(self, spec: FieldSpec, path: KeyPath, on: bool, widgets: list) -> None:
        self._vm.set(path, template(spec) if on else None)
        for widget in widgets:
            widget.enabled = on
        if on and spec.kind in ("range", "int_range", "vec"):
            self._rebuild()  # the fields show the template's values

    def _model(self, spec: FieldSpec, path: KeyPath) -> None:
        value = self._vm.get(path)
        with ui.HStack(height=ROW_HEIGHT, spacing=4):
            ui.Label(spec.label, width=LABEL_WIDTH, tooltip=spec.tooltip, style={"font_size": 14})
            if spec.optional:
                toggle = ui.SimpleBoolModel(value is not None)
                ui.CheckBox(toggle, width=18, identifier=f"{ID}{path_text(path)}#set", tooltip="Untick to turn it off")
                toggle.add_value_changed_fn(lambda m, s=spec, p=path: self._toggle_model(s, p, m.as_bool))
                self._models.append(toggle)
        self._message_label(path)
        if value is None and spec.optional:
            return
        with ui.HStack(height=0):
            ui.Spacer(width=12)
            with ui.VStack(spacing=2, height=0):
                for child in spec.children:
                    self._field(child, (*path, child.key))

    def _toggle_model(self, spec: FieldSpec, path: KeyPath, on: bool) -> None:
        self._vm.set(path, template(spec) if on else None)
        self._rebuild()

    def _model_list(self, spec: FieldSpec, path: KeyPath) -> None:
        items = self._vm.get(path)
        items = items if isinstance(items, list) else []
        self._message_label(path)
        for index, item in enumerate(items):
            item_path = (*path, index)
            title = f"{spec.title} {index + 1}"
            if isinstance(item, dict) and item.get("name"):
                title += f": {item['name']}"
            with ui.HStack(height=ROW_HEIGHT, spacing=4):
                ui.Label(title, tooltip=spec.tooltip)
                ui.Button("Remove", width=70, identifier=f"sdg-remove:{path_text(item_path)}",
                          clicked_fn=lambda p=path, i=index: self._vm.remove_item(p, i))
            self._message_label(item_path)
            with ui.HStack(height=0):
                ui.Spacer(width=12)
                with ui.VStack(spacing=2, height=0):
                    for child in spec.children:
                        self._field(child, (*item_path, child.key))
        ui.Button(f"Add {spec.title.lower().rstrip('s')}", height=ROW_HEIGHT, identifier=f"sdg-add:{path_text(path)}",
                  clicked_fn=lambda p=path, s=spec: self._vm.add_item(p, item_template(s)))

    def _path_or_list(self, spec: FieldSpec, path: KeyPath) -> None:
        """A folder (string) or a list of items: typing a folder replaces the list, adding an item the folder."""
        value = self._vm.get(path)
        key = path_text(path)
        with ui.HStack(height=ROW_HEIGHT, spacing=4):
            ui.Label(f"{spec.label} folder", width=LABEL_WIDTH, tooltip=spec.tooltip)
            model = ui.SimpleStringModel(value if isinstance(value, str) else "")
            ui.StringField(model, identifier=f"{ID}{key}", tooltip=spec.tooltip)
            model.add_value_changed_fn(lambda m, p=path: self._vm.set(p, m.as_string or None))
            self._models.append(model)
            ui.Button("...", width=24, identifier=f"sdg-pick:{key}", tooltip="Choose a folder",
                      clicked_fn=lambda m=model, s=spec: self._pick_path("folder", s.title, m.set_value))
        self._message_label(path)
        items = value if isinstance(value, list) else []
        for index in range(len(items)):
            item_path = (*path, index)
            with ui.HStack(height=ROW_HEIGHT, spacing=4):
                ui.Label(f"{spec.title} file {index + 1}")
                ui.Button("Remove", width=70, identifier=f"sdg-remove:{path_text(item_path)}",
                          clicked_fn=lambda p=path, i=index: self._remove_library_item(p, i))
            self._message_label(item_path)
            with ui.HStack(height=0):
                ui.Spacer(width=12)
                with ui.VStack(spacing=2, height=0):
                    for child in spec.children:
                        self._field(child, (*item_path, child.key))
        ui.Button(f"Add {spec.title.lower()} file", height=ROW_HEIGHT, identifier=f"sdg-add:{key}",
                  clicked_fn=lambda p=path, s=spec: self._add_library_item(p, s))

    def _add_library_item(self, path: KeyPath, spec: FieldSpec) -> None:
        if not isinstance(self._vm.get(path), list):
            self._vm.set(path, [])
        self._vm.add_item(path, item_template(spec))

    def _remove_library_item(self, path: KeyPath, index: int) -> None:
        self._vm.remove_item(path, index)
        if not self._vm.get(path):
            self._vm.set(path, None)
            self._rebuild()

    def _multi_choice(self, spec: FieldSpec, path: KeyPath) -> None:
        value = self._vm.get(path, spec.default)
        chosen = set(value) if isinstance(value, list) else set()
        ui.Label(spec.label, tooltip=spec.tooltip)
        for option, description in zip(spec.options, spec.option_descriptions or ("",) * len(spec.options),
                                       strict=True):
            with ui.HStack(height=ROW_HEIGHT, spacing=6):
                ui.Spacer(width=12)
                model = ui.SimpleBoolModel(option in chosen)
                ui.CheckBox(model, width=18, identifier=f"{ID}{path_text(path)}#{option}", tooltip=description)
                model.add_value_changed_fn(lambda m, p=path, s=spec, o=option: self._choose(s, p, o, m.as_bool))
                self._models.append(model)
                ui.Label(option, width=170, tooltip=description)
                if description:
                    ui.Label(description, style=NOTE_STYLE, elided_text=True, tooltip=description)
        self._message_label(path)

    def _choose(self, spec: FieldSpec, path: KeyPath, option: str, on: bool) -> None:
        value = self._vm.get(path, spec.default)
        current = set(value) if isinstance(value, list) else set()
        current = current | {option} if on else current - {option}
        self._vm.set(path, [o for o in spec.options if o in current])

    # ------------------------------------------------------------------ messages

    def anchors(self) -> list[str]:
        return list(self._messages)

    def refresh_messages(self) -> str:
        """Show each field's problem beside it; returns the problems no field shows (for the general line)."""
        if self._vm is None:
            return ""
        messages = self._vm.messages(self._messages)
        for key, label in self._messages.items():
            text = messages.get(key, "")
            label.text = text
            label.visible = bool(text)
        return messages.get(GENERAL, "")
