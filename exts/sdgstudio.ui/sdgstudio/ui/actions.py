"""Small side effects the window triggers, kept free of Kit: opening a folder, building a dataset report.

``build_report`` comes from ``sdgstudio.core.report`` when that module exists (it is developed separately); the
window disables "Open report" without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def open_with_os(path: Path | str) -> None:
    """Open a folder or file with the desktop's default application (non-blocking)."""
    path = str(path)
    if sys.platform.startswith("win"):
        os.startfile(path)  # type: ignore[attr-defined]  # noqa: S606
    elif sys.platform == "darwin":
        subprocess.Popen(["open", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603,S607
    else:
        subprocess.Popen(["xdg-open", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603,S607


def report_builder() -> Callable[[Path], Path] | None:
    """``sdgstudio.core.report.build_report(dataset_dir) -> Path`` if this install has it, else None."""
    try:
        from sdgstudio.core import report  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(report, "build_report", None)
