"""Dataset exports people train on directly: COCO, YOLO (detect + segment), KITTI and BOP (docs/formats.md).

``export_dataset(dir, "coco")`` exports a finished dataset; ``StreamingExport`` exports while ``generate`` writes.
Label filters and splits (``common.py``) are shared by every format; each format is one module.
"""

from .common import FORMATS, DatasetInfo, ExportError, ExportSettings, FrameSource, LabelFilter, Split
from .run import Export, default_export_dir, export_dataset
from .stream import StreamingExport

__all__ = ["FORMATS", "DatasetInfo", "Export", "ExportError", "ExportSettings", "FrameSource", "LabelFilter",
           "Split", "StreamingExport", "default_export_dir", "export_dataset"]
