"""Shards of one run and their merge into one dataset.

A run of ``total`` frames is cut into ``count`` contiguous blocks of frame indices (``shard_frames``): shard ``i``
renders frames ``[start, stop)``, the first ``total % count`` shards one frame more than the rest. Frame ``k``
is drawn from ``SeedSequence([seed, k])`` whichever process renders it, so the blocks are disjoint and
reproducible, each shard's manifest is in frame order, and merging every shard gives, file for file, the
dataset a single process would have written (the same ``dataset.json`` and ``manifest.jsonl`` bytes too).

A shard folder is an ordinary dataset folder plus ``shard.json`` (``{"shard": i, "count": N, "total": F,
"frames": [start, stop]}``), written by ``generate_shard`` once the shard is complete; ``merge_shards`` uses it to
check that every shard of the run is there. ``launch.py`` runs the shards as Ray tasks; the Isaac Sim runner and
Kubernetes Indexed Jobs (docs/scale-out.md) use ``shard_frames`` the same way.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .files import fsync_dir, write_file_durably
from .generate import RunSummary, _config_differences, generate
from .manifest import (
    DATASET_INFO_NAME,
    MANIFEST_NAME,
    DatasetLock,
    DatasetLockedError,
    read_dataset_info,
    verify_entry,
    write_dataset_info,
)
from .session import RunError

SHARD_INFO_NAME = "shard.json"


class MergeError(RunError):
    """Shards that cannot be merged (other settings, overlapping or missing frames, damaged files): one line."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)`` with ``0 <= i < N`` (0-based, like a Kubernetes completion index)."""
    head, sep, tail = text.partition("/")
    if not sep or not head.strip().isdigit() or not tail.strip().isdigit():
        raise ValueError(f"expected i/N such as 0/4, got '{text}'")
    index, count = int(head), int(tail)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"expected 0 <= i < N in i/N, got '{text}'")
    return index, count


def shard_frames(total: int, index: int, count: int) -> range:
    """Frame indices of shard ``index`` of ``count`` in a run of ``total`` frames: a contiguous block.

    Pure and the same everywhere (CLI, Ray tasks, the Isaac Sim runner, a Kubernetes completion index), so the
    shards of one run are disjoint and together cover ``range(total)``; sizes differ by at most one frame.
    """
    if total < 0 or count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index}/{count} of {total} frames: expected total >= 0 and 0 <= index < count")
    base, extra = divmod(total, count)
    start = index * base + min(index, extra)
    return range(start, start + base + (index < extra))


def read_shard_info(folder: Path | str) -> dict | None:
    """The folder's ``shard.json``, or None if it has none (not a finished shard of ``generate --shard``)."""
    path = Path(folder) / SHARD_INFO_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def generate_shard(config, out_dir: Path | str, total: int, index: int, count: int, *, resume: bool = False,
                   **kwargs) -> RunSummary:
    """``generate`` the frames of shard ``index``/``count`` of a ``total``-frame run into ``out_dir``.

    ``resume`` continues an interrupted shard from its manifest (as ``generate --resume``); a folder that
    already belongs to another shard or run length is refused. ``shard.json`` is written once every frame of the
    shard is listed. ``kwargs`` go to ``generate`` (backend, device, on_frame, ...).
    """
    out = Path(out_dir)
    frames = shard_frames(total, index, count)
    info = {"shard": index, "count": count, "total": total, "frames": [frames.start, frames.stop]}
    existing = read_shard_info(out) if resume else None
    if existing is not None and existing != info:
        raise RunError(f"{out} holds shard {existing['shard']}/{existing['count']} of {existing['total']} frames, "
                       f"not {index}/{count} of {total}")
    summary = generate(config, out, frames, resume=resume, **kwargs)
    from .manifest import listed_frames

    if set(frames) <= listed_frames(out):  # not when stopped early (should_stop)
        write_file_durably(out / SHARD_INFO_NAME, (json.dumps(info) + "\n").encode(), drop_cache=False)
    return summary


@dataclass
class MergeSummary:
    out_dir: Path
    frames: int
    files: int
    linked: bool  #: files were hard-linked (False: copied, e.g. across file systems)
    exports: dict[str, dict] = field(default_factory=dict)  #: format -> export summary (the config's output.formats)
    report: Path | None = None  #: report/index.html when asked for


@dataclass
class _Shard:
    folder: Path
    info: dict  # dataset.json
    lines: list[tuple[int, bytes, dict]]  # (frame, raw manifest line, entry)
    shard: dict | None  # shard.json


def _read_shard(folder: Path) -> _Shard:
    if not (folder / DATASET_INFO_NAME).is_file():
        raise MergeError(f"{folder} is not a dataset folder (no {DATASET_INFO_NAME})")
    raw = (folder / MANIFEST_NAME).read_bytes() if (folder / MANIFEST_NAME).is_file() else b""
    # Keep each line's bytes: the merged manifest is then byte-identical to a single run's. A torn last line
    # (a killed writer) is not a listed frame, as for every reader.
    entries = [(line + b"\n", json.loads(line)) for line in raw.split(b"\n")[:-1] if line.strip()]
    lines = [(int(entry["frame"]), line, entry) for line, entry in entries]
    return _Shard(folder, read_dataset_info(folder), lines, read_shard_info(folder))


def _check_same_run(shards: list[_Shard]) -> None:
    first = shards[0]
    for other in shards[1:]:
        diffs = _config_differences(first.info, other.info)
        if diffs:
            raise MergeError(f"{other.folder} was made with other settings than {first.folder} "
                             f"({', '.join(diffs[:5])} differ); cannot merge them")
    runs = {(s.shard["count"], s.shard["total"]) for s in shards if s.shard is not None}
    if len(runs) > 1:
        raise MergeError(f"the shards come from runs of different sizes (count, total: {sorted(runs)})")


def _frame_ranges(frames: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"`` (for messages)."""
    parts: list[list[int]] = []
    for k in sorted(frames):
        if parts and k == parts[-1][1] + 1:
            parts[-1][1] = k
        else:
            parts.append([k, k])
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in parts[:5])
    return text + (", ..." if len(parts) > 5 else "")


def _check_frames(shards: list[_Shard]) -> list[tuple[int, bytes, dict, Path]]:
    """All listed frames in frame order; refuses a frame listed twice and frames missing from the run."""
    owner: dict[int, Path] = {}
    merged = []
    for shard in shards:
        for frame, line, entry in shard.lines:
            if frame in owner:
                raise MergeError(f"frame {frame} is in both {owner[frame]} and {shard.folder}; shards must not overlap")
            owner[frame] = shard.folder
            if entry.get("seed") != shard.info.get("seed"):
                raise MergeError(f"{shard.folder}: frame {frame} has seed {entry.get('seed')}, "
                                 f"dataset.json says {shard.info.get('seed')}")
            merged.append((frame, line, entry, shard.folder))
    merged.sort(key=lambda item: item[0])
    infos = [s.shard for s in shards if s.shard is not None]
    total = infos[0]["total"] if infos else (merged[-1][0] + 1 if merged else 0)
    missing = set(range(total)) - owner.keys()
    if missing:
        given = sorted(s["shard"] for s in infos)
        hint = f" (shards given: {given} of {infos[0]['count']})" if infos else ""
        raise MergeError(f"frames {_frame_ranges(missing)} of {total} are in no shard{hint}: "
                         "a shard is missing or unfinished (finish it with generate --shard i/N --resume)")
    return merged


def _place(source: Path, target: Path) -> bool:
    """Hard-link ``source`` as ``target`` (replacing a leftover of an interrupted merge); copy where links fail.
    Returns whether it linked."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, temp)
    with open(temp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temp, target)
    return False


def merge_shards(out_dir: Path | str, shard_dirs: Iterable[Path | str], *, report: bool = False) -> MergeSummary:
    """Merge shard folders into one dataset in ``out_dir``, as one process would have written it.

    Refuses (``MergeError``, one line) shards made with other settings (config, seed, backend, tool version: the
    whole ``dataset.json``), a frame listed by two shards, frames missing from the run, a file that is missing
    or does not match its sha256, a shard still being written, and an ``out_dir`` that already holds a dataset.
    Files are hard-linked (copied across file systems); ``manifest.jsonl`` is written last and atomically, so a
    folder with a manifest is a finished merge, and an interrupted merge can simply be run again. Then the config's
    ``output.formats`` are exported and, with ``report``, the dataset report is written.
    """
    out = Path(out_dir)
    folders = [Path(d) for d in shard_dirs]
    if not folders:
        raise MergeError("no shard folders given")
    if len({f.resolve() for f in folders}) < len(folders):
        raise MergeError("a shard folder is given twice")
    if out.resolve() in {f.resolve() for f in folders}:
        raise MergeError(f"{out} is one of the shards; merge into a new folder")
    if (out / MANIFEST_NAME).exists():
        raise MergeError(f"{out} already holds a dataset; merge into a new folder")
    locks: list[DatasetLock] = []
    try:
        for folder in folders:  # a shard still being written would change under us
            lock = DatasetLock(folder)
            try:
                lock.acquire()
            except DatasetLockedError as exc:
                raise MergeError(str(exc)) from None
            except OSError as exc:  # a read-only shard (archived, another user's): no writer of ours can hold it
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS) or not folder.is_dir():
                    raise
                continue
            locks.append(lock)
        shards = [_read_shard(f) for f in folders]
        _check_same_run(shards)
        merged = _check_frames(shards)
        for _, _, entry, folder in merged:
            problems = verify_entry(folder, entry)
            if problems:
                raise MergeError(f"{folder}: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
        out.mkdir(parents=True, exist_ok=True)
        out_lock = DatasetLock(out)
        try:
            out_lock.acquire()
        except DatasetLockedError as exc:
            raise MergeError(str(exc)) from None
        try:
            info = {k: v for k, v in shards[0].info.items() if k != "format_version"}
            write_dataset_info(out, info)
            linked, files = True, 0
            for frame, _, entry, folder in merged:
                for name in entry["files"].values():
                    linked &= _place(folder / name, out / name)
                    files += 1
                stage = folder / "stages" / f"frame_{frame:06d}.usda"  # generate --save-stage
                if stage.is_file():
                    (out / "stages").mkdir(exist_ok=True)
                    linked &= _place(stage, out / "stages" / stage.name)
            if (out / "stages").is_dir():
                fsync_dir(out / "stages")
            fsync_dir(out)
            write_file_durably(out / MANIFEST_NAME, b"".join(line for _, line, _, _ in merged), drop_cache=False)
            fsync_dir(out)
        finally:
            out_lock.release()
    finally:
        for lock in locks:
            lock.release()
    # Exports and the report derive from manifest.jsonl + labels: rebuilt for the merged folder (a shard's own
    # exports are not copied), exactly as a single run streams the config's output.formats.
    from .export import export_dataset

    exports = {fmt: export_dataset(out, fmt) for fmt in info.get("config", {}).get("output", {}).get("formats", [])}
    page = None
    if report:
        from .report import build_report

        page = build_report(out)
    return MergeSummary(out_dir=out, frames=len(merged), files=files, linked=linked, exports=exports, report=page)
