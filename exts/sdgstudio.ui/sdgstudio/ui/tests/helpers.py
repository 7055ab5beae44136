"""Shared by sdgstudio.ui's Kit tests: open the window from its menu entry, find widgets, drive them, wait.

Widgets are found through the omni.ui stand-in's tree (its ``_behaviour`` helpers), so the tests that use these
helpers skip themselves under a real omni.ui (Isaac Sim), as docs/testing.md asks.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import carb.settings
import omni.kit.app
import omni.ui as ui
import tomli_w
from sdgstudio.core.config import config_to_dict, load_config
from sdgstudio.core.extension import builtin_scene

STANDIN = bool(getattr(ui, "__standin__", False))
MENU_PATH = "Tools/Replicator/SDG Studio"
PERSISTENT = "/persistent/exts/sdgstudio.ui"
SKIP_REASON = "drives widgets through the omni.ui contract stand-in (tests/kit); Isaac Sim has the real omni.ui"


async def updates(n: int = 1) -> None:
    for _ in range(n):
        await omni.kit.app.get_app().next_update_async()


def reset_persistent_state() -> None:
    settings = carb.settings.get_settings()
    settings.destroy_item(f"{PERSISTENT}/lastConfig")
    settings.destroy_item(f"{PERSISTENT}/windowState")


def standin(module: str):
    """A stand-in's test helpers (``<module>._behaviour``: ``walk``, ``click``, ``choose`` ...). They are no part of
    the API our code may call, so they are loaded by name, apart from the API the contract scan checks."""
    return importlib.import_module(f"{module}._behaviour")


def _ui_standin():
    return standin("omni.ui")


async def open_window():
    """Click the menu entry; the window's frames build on the next updates (as omni.ui draws)."""
    window = standin("omni.kit.menu.utils").click(MENU_PATH)
    await updates(3)
    return window


async def close_window(window) -> None:
    """Close it as a user does (hide): the menu helper destroys it one update later."""
    if window is not None and not window._destroyed:
        window.visible = False
        await updates(3)


def all_widgets(window) -> list:
    return list(_ui_standin().walk(window))


def widget(window, identifier: str):
    found = [w for w in all_widgets(window) if getattr(w, "identifier", None) == identifier]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} widgets with identifier {identifier!r}")
    return found[0]


def identifiers(window, prefix: str = "") -> list[str]:
    return [i for w in all_widgets(window) if isinstance(i := getattr(w, "identifier", None), str) and i.startswith(prefix)]


def click(window, identifier: str) -> None:
    button = widget(window, identifier)
    if not button.enabled:
        raise AssertionError(f"{identifier} is disabled")
    button.call_clicked_fn()


def field_path(identifier: str) -> str:
    """"sdg:assets.0.library.1.file#x" -> "assets[].library[].file" (the schema path of the field)."""
    text = identifier.split(":", 1)[1].split("#", 1)[0]
    return re.sub(r"\.\d+(?=\.|$)", "[]", text)


def visible_messages(window) -> dict[str, str]:
    return {w.identifier.split(":", 1)[1]: w.text for w in all_widgets(window)
            if str(getattr(w, "identifier", "")).startswith("sdg-msg:") and w.visible and w.text}


async def wait_until(predicate, limit: int = 6000) -> int:
    """Kit updates until ``predicate()``; returns how many it took (fails after ``limit``)."""
    for n in range(limit):
        if predicate():
            return n
        await updates()
    raise AssertionError(f"condition not met after {limit} Kit updates")


def small_config_file(folder: Path, *, frames: int = 3, props: int = 1, name: str = "small.toml") -> Path:
    """The built-in tabletop scene cut down (fewer props, 64x48 pixels) so Kit-tier runs take seconds."""
    config = load_config(builtin_scene("tabletop"))
    data = config_to_dict(config)
    data["props"] = data["props"][:props]
    data["camera"]["resolution"] = [64, 48]
    data["output"]["frames"] = frames
    data["output"]["dir"] = str(folder / "out")
    path = folder / name
    path.write_text(tomli_w.dumps(data))
    return path
