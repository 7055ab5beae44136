"""YOLO (Ultralytics) export: ``detect/`` and ``segment/``, each with ``data.yaml``, ``images/<split>/`` (hard links
to the RGB) and ``labels/<split>/<image stem>.txt``.

Detect lines are ``class cx cy w h``; segment lines ``class x1 y1 x2 y2 ...``; all coordinates normalized by the
image width/height (0..1, origin at the image's top-left corner). Class ids are 0-based: ``class_id - 1``.
Polygons come from the instance masks (``polygons.py``): holes and separate parts are joined into the one polygon a
line can hold by zero-width bridges, so filling the polygon (even-odd or non-zero) gives back the mask.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import yaml

from ..manifest import write_file_durably
from .common import FORMAT_NEEDS, DatasetInfo, ExportSettings, FrameSource, link_or_copy, mask_extent
from .polygons import DEFAULT_TOLERANCE, mask_to_rings, merge_rings

TASKS = ("detect", "segment")


def yolo_box_line(class_index: int, box: tuple[float, float, float, float], width: int, height: int) -> str:
    """``class cx cy w h`` (normalized) of a half-open continuous-pixel box (x_min, y_min, x_max, y_max)."""
    x0, y0, x1, y1 = box
    return (f"{class_index} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
            f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}")


def yolo_polygon_line(class_index: int, polygon: np.ndarray, width: int, height: int) -> str:
    """``class x1 y1 x2 y2 ...`` (normalized, clipped to 0..1) of a polygon in continuous pixel coordinates."""
    xy = np.clip(np.asarray(polygon, float) / [width, height], 0.0, 1.0)
    values = xy.ravel().tolist()
    return f"{class_index} " + (" %.6f" * len(values) % tuple(values))[1:]


def mask_polygon(mask: np.ndarray, x0: int, y0: int, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """The single (bridged) polygon of a mask cropped at (x0, y0), in continuous pixel coordinates."""
    return merge_rings(mask_to_rings(mask, (x0, y0), tolerance))


class YoloExporter:
    """Writes YOLO detect and segment datasets side by side (they share the hard-linked images)."""

    needs = FORMAT_NEEDS["yolo"]

    def __init__(self, out: Path, dataset: DatasetInfo, settings: ExportSettings) -> None:
        self.out, self.dataset, self.settings = out, dataset, settings
        self._made: set[Path] = set()

    def _folder(self, *parts: str) -> Path:
        path = self.out.joinpath(*parts)
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def frame(self, src: FrameSource, split: str, objects: list[dict]) -> dict:
        rgb = src.path("rgb")
        stem = rgb.stem if rgb is not None else f"{src.index:06d}"
        W, H = src.width, src.height
        boxes, polygons = [], []
        for obj in objects:
            mask, x0, y0 = src.object_mask(obj)
            cls = int(obj["class_id"]) - 1
            boxes.append(yolo_box_line(cls, mask_extent(mask, x0, y0), W, H))
            polygons.append(yolo_polygon_line(cls, mask_polygon(mask, x0, y0), W, H))
        for task, lines in zip(TASKS, (boxes, polygons), strict=True):
            if rgb is not None:
                link_or_copy(rgb, self._folder(task, "images", split) / rgb.name)
            text = "".join(line + "\n" for line in lines)
            (self._folder(task, "labels", split) / f"{stem}.txt").write_text(text)
        return {"image": rgb.name if rgb is not None else None, "objects": len(objects)}

    def data_yaml(self, task: str) -> str:
        """Ultralytics dataset file. No ``path`` key, so Ultralytics resolves the folders against the file's own
        folder and the export can be moved. Without a val split, ``val`` points at the train images."""
        names = self.settings.split.names
        present = [n for n, f in self.settings.split.parts if f > 0]
        doc: dict = {"train": f"images/{'train' if 'train' in present else present[0]}",
                     "val": f"images/{'val' if 'val' in present else ('train' if 'train' in present else present[0])}"}
        if "test" in present:
            doc["test"] = "images/test"
        doc["nc"] = len(self.dataset.classes)
        doc["names"] = {cid - 1: name for cid, name in self.dataset.classes}
        header = (f"# SDG Studio YOLO {task} export. Class index = SDG Studio class id - 1. Splits: "
                  f"{', '.join(f'{n}={f:g}' for n, f in self.settings.split.parts)} (of {', '.join(names)}).\n")
        return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)

    def finalize(self, parts: Iterable[dict]) -> dict:
        for task in TASKS:
            self._folder(task)
            for split in self.settings.split.names:
                self._folder(task, "images", split)
                self._folder(task, "labels", split)
            write_file_durably(self.out / task / "data.yaml", self.data_yaml(task).encode(), drop_cache=False)
        return {"tasks": list(TASKS)}
