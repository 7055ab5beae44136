"""COCO instances export: ``annotations/instances_<split>.json`` + ``images/<split>/`` (hard links to the RGB).

Per frame, ``frame`` returns the image record and its annotations (RLE masks made with pycocotools); the JSON
files are assembled once by ``finalize`` from all frames' parts in one streaming pass.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np
from pycocotools import mask as mask_utils

from .. import __version__
from .common import FORMAT_NEEDS, DatasetInfo, ExportSettings, FrameSource, link_or_copy, mask_extent


def rle_counts(mask: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """Uncompressed COCO RLE counts of a mask cropped at (x0, y0) in a width x height image, from the crop alone.

    COCO runs go down the columns (column-major), starting with a run of zeros. Padding each crop column with a
    zero above and below, every value change in it is a run boundary at full-image index ``x * height + y``."""
    h, w = mask.shape
    padded = np.zeros((w, h + 2), bool)
    padded[:, 1:-1] = mask.T
    col, row = np.nonzero(padded[:, 1:] != padded[:, :-1])
    bounds = (x0 + col).astype(np.int64) * height + (y0 + row)
    return np.diff(np.concatenate([[0], bounds, [width * height]]))


def coco_rle(mask: np.ndarray, x0: int, y0: int, width: int, height: int) -> dict:
    """Compressed COCO RLE (``counts`` as str, as ``pycocotools.mask.encode`` of the full mask makes it) of a mask
    cropped at (x0, y0). Works on the crop only: the cost does not grow with the image size."""
    counts = rle_counts(mask, x0, y0, width, height).tolist()
    rle = mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
    return {"size": [height, width], "counts": rle["counts"].decode("ascii")}


def coco_annotation(obj: dict, mask: np.ndarray, x0: int, y0: int, width: int, height: int) -> dict:
    """One annotation without ids: tight bbox [x, y, w, h] (the mask's extent), area and RLE from the mask."""
    bx0, by0, bx1, by1 = mask_extent(mask, x0, y0)
    return {
        "category_id": int(obj["class_id"]),
        "bbox": [bx0, by0, bx1 - bx0, by1 - by0],
        "area": int(np.count_nonzero(mask)),
        "segmentation": coco_rle(mask, x0, y0, width, height),
        "iscrowd": 0,
        "visible_fraction": obj["visible_fraction"],
        "truncation": obj["truncation"],
        "instance_id": int(obj["instance_id"]),
    }


class CocoExporter:
    """Writes one COCO instances file per split."""

    needs = FORMAT_NEEDS["coco"]

    def __init__(self, out: Path, dataset: DatasetInfo, settings: ExportSettings) -> None:
        self.out, self.dataset, self.settings = out, dataset, settings

    def frame(self, src: FrameSource, split: str, objects: list[dict]) -> dict:
        rgb = src.path("rgb")
        file_name = rgb.name if rgb is not None else f"{src.index:06d}.png"
        if rgb is not None:
            folder = self.out / "images" / split
            folder.mkdir(parents=True, exist_ok=True)
            link_or_copy(rgb, folder / file_name)
        annotations = []
        for obj in objects:
            mask, x0, y0 = src.object_mask(obj)
            annotations.append(coco_annotation(obj, mask, x0, y0, src.width, src.height))
        image = {"id": src.index, "file_name": file_name, "width": src.width, "height": src.height}
        return {"image": image, "annotations": annotations}

    def finalize(self, parts: Iterable[dict]) -> dict:
        """Write ``annotations/instances_<split>.json`` in one pass over the parts: images and annotations go to
        temp files per split (memory stays one part), then each document is concatenated and renamed into place.
        Annotation ids are 1, 2, ... in frame order per file (COCOeval reads id 0 as "no match"); image ids are the
        dataset's frame indices."""
        folder = self.out / "annotations"
        folder.mkdir(parents=True, exist_ok=True)
        names = self.settings.split.names
        pieces = {n: (tempfile.TemporaryFile(dir=folder), tempfile.TemporaryFile(dir=folder)) for n in names}
        next_id = dict.fromkeys(names, 1)
        try:
            for part in parts:
                split, data = part["split"], part["data"]
                images, annotations = pieces[split]
                images.write(b"," if images.tell() else b"")
                images.write(json.dumps(data["image"], separators=(",", ":")).encode())
                for ann in data["annotations"]:
                    record = {"id": next_id[split], "image_id": data["image"]["id"], **ann}
                    annotations.write(b"," if annotations.tell() else b"")
                    annotations.write(json.dumps(record, separators=(",", ":")).encode())
                    next_id[split] += 1
            for split in names:
                self._assemble(folder / f"instances_{split}.json", split, *pieces[split])
        finally:
            for images, annotations in pieces.values():
                images.close()
                annotations.close()
        return {"annotations": {n: next_id[n] - 1 for n in names}}

    def _assemble(self, path: Path, split: str, images: IO[bytes], annotations: IO[bytes]) -> None:
        info = {"description": f"{self.dataset.config.get('name', 'sdgstudio')} ({split})", "version": __version__,
                "contributor": "SDG Studio"}
        categories = [{"id": cid, "name": name, "supercategory": "object"} for cid, name in self.dataset.classes]
        temp = path.with_name(f".{path.name}.tmp")
        with open(temp, "wb") as out:
            out.write(json.dumps({"info": info, "licenses": []}, separators=(",", ":"))[:-1].encode())
            for key, body in ((b',"images":[', images), (b'],"annotations":[', annotations)):
                out.write(key)
                body.seek(0)
                shutil.copyfileobj(body, out, 1 << 20)
            out.write(b'],"categories":' + json.dumps(categories, separators=(",", ":")).encode() + b"}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
