"""omni.kit.menu.utils stand-in state: the menus added (tracked until removed) and a helper to click an entry."""

from __future__ import annotations

from contract_standin import resources

_menus: dict[str, list] = {}  # menu name -> MenuItemDescription list
_helper_entries: dict[str, object] = {}  # "<group>/<desc>" -> MenuHelperExtensionFull instance


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

    def menu_shutdown(self):
        helper = getattr(self, "_menu_helper", None)
        if helper is None:
            return
        _helper_entries.pop(helper[2], None)
        resources.release(self)
        window = getattr(self, helper[3], None)
        if window is not None:
            window.destroy()
            setattr(self, helper[3], None)
        self._menu_helper = None


CLASSES = {"MenuHelperExtensionFull": MenuHelperExtensionFull}
FUNCTIONS = {"add_menu_items": add_menu_items, "remove_menu_items": remove_menu_items}


# ------------------------------------------------------------------ test helpers (stand-in only)


def click(path: str):
    """Click ``"<menu>/<item>"`` (add_menu_items) or ``"<group>/<desc>"`` (menu_startup); returns what it created."""
    helper_ext = _helper_entries.get(path)
    if helper_ext is not None:
        create_window_fn, _name, _path, attr = helper_ext._menu_helper
        window = getattr(helper_ext, attr, None)
        if window is None:
            window = create_window_fn()
            setattr(helper_ext, attr, window)
        else:
            window.visible = not window.visible
        return window
    menu, _, item_name = path.partition("/")
    for item in _menus.get(menu, []):
        if getattr(item, "name", None) == item_name:
            fn = getattr(item, "onclick_fn", None)
            return fn() if fn else None
    raise KeyError(f"no menu entry {path!r}; have {sorted(_helper_entries)} and "
                   f"{[f'{m}/{i.name}' for m, items in _menus.items() for i in items]}")
