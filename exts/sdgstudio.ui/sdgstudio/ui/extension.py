"""Kit entry point of sdgstudio.ui: registers the Tools/Replicator/SDG Studio menu entry and its window.

``MenuHelperExtensionFull`` creates the window when the entry is clicked and destroys it when it is closed and on
shutdown. With the setting ``/exts/sdgstudio.ui/open_window_on_startup`` (the SDG Studio app sets it) the window
opens as the extension starts. Imported only inside Kit.
"""

from __future__ import annotations

import carb.settings
import omni.ext
import omni.ui as ui
from omni.kit.menu.utils import MenuHelperExtensionFull

from .window import EXT_SETTINGS, WINDOW_TITLE, SdgStudioWindow

MENU_GROUP = "Tools/Replicator"


class SdgStudioUiExtension(omni.ext.IExt, MenuHelperExtensionFull):
    """Menu entry + window; nothing else lives here."""

    def on_startup(self, ext_id: str) -> None:
        self.menu_startup(lambda: SdgStudioWindow(WINDOW_TITLE), WINDOW_TITLE, WINDOW_TITLE, MENU_GROUP)
        if carb.settings.get_settings().get(f"{EXT_SETTINGS}/open_window_on_startup"):
            ui.Workspace.show_window(WINDOW_TITLE)

    def on_shutdown(self) -> None:
        self.menu_shutdown()
