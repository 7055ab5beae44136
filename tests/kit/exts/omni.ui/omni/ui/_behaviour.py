"""State the omni.ui stand-in keeps so tests can drive a window: widget tree, frames that build, value models.

Every public name here must be in tests/kit/contracts/omni_ui.toml (install_standin checks it); the generated
classes wrap these methods with the contract's signature checks. Test helpers (``walk``, ``find``, ``click``) are
not part of omni.ui; only tests that know they run on the stand-in use them.
"""

from __future__ import annotations

import sys
import traceback
import weakref

from contract_standin import resources
from contract_standin.standin import new_instance

_open_containers: list = []  # innermost last: `with ui.VStack():`
_dirty_frames: weakref.WeakSet = weakref.WeakSet()
_windows: weakref.WeakSet = weakref.WeakSet()
_observer = None


def _ui():
    return sys.modules["omni.ui"]


# ------------------------------------------------------------------ drawing (one pass per Kit update)


def start_drawing() -> None:
    global _observer
    import carb.eventdispatcher
    import omni.kit.app

    _observer = carb.eventdispatcher.get_eventdispatcher().observe_event(
        event_name=omni.kit.app.GLOBAL_EVENT_UPDATE, on_event=lambda _e: draw(), observer_name="omni.ui stand-in draw")


def stop_drawing() -> None:
    global _observer
    _observer = None


def draw() -> int:
    """Run the build functions of dirty frames of visible windows (and of frames outside windows). Returns count."""
    built = 0
    for _ in range(16):  # a build may create frames that need building too
        pending = [f for f in list(_dirty_frames) if _drawable(f)]
        if not pending:
            break
        for frame in pending:
            _dirty_frames.discard(frame)
            _build(frame)
            built += 1
    return built


def _drawable(frame) -> bool:
    w = frame._window_ref() if frame._window_ref is not None else None
    if w is None:
        return frame._window_ref is None and not frame._destroyed
    return not w._destroyed and w._visible and not frame._destroyed


def _build(frame) -> None:
    for child in frame._children:
        child._parent = None
    frame._children = []
    _open_containers.append(frame)
    try:
        frame._build_fn()
    except Exception:
        import carb

        carb.log_error(f"omni.ui stand-in: the build function of {frame!r} raised:\n{traceback.format_exc()}")
    finally:
        _open_containers.pop()


# ------------------------------------------------------------------ widgets


class Widget:
    def _standin_setup(self):
        self._children = []
        self._parent = None
        self._destroyed = False
        object.__setattr__(self, "enabled", True)  # omni.ui's defaults (keywords given to the constructor win)
        object.__setattr__(self, "visible", True)

    def _standin_init(self, bound):
        if _open_containers:
            parent = _open_containers[-1]
            parent._children.append(self)
            self._parent = parent

    def destroy(self):
        """As omni.ui: "Removes all the callbacks and circular references"."""
        self._destroyed = True
        for child in list(self._children):
            child.destroy()
        self._children = []
        for key in [k for k in self.__dict__ if k.endswith("_fn") or k.endswith("_fns")]:
            object.__setattr__(self, key, None)


class Container:
    def __enter__(self):
        _open_containers.append(self)
        return self

    def __exit__(self, *exc):
        _open_containers.pop()
        return False

    def clear(self):
        for child in self._children:
            child._parent = None
        self._children = []


class Frame:
    def _standin_setup(self):
        super()._standin_setup()
        self._build_fn = None
        self._window_ref = None

    def set_build_fn(self, fn):
        self._build_fn = fn
        _dirty_frames.add(self)

    def rebuild(self):
        if self._build_fn is not None:
            _dirty_frames.add(self)


class CollapsableFrame:
    def _standin_setup(self):
        super()._standin_setup()
        self._collapsed_fns = []
        self._collapsed = False

    def set_collapsed_changed_fn(self, fn):
        self._collapsed_fns.append(fn)

    @property
    def collapsed(self):
        return self._collapsed

    @collapsed.setter
    def collapsed(self, value):
        changed = bool(value) != self._collapsed
        self._collapsed = bool(value)
        if changed:
            for fn in list(getattr(self, "_collapsed_fns", [])):
                fn(self._collapsed)


class Button:
    def set_clicked_fn(self, fn):
        self.clicked_fn = fn

    def call_clicked_fn(self):
        fn = getattr(self, "clicked_fn", None)
        if fn:
            fn()


_DEFAULT_MODELS = {"FloatField": "SimpleFloatModel", "FloatDrag": "SimpleFloatModel", "FloatSlider": "SimpleFloatModel",
                   "ProgressBar": "SimpleFloatModel", "IntField": "SimpleIntModel", "IntDrag": "SimpleIntModel",
                   "IntSlider": "SimpleIntModel", "CheckBox": "SimpleBoolModel", "StringField": "SimpleStringModel"}


class AbstractField:
    def _standin_init(self, bound):
        if bound.arguments.get("model") is None:
            kind = next((c.__name__ for c in type(self).__mro__ if c.__name__ in _DEFAULT_MODELS), "FloatField")
            object.__setattr__(self, "model", new_instance(getattr(_ui(), _DEFAULT_MODELS[kind])))
        super()._standin_init(bound)


class ComboBox:
    def _standin_init(self, bound):
        args = bound.arguments.get("args", ())
        model = bound.arguments.get("kwargs", {}).get("model")
        if args and not isinstance(args[0], int):
            model = args[0]
        if model is None:
            index = args[0] if args else 0
            model = new_instance(_ui().AbstractItemModel)
            model._set_items([str(a) for a in args[1:]], index)
        object.__setattr__(self, "model", model)
        super()._standin_init(bound)


# ------------------------------------------------------------------ windows


class Window:
    def _standin_setup(self):
        self._destroyed = False
        self._visible = True
        self._visibility_fns = []
        self._docked_in = None

    def _standin_init(self, bound):
        frame = new_instance(_ui().Frame)
        frame._window_ref = weakref.ref(self)
        object.__setattr__(self, "frame", frame)
        self._visible = bool(bound.arguments.get("kwargs", {}).get("visible", True))
        _windows.add(self)
        resources.track("omni.ui.Window", f"omni.ui.Window({bound.arguments.get('title')!r}) not destroyed", self)

    @property
    def visible(self):
        return self._visible

    @visible.setter
    def visible(self, value):
        changed = bool(value) != self._visible
        self._visible = bool(value)
        if changed:
            for fn in list(self._visibility_fns):
                fn(self._visible)

    def set_visibility_changed_fn(self, fn):
        self._visibility_fns.append(fn)

    def deferred_dock_in(self, target_window, active_window=None):
        self._docked_in = target_window

    def focus(self):
        pass

    def destroy(self):
        self._destroyed = True
        self._visibility_fns = []
        resources.release(self)
        frame = self.__dict__.get("frame")
        if frame is not None:
            frame.destroy()


# ------------------------------------------------------------------ models


class AbstractValueModel:
    _kind = None

    def _standin_setup(self):
        self._value = self._kind() if self._kind else None
        self._changed_fns = {}
        self._end_edit_fns = {}
        self._next_id = 1

    def _coerce(self, value):
        return self._kind(value) if self._kind else value

    def get_value_as_bool(self):
        return bool(self._value)

    def get_value_as_int(self):
        return int(self._value or 0)

    def get_value_as_float(self):
        return float(self._value or 0.0)

    def get_value_as_string(self):
        return "" if self._value is None else str(self._value)

    as_bool = property(get_value_as_bool, lambda self, v: self.set_value(v))
    as_int = property(get_value_as_int, lambda self, v: self.set_value(v))
    as_float = property(get_value_as_float, lambda self, v: self.set_value(v))
    as_string = property(get_value_as_string, lambda self, v: self.set_value(v))

    def set_value(self, value):
        value = self._coerce(value)
        if value == self._value:
            return
        self._value = value
        for fn in list(self._changed_fns.values()):
            fn(self)

    def add_value_changed_fn(self, fn):
        self._next_id += 1
        self._changed_fns[self._next_id] = fn
        return self._next_id

    def remove_value_changed_fn(self, id):
        self._changed_fns.pop(id, None)

    def subscribe_value_changed_fn(self, fn):
        fn_id = self.add_value_changed_fn(fn)
        sub = new_instance(_ui().Subscription)
        weakref.finalize(sub, self._changed_fns.pop, fn_id, None)
        return sub

    def add_end_edit_fn(self, fn):
        self._next_id += 1
        self._end_edit_fns[self._next_id] = fn
        return self._next_id

    def remove_end_edit_fn(self, id):
        self._end_edit_fns.pop(id, None)


class SimpleFloatModel:
    _kind = float

    def _standin_init(self, bound):
        self._value = float(bound.arguments.get("default_value", 0.0))


class SimpleIntModel:
    _kind = int

    def _standin_init(self, bound):
        self._value = int(bound.arguments.get("default_value", 0))


class SimpleBoolModel:
    _kind = bool

    def _standin_init(self, bound):
        self._value = bool(bound.arguments.get("default_value", False))


class SimpleStringModel:
    _kind = str

    def _standin_init(self, bound):
        self._value = str(bound.arguments.get("value", ""))


class AbstractItemModel:
    def _standin_setup(self):
        self._items = []
        self._item_fns = {}
        self._next_id = 1
        self._index = None

    def _set_items(self, texts, index):
        ui = _ui()
        self._items = []
        for text in texts:
            item = new_instance(ui.AbstractItem)
            model = new_instance(ui.SimpleStringModel)
            model._value = text
            object.__setattr__(item, "model", model)
            self._items.append(item)
        self._index = new_instance(ui.SimpleIntModel)
        self._index._value = int(index)
        self._index.add_value_changed_fn(lambda _m: self._item_changed(None))

    def _item_changed(self, item):
        for fn in list(self._item_fns.values()):
            fn(self, item)

    def get_item_value_model(self, item=None, column_id=0):
        if item is None:
            if self._index is None:
                self._set_items([], 0)
            return self._index
        return item.model

    def get_item_children(self, item=None):
        return list(self._items) if item is None else []

    def add_item_changed_fn(self, fn):
        self._next_id += 1
        self._item_fns[self._next_id] = fn
        return self._next_id

    def remove_item_changed_fn(self, id):
        self._item_fns.pop(id, None)


class ByteImageProvider:
    def set_bytes_data(self, bytes, sizes, format=None, stride=-1):
        width, height = int(sizes[0]), int(sizes[1])
        if stride == -1 and len(bytes) != width * height * 4:
            raise ValueError(f"ByteImageProvider.set_bytes_data: {len(bytes)} bytes for {width}x{height} RGBA8 "
                             f"(expected {width * height * 4})")
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "height", height)
        self._data = bytes

    def set_data_array(self, array, sizes):
        object.__setattr__(self, "width", int(sizes[0]))
        object.__setattr__(self, "height", int(sizes[1]))
        self._data = array


# ------------------------------------------------------------------ workspace

_show_window_fns: dict = {}  # title -> fn(show: bool), as registered with Workspace.set_show_window_fn


class Workspace:
    @staticmethod
    def show_window(title, show=True):
        """As omni.ui: the registered show function creates/shows the window, else an existing window is shown."""
        fn = _show_window_fns.get(title)
        if fn is not None:
            fn(bool(show))
            return True
        for window in windows():
            if getattr(window, "title", None) == title:
                window.visible = bool(show)
                return True
        return False

    @staticmethod
    def set_show_window_fn(title, fn):
        if fn is None:
            _show_window_fns.pop(title, None)
        else:
            _show_window_fns[title] = fn


CLASSES = {
    "Workspace": Workspace,
    "Widget": Widget, "Container": Container, "Frame": Frame, "CollapsableFrame": CollapsableFrame,
    "Button": Button, "AbstractField": AbstractField, "ComboBox": ComboBox, "Window": Window,
    "AbstractValueModel": AbstractValueModel, "SimpleFloatModel": SimpleFloatModel, "SimpleIntModel": SimpleIntModel,
    "SimpleBoolModel": SimpleBoolModel, "SimpleStringModel": SimpleStringModel,
    "AbstractItemModel": AbstractItemModel, "ByteImageProvider": ByteImageProvider,
}


# ------------------------------------------------------------------ test helpers (stand-in only)


def walk(root):
    """``root`` and every widget below it, depth first (a Window walks its frame)."""
    if isinstance(root, _ui().Window):
        root = root.frame
    yield root
    for child in list(getattr(root, "_children", [])):
        yield from walk(child)


def find(root, type_name: str | None = None, **props) -> list:
    """Widgets below ``root`` of class ``type_name`` whose attributes equal ``props``."""
    out = []
    for w in walk(root):
        if type_name is not None and type(w).__name__ != type_name:
            continue
        if all(getattr(w, k, None) == v for k, v in props.items()):
            out.append(w)
    return out


def windows() -> list:
    return [w for w in list(_windows) if not w._destroyed]
