"""Running an export: per-frame parts appended to ``parts.jsonl``, aggregate files assembled once by ``finalize``.

An export folder (default ``<dataset>/exports/<format>``) holds ``export.json`` (settings, then counts once
complete), ``parts.jsonl`` (one line per exported frame: frame, split, labels checksum, kept/dropped counts and
the format's per-frame record) and the format's files. Per-frame files are written once and never rewritten;
the aggregate files (COCO JSON, BOP scene JSONs, ``data.yaml``, ImageSets) are written by ``finalize`` from the
parts, so re-running an export (or resuming a stopped one) exports only frames without an up-to-date part and
assembles everything again in O(frames) time and O(1) memory per frame (``parts.py``). ``parts.jsonl`` is
appended without fsync: exports are derived data and a lost tail is re-exported from the dataset on the next run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from .. import __version__
from ..manifest import DatasetLock, DatasetLockedError, read_manifest, write_file_durably
from .bop import BopExporter
from .coco import CocoExporter
from .common import DatasetInfo, ExportError, ExportSettings, FrameSource
from .kitti import KittiExporter
from .parts import PartsIndex, complete_length, encode_part
from .yolo import YoloExporter

EXPORTERS = {"coco": CocoExporter, "yolo": YoloExporter, "kitti": KittiExporter, "bop": BopExporter}
PARTS_NAME = "parts.jsonl"
META_NAME = "export.json"


def default_export_dir(dataset_dir: Path | str, fmt: str) -> Path:
    return Path(dataset_dir) / "exports" / fmt


class Export:
    """One format's export of one dataset. Use as a context manager: ``open`` on enter, ``close`` on exit."""

    def __init__(self, dataset: DatasetInfo, settings: ExportSettings, out: Path | str | None = None,
                 **exporter_options) -> None:
        self.dataset, self.settings = dataset, settings
        self.out = Path(out) if out is not None else default_export_dir(dataset.root, settings.format)
        self._options = exporter_options
        self._lock = DatasetLock(self.out)
        self._parts = None
        self.done: dict[int, str] = {}  #: frame -> labels sha256 of the frames with a part
        self.exporter = None

    def __enter__(self) -> Export:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        """Lock the folder, check or record the settings, and read which frames already have parts."""
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except DatasetLockedError as exc:
            raise ExportError(str(exc)) from None
        try:
            meta_path = self.out / META_NAME
            if meta_path.exists():
                old = json.loads(meta_path.read_text()).get("settings")
                if old != self.settings.to_json():
                    raise ExportError(f"{self.out} holds an export with other settings ({_diff(old, self.settings)});"
                                      f" remove it or choose another --out")
            self._write_meta({"complete": False})
            self.done = self._read_done()
            self._parts = open(self.out / PARTS_NAME, "ab")  # noqa: SIM115 - kept open while exporting
            self.exporter = EXPORTERS[self.settings.format](self.out, self.dataset, self.settings, **self._options)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._parts is not None:
            self._parts.close()
            self._parts = None
        self._lock.release()

    def needs(self, entry: dict) -> bool:
        """Whether a manifest entry lacks an up-to-date part (new frame, or its labels changed)."""
        sha = entry.get("sha256", {}).get(entry["files"]["labels"], "")
        return self.done.get(int(entry["frame"])) != sha

    def add(self, src: FrameSource) -> None:
        """Export one frame: filter its objects, pick its split, write its files and append its part."""
        for layer in self.exporter.needs:
            src.layer(layer, f"the {self.settings.format} export")
        kept, dropped = [], {}
        for obj in src.labels["objects"]:
            reason = self.settings.filter.rejects(obj)
            if reason is None:
                kept.append(obj)
            else:
                dropped[reason] = dropped.get(reason, 0) + 1
        split = self.settings.split.assign(self.dataset.seed, src.index)
        data = self.exporter.frame(src, split, kept)
        self._parts.write(encode_part(src.index, split, src.labels_sha256, len(kept), dropped, data))
        self.done[src.index] = src.labels_sha256

    def finalize(self, frames: Iterable[int] | None = None) -> dict:
        """Assemble the aggregate files from every part (of ``frames`` only, when given) and mark the export
        complete in ``export.json``; returns what ``export.json`` records."""
        self._parts.flush()
        parts = PartsIndex(self.out / PARTS_NAME, frames)
        result = self.exporter.finalize(parts)
        frames_per_split = {n: sum(1 for h in parts.headers if h.split == n) for n in self.settings.split.names}
        dropped: dict[str, int] = {}
        for h in parts.headers:
            for reason, n in h.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
        meta = {"complete": True, "frames": frames_per_split, "objects_kept": sum(h.kept for h in parts.headers),
                "objects_dropped": dropped, "result": result}
        self._write_meta(meta)
        return {"out": str(self.out), **meta}

    # -- internals ---------------------------------------------------------------------------------------

    def _write_meta(self, extra: dict) -> None:
        meta = {"tool": "sdgstudio", "version": __version__, "format": self.settings.format,
                "dataset": _relative(self.dataset.root, self.out), "settings": self.settings.to_json(),
                "classes": [{"id": i, "name": n} for i, n in self.dataset.classes], **extra}
        write_file_durably(self.out / META_NAME, (json.dumps(meta, indent=1) + "\n").encode(), drop_cache=False)

    def _read_done(self) -> dict[int, str]:
        path = self.out / PARTS_NAME
        keep = complete_length(path)
        if path.exists() and keep < path.stat().st_size:  # a torn last line from a killed run: cut it
            with open(path, "r+b") as fh:
                fh.truncate(keep)
        return {h.frame: h.labels_sha256 for h in PartsIndex(path).headers}


def _relative(target: Path, start: Path) -> str:
    import os

    try:
        return os.path.relpath(target.resolve(), start.resolve())
    except ValueError:  # other drive (Windows)
        return str(target.resolve())


def _diff(old: dict | None, new: ExportSettings) -> str:
    """The settings that differ, e.g. ``min_visible 0.0 there, 0.5 now``."""
    def flat(settings: dict) -> dict:
        return {"format": settings.get("format"), **settings.get("filter", {}), "split": settings.get("split")}

    before, now = flat(old or {}), flat(new.to_json())
    return "; ".join(f"{k} {before.get(k)} there, {now[k]} now" for k in now if before.get(k) != now[k])


def export_dataset(dataset_dir: Path | str, fmt: str, *, out: Path | str | None = None, split: str | None = None,
                   min_visible: float | None = None, min_pixels: int | None = None,
                   max_truncation: float | None = None, progress: Callable[[int, int], None] | None = None,
                   **exporter_options) -> dict:
    """Export every listed frame of a dataset to ``fmt``; returns the summary ``export.json`` records.

    Options left None come from the dataset config's ``output.export`` table, else the defaults (every frame
    in train, objects with at least one visible pixel). ``progress(done, total)`` is called after each frame.
    """
    dataset = DatasetInfo.read(dataset_dir)
    settings = ExportSettings.from_options(fmt, dataset.export_options(), split=split, min_visible=min_visible,
                                           min_pixels=min_pixels, max_truncation=max_truncation)
    entries = read_manifest(dataset.root)
    with Export(dataset, settings, out, **exporter_options) as export:
        todo = [e for e in entries if export.needs(e)]
        for n, entry in enumerate(todo, 1):
            export.add(FrameSource(dataset.root, entry))
            if progress is not None:
                progress(n, len(todo))
        return export.finalize(int(e["frame"]) for e in entries)
