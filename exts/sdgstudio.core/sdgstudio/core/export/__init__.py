"""Dataset exports people train on directly: COCO, YOLO (detect + segment), KITTI and BOP (docs/formats.md).

``export_dataset(dir, "coco")`` exports a finished dataset; ``StreamingExport`` exports while ``generate`` writes.
Label filters and splits (``common.py``) are shared by every format; each format is one module. Names are
imported on first use, so the config's validators can read ``common`` without loading pycocotools or PyYAML.
"""

from __future__ import annotations

import importlib

_NAMES = {
    "FORMATS": "common", "DatasetInfo": "common", "ExportError": "common", "ExportSettings": "common",
    "FrameSource": "common", "LabelFilter": "common", "Split": "common",
    "Export": "run", "default_export_dir": "run", "export_dataset": "run", "StreamingExport": "stream",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value
