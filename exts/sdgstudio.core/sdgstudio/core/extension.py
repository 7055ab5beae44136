"""Kit entry point of sdgstudio.core: a deliberately tiny ``omni.ext.IExt`` (no omni.ui, no Replicator).

It records where Kit installed the extension, so Kit-side code (the window, the Replicator backend, tests) finds
the built-in scenes without guessing paths, and reads this extension's settings. Nothing here subscribes to
anything, so there is nothing for ``on_shutdown`` to leak. Imported only inside Kit.
"""

from __future__ import annotations

from pathlib import Path

import carb
import carb.settings
import omni.ext
import omni.kit.app

from . import __version__

SETTINGS_ROOT = "/exts/sdgstudio.core"
_extension_path: Path | None = None


def extension_path() -> Path:
    """The extension's folder (``exts/sdgstudio.core``): Kit's record while enabled, else next to this file."""
    return _extension_path if _extension_path is not None else Path(__file__).resolve().parents[2]


def builtin_scene(name: str | None = None) -> Path:
    """Path of a built-in scene config (``data/scenes/<name>.toml``; default: the ``defaultScene`` setting)."""
    name = name or carb.settings.get_settings().get(f"{SETTINGS_ROOT}/defaultScene") or "tabletop"
    return extension_path() / "data" / "scenes" / f"{name}.toml"


def raster_device() -> str:
    """Warp device for the raster backend inside Kit (setting ``/exts/sdgstudio.core/rasterDevice``)."""
    return carb.settings.get_settings().get(f"{SETTINGS_ROOT}/rasterDevice") or "cpu"


class SdgStudioCoreExtension(omni.ext.IExt):
    """Startup records the extension folder; shutdown forgets it."""

    def on_startup(self, ext_id: str) -> None:
        global _extension_path
        manager = omni.kit.app.get_app().get_extension_manager()
        _extension_path = Path(manager.get_extension_path(ext_id))
        carb.log_info(f"sdgstudio.core {__version__} started from {_extension_path}")

    def on_shutdown(self) -> None:
        global _extension_path
        _extension_path = None
