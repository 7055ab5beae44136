"""Reading what the report needs from a dataset folder: ``dataset.json``, the manifest and the label files.

Only frames that ``manifest.jsonl`` lists are read (a listed frame is complete; anything else may be a frame a
crash left half-written). Label files are parsed on a few threads: file reads release the GIL, which hides
the page-cache and disk latency of thousands of small files.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..manifest import DATASET_INFO_NAME, MANIFEST_NAME, read_dataset_info, read_manifest


class ReportError(RuntimeError):
    """The folder is not a dataset the report can read; the message is one line naming the file and problem."""


@dataclass
class DatasetContents:
    """A dataset's description, its listed frames and their labels, in manifest order."""

    root: Path
    info: dict  #: dataset.json
    entries: list[dict]  #: manifest lines of the frames whose labels were read
    labels: list[dict]  #: labels_*.json of the same frames, same order
    missing: list[int] = field(default_factory=list)  #: listed frames whose label file is missing

    def file_of(self, entry: dict, layer: str) -> Path | None:
        """The file holding ``layer`` of a frame, or None when the frame has no such layer on disk."""
        name = entry.get("files", {}).get(layer)
        return self.root / name if name and (self.root / name).is_file() else None


def _labels_name(entry: dict) -> str:
    return entry.get("files", {}).get("labels") or f"labels_{int(entry['frame']):06d}.json"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def read_dataset(root: Path | str, *, threads: int = 4) -> DatasetContents:
    """Everything the report reads from the dataset folder ``root``.

    Raises:
        ReportError: no ``dataset.json`` or ``manifest.jsonl``, or one of them (or a label file) is not JSON.
    """
    root = Path(root)
    for name in (DATASET_INFO_NAME, MANIFEST_NAME):
        if not (root / name).is_file():
            raise ReportError(f"{root}: no {name}; is this a dataset folder written by 'sdgstudio generate'?")
    try:
        info = read_dataset_info(root)
        entries = read_manifest(root)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{root}: dataset.json or manifest.jsonl is not valid JSON ({exc})") from exc
    paths = [root / _labels_name(e) for e in entries]
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            labels = list(pool.map(_read_json, paths, chunksize=64))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{root}: a label file is not valid JSON ({exc})") from exc
    kept = [(e, lab) for e, lab in zip(entries, labels, strict=True) if lab is not None]
    missing = [int(e["frame"]) for e, lab in zip(entries, labels, strict=True) if lab is None]
    return DatasetContents(root, info, [e for e, _ in kept], [lab for _, lab in kept], missing)
