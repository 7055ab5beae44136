"""omni.kit.menu.utils stand-in state: the menus added (tracked until removed) and a helper to click an entry.

``MenuHelperExtensionFull`` behaves as the real helper (omni.kit.menu.utils extension_window_helper_full.py):
``menu_startup`` registers the window's show function with ``omni.ui.Workspace`` (so
``Workspace.show_window(name)`` creates it), the menu entry toggles the window, and hiding the window destroys it
one update later (the next show creates a new one); ``menu_shutdown`` destroys it and unregisters everything.
"""

from __future__ import annotations

import asyncio
import sys

from contract_standin import resources
from contract_standin.standin import next_update

_menus: dict[str, list] = {}  # menu name -> MenuItemDescription list
_helper_entries: dict[str, object] = {}  # "<group>/<desc>" -> MenuHelperExtensionFull instance
_pending: set = set()  # destroy-after-hide tasks (kept so they are not collected mid-flight)


def add_menu_items(menu, name, menu_index=0, can_rebuild_menus=True, delegate=None):
    items = _menus.setdefault(name, [])
    for item in menu:
        items.append(item)
        resources.track("menu item", f"menu item {name}/{getattr(item, 'name', '?')} not removed", item, weak=False)


def remove_menu_items(menu, name, can_rebuild_menus=True):
    items = _menus.get(name, [])
    for item in menu:
        if item in items:
            items.remove(item)
        resources.release(item)
    if not items:
        _menus.pop(name, None)


class MenuHelperExtensionFull:
    def menu_startup(self, create_window_fn, window_name, menu_desc, menu_group, window_attr_name=None, verbose=False):
        self._menu_helper = (create_window_fn, window_name, f"{menu_group}/{menu_desc}", window_attr_name or "_window")
        _helper_entries[f"{menu_group}/{menu_desc}"] = self
        resources.track("menu entry", f"menu entry {menu_group}/{menu_desc} not shut down", self, weak=False)
        sys.modules["omni.ui"].Workspace.set_show_window_fn(window_name, lambda show, h=self: _show(h, show))

    def menu_shutdown(self):
        helper = getattr(self, "_menu_helper", None)
        if helper is None:
            return
        _helper_entries.pop(helper[2], None)
        sys.modules["omni.ui"].Workspace.set_show_window_fn(helper[1], None)
        resources.release(self)
        window = getattr(self, helper[3], None)
        if window is not None:
            window.destroy()
            setattr(self, helper[3], None)
        self._menu_helper = None


def _show(helper_ext, show: bool):
    """The real helper's show_window: create (hidden first, then shown so visibility callbacks fire) or hide."""
    create_window_fn, _name, _path, attr = helper_ext._menu_helper
    window = getattr(helper_ext, attr, None)
    if show:
        if window is None:
            window = create_window_fn()
            setattr(helper_ext, attr, window)
            window.visible = False
            window.set_visibility_changed_fn(lambda visible, h=helper_ext, w=window: _visibility_changed(h, w, visible))
        window.visible = True
    elif window is not None:
        window.visible = False
    return window


def _visibility_changed(helper_ext, window, visible: bool) -> None:
    if visible:
        return
    task = asyncio.ensure_future(_destroy_after_hide(helper_ext, window))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _destroy_after_hide(helper_ext, window) -> None:
    await next_update()  # as the real helper: one update later
    helper = getattr(helper_ext, "_menu_helper", None)
    if helper is not None and getattr(helper_ext, helper[3], None) is window and not window.visible:
        window.destroy()
        setattr(helper_ext, helper[3], None)


CLASSES = {"MenuHelperExtensionFull": MenuHelperExtensionFull}
FUNCTIONS = {"add_menu_items": add_menu_items, "remove_menu_items": remove_menu_items}


# ------------------------------------------------------------------ test helpers (stand-in only)


def click(path: str):
    """Click ``"<menu>/<item>"`` (add_menu_items) or ``"<group>/<desc>"`` (menu_startup); returns what it created."""
    helper_ext = _helper_entries.get(path)
    if helper_ext is not None:
        window = getattr(helper_ext, helper_ext._menu_helper[3], None)
        return _show(helper_ext, not (window is not None and window.visible))
    menu, _, item_name = path.partition("/")
    for item in _menus.get(menu, []):
        if getattr(item, "name", None) == item_name:
            fn = getattr(item, "onclick_fn", None)
            return fn() if fn else None
    raise KeyError(f"no menu entry {path!r}; have {sorted(_helper_entries)} and "
                   f"{[f'{m}/{i.name}' for m, items in _menus.items() for i in items]}")
