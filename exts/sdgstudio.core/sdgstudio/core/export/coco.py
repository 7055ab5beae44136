"""COCO instances export: ``annotations/instances_<split>.json`` + ``images/<split>/`` (hard links to the RGB).

Per frame, ``frame`` returns the image record and its annotations (RLE masks made with pycocotools); the JSON
files are assembled once by ``finalize`` from all frames' parts, streamed to disk split by split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from .. import __version__
from ..manifest import write_file_durably
from .common import FORMAT_NEEDS, DatasetInfo, ExportSettings, FrameSource, link_or_copy, mask_extent


def coco_rle(mask: np.ndarray, x0: int, y0: int, width: int, height: int) -> dict:
    """Compressed COCO RLE (``counts`` as str) of a mask cropped at (x0, y0) in a width x height image."""
    full = np.zeros((height, width), np.uint8, order="F")
    full[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
    rle = mask_utils.encode(full)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


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

    def finalize(self, parts: list[dict]) -> dict:
        categories = [{"id": cid, "name": name, "supercategory": "object"} for cid, name in self.dataset.classes]
        folder = self.out / "annotations"
        folder.mkdir(parents=True, exist_ok=True)
        counts = {}
        for split in self.settings.split.names:
            chosen = [p for p in parts if p["split"] == split]
            path = folder / f"instances_{split}.json"
            write_file_durably(path, self._document(chosen, categories, split), drop_cache=False)
            counts[split] = sum(len(p["data"]["annotations"]) for p in chosen)
        return {"annotations": counts}

    def _document(self, parts: list[dict], categories: list[dict], split: str) -> bytes:
        """The instances JSON of one split. Annotation ids are 1, 2, ... in frame order (0 means "unmatched" to
        COCOeval); image ids are the dataset's frame indices."""
        info = {"description": f"{self.dataset.config.get('name', 'sdgstudio')} ({split})",
                "version": __version__, "contributor": "SDG Studio"}
        images, annotations, next_id = [], [], 1
        for part in parts:
            images.append(json.dumps(part["data"]["image"], separators=(",", ":")))
            for ann in part["data"]["annotations"]:
                record = {"id": next_id, "image_id": part["data"]["image"]["id"], **ann}
                annotations.append(json.dumps(record, separators=(",", ":")))
                next_id += 1
        head = json.dumps({"info": info, "licenses": []}, separators=(",", ":"))[:-1]
        return (f'{head},"images":[{",".join(images)}],"annotations":[{",".join(annotations)}],'
                f'"categories":{json.dumps(categories, separators=(",", ":"))}}}\n').encode()
