"""omni.kit.window.filepicker stand-in state: open dialogs (tracked until destroyed) and a helper to choose a path.

A dialog is visible from construction (as the real one) until ``hide()``; ``destroy()`` releases it. Tests use
``dialogs()`` and ``choose(dialog, filename, dirname)`` (clicks the apply button: calls ``click_apply_handler``).
"""

from __future__ import annotations

import weakref

from contract_standin import resources

_dialogs: weakref.WeakSet = weakref.WeakSet()


class FilePickerDialog:
    def _standin_setup(self):
        self._visible = True
        self._destroyed = False

    def _standin_init(self, bound):
        _dialogs.add(self)
        resources.track("file picker", f"FilePickerDialog({bound.arguments.get('title')!r}) not destroyed", self)

    def hide(self):
        self._visible = False

    def destroy(self):
        self._destroyed = True
        self._visible = False
        resources.release(self)
        for key in ("click_apply_handler", "click_cancel_handler", "item_filter_fn"):
            self.__dict__.pop(key, None)


CLASSES = {"FilePickerDialog": FilePickerDialog}


# ------------------------------------------------------------------ test helpers (stand-in only)


def dialogs(visible_only: bool = True) -> list:
    """Dialogs not destroyed (and, by default, not hidden), oldest first."""
    return [d for d in list(_dialogs) if not d._destroyed and (d._visible or not visible_only)]


def choose(dialog, filename: str, dirname: str):
    """Click the dialog's apply button with this selection."""
    handler = dialog.__dict__.get("click_apply_handler")
    if handler is None:
        raise RuntimeError("the dialog has no click_apply_handler (or was destroyed)")
    return handler(filename, dirname)


def cancel(dialog):
    handler = dialog.__dict__.get("click_cancel_handler")
    return handler("", "") if handler else None
