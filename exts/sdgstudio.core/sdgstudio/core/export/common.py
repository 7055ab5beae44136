"""What every export format shares: the label filter, the split, export settings, and reading one dataset frame.

The filter and the split are pure functions of a frame's labels and of ``(seed, frame index)``, so every format,
the streaming export inside ``generate`` and ``sdgstudio export`` afterwards keep exactly the same objects and
put every frame in the same split.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..encoders import read_layer
from ..manifest import read_dataset_info

FORMATS = ("coco", "yolo", "kitti", "bop")
SPLIT_NAMES = ("train", "val", "test")
#: Image layers (annotators) each format reads besides the labels.
FORMAT_NEEDS: dict[str, tuple[str, ...]] = {
    "coco": ("instance_segmentation",),
    "yolo": ("instance_segmentation",),
    "kitti": (),
    "bop": ("instance_segmentation", "depth"),
}


class ExportError(ValueError):
    """An export that cannot be made as asked (bad option, unsuitable dataset); the message is one line."""


@dataclass(frozen=True)
class LabelFilter:
    """Which labelled objects an export keeps. An object is kept when all three tests pass."""

    min_visible: float = 0.0  #: keep objects with visible_fraction >= this (0..1)
    min_pixels: int = 1  #: keep objects with at least this many visible pixels (>= 1)
    max_truncation: float = 1.0  #: keep objects with truncation <= this (0..1)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_visible <= 1.0:
            raise ExportError(f"min-visible must be within 0..1, got {self.min_visible:g}")
        if int(self.min_pixels) != self.min_pixels or self.min_pixels < 1:
            raise ExportError(f"min-pixels must be a whole number >= 1, got {self.min_pixels}")
        if not 0.0 <= self.max_truncation <= 1.0:
            raise ExportError(f"max-truncation must be within 0..1, got {self.max_truncation:g}")

    def rejects(self, obj: dict) -> str | None:
        """Why ``obj`` (one entry of a labels file's ``objects``) is dropped, or None when it is kept."""
        if obj["pixel_count"] < self.min_pixels:
            return "min_pixels"
        if obj["visible_fraction"] < self.min_visible:
            return "min_visible"
        if obj["truncation"] > self.max_truncation:
            return "max_truncation"
        return None


@dataclass(frozen=True)
class Split:
    """Named fractions of the frames, in order (e.g. train 0.8, val 0.1, test 0.1), summing to 1."""

    parts: tuple[tuple[str, float], ...] = (("train", 1.0),)

    @classmethod
    def parse(cls, text: str | dict) -> Split:
        """Read ``"train=0.8,val=0.1,test=0.1"`` or ``{"train": 0.8, ...}``."""
        if isinstance(text, dict):
            items = list(text.items())
        else:
            items = []
            for piece in filter(None, (p.strip() for p in str(text).split(","))):
                name, sep, value = piece.partition("=")
                if not sep:
                    raise ExportError(f"split: expected NAME=FRACTION pairs like train=0.8,val=0.2, got '{piece}'")
                try:
                    items.append((name.strip(), float(value)))
                except ValueError:
                    raise ExportError(f"split: '{value}' in '{piece}' is not a number") from None
        names = [n for n, _ in items]
        unknown = [n for n in names if n not in SPLIT_NAMES]
        if not items or unknown or len(set(names)) != len(names):
            raise ExportError(f"split: names must be distinct ones of {', '.join(SPLIT_NAMES)}, got {names}")
        if any(not 0.0 <= f <= 1.0 for _, f in items) or abs(sum(f for _, f in items) - 1.0) > 1e-6:
            raise ExportError(f"split: fractions must be within 0..1 and sum to 1, got {dict(items)}")
        items.sort(key=lambda item: SPLIT_NAMES.index(item[0]))  # canonical order: the same fractions, same split
        return cls(tuple((n, float(f)) for n, f in items))

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.parts]

    def assign(self, seed: int, frame: int) -> str:
        """The split of ``frame``: a uniform number from BLAKE2b of ``"seed:frame"`` against the cumulative
        fractions. Depends on nothing else, so it is the same in every format, in a resumed or streamed export,
        and a frame's split never changes when more frames are added."""
        digest = hashlib.blake2b(f"{seed}:{frame}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2.0**64
        total = 0.0
        for name, fraction in self.parts:
            total += fraction
            if u < total:
                return name
        return next(n for n, f in reversed(self.parts) if f > 0)

    def to_json(self) -> dict:
        return dict(self.parts)


@dataclass(frozen=True)
class ExportSettings:
    """Everything that decides an export's content besides the dataset; recorded in its ``export.json``."""

    format: str
    filter: LabelFilter = field(default_factory=LabelFilter)
    split: Split = field(default_factory=Split)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ExportError(f"unknown format '{self.format}' (expected one of {', '.join(FORMATS)})")

    def to_json(self) -> dict:
        return {"format": self.format, "filter": asdict(self.filter), "split": self.split.to_json()}

    @classmethod
    def from_options(cls, fmt: str, options: dict | None = None, **overrides) -> ExportSettings:
        """Settings from a config's ``output.export`` table (``options``), with non-None ``overrides``."""
        values = {"split": {"train": 1.0}, "min_visible": 0.0, "min_pixels": 1, "max_truncation": 1.0}
        values.update(options or {})
        values.update({k: v for k, v in overrides.items() if v is not None})
        flt = LabelFilter(float(values["min_visible"]), values["min_pixels"], float(values["max_truncation"]))
        return cls(fmt, flt, Split.parse(values["split"]))


@dataclass
class DatasetInfo:
    """What exports need from ``dataset.json``: the class table, the seed and the config (as a mapping)."""

    root: Path
    classes: list[tuple[int, str]]  #: (stable id, name), ids 1-based in config order
    seed: int
    config: dict
    rgb_format: str

    @classmethod
    def read(cls, root: Path | str) -> DatasetInfo:
        root = Path(root)
        if not (root / "dataset.json").is_file() or not (root / "manifest.jsonl").is_file():
            raise ExportError(f"{root} is not a dataset folder (no dataset.json and manifest.jsonl)")
        info = read_dataset_info(root)
        config = info.get("config", {})
        return cls(root, [(int(c["id"]), str(c["name"])) for c in info["classes"]], int(info.get("seed", 0)), config,
                   config.get("output", {}).get("rgb_format", "png"))

    def export_options(self) -> dict:
        """The config's ``output.export`` table (empty when the dataset predates it)."""
        return dict(self.config.get("output", {}).get("export", {}) or {})


class FrameSource:
    """One listed frame of a dataset, its files decoded on first use (shared by every format exporting it)."""

    def __init__(self, root: Path, entry: dict) -> None:
        self.root = root
        self.entry = entry
        self.index = int(entry["frame"])
        self._labels: dict | None = None
        self._layers: dict[str, np.ndarray] = {}

    @property
    def labels(self) -> dict:
        if self._labels is None:
            self._labels = json.loads((self.root / self.entry["files"]["labels"]).read_text())
        return self._labels

    @property
    def width(self) -> int:
        return int(self.labels["camera"]["width"])

    @property
    def height(self) -> int:
        return int(self.labels["camera"]["height"])

    @property
    def labels_sha256(self) -> str:
        return self.entry.get("sha256", {}).get(self.entry["files"]["labels"], "")

    def path(self, layer: str) -> Path | None:
        name = self.entry["files"].get(layer)
        return None if name is None else self.root / name

    def layer(self, layer: str, needed_by: str = "this export") -> np.ndarray:
        """A decoded image layer; ExportError when the dataset did not record it."""
        if layer not in self._layers:
            path = self.path(layer)
            if path is None:
                raise ExportError(f"frame {self.index} has no {layer} layer, which {needed_by} needs "
                                  f"(add it to the config's annotators)")
            self._layers[layer] = read_layer(path)
        return self._layers[layer]

    def object_mask(self, obj: dict) -> tuple[np.ndarray, int, int]:
        """``obj``'s visible pixels cropped to its tight box: (bool mask, x0, y0). Checks the mask against the
        labels' pixel count, so an export never silently disagrees with the instance image."""
        ids = self.layer("instance_segmentation")
        x0, y0, x1, y1 = (int(round(v)) for v in obj["bbox_2d_tight"])
        mask = ids[y0:y1, x0:x1] == obj["instance_id"]
        if int(np.count_nonzero(mask)) != obj["pixel_count"]:
            raise ExportError(f"frame {self.index}: object {obj['instance_id']} has {np.count_nonzero(mask)} pixels "
                              f"in its tight box but pixel_count {obj['pixel_count']}")
        return mask, x0, y0


def mask_extent(mask: np.ndarray, x0: int = 0, y0: int = 0) -> tuple[int, int, int, int]:
    """Half-open extent (x_min, y_min, x_max, y_max) of a non-empty mask whose top-left pixel is (x0, y0)."""
    cols, rows = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    return x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1


def link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src``: a hard link (no extra space), else a copy (other file system)."""
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def safe_name(name: str) -> str:
    """A class name as one whitespace-free token (KITTI and YOLO files are whitespace-separated)."""
    return re.sub(r"\s+", "_", name.strip()) or "_"
