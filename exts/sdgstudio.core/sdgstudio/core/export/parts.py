"""``parts.jsonl``: one line per exported frame, appended as frames are exported, read back without holding them.

A line is ``{"frame": N, "split": ..., "labels_sha256": ..., "kept": k, "dropped": {...}, "data": {...}}`` with
``data`` (the format's per-frame record, e.g. COCO's RLE masks) last. ``PartsIndex`` scans the file once and keeps
only each frame's byte range and small header (everything before ``data``), so assembling an export needs memory
for one part at a time however many frames there are. The last complete line of a frame wins (a frame exported
again after its labels changed); an unterminated last line is a torn write and is ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_DATA_KEY = b',"data":'


def encode_part(frame: int, split: str, labels_sha256: str, kept: int, dropped: dict[str, int], data: dict) -> bytes:
    """One ``parts.jsonl`` line (``data`` last, so the header parses without it)."""
    line = {"frame": frame, "split": split, "labels_sha256": labels_sha256, "kept": kept, "dropped": dropped,
            "data": data}
    return (json.dumps(line, separators=(",", ":")) + "\n").encode()


@dataclass(frozen=True)
class PartHeader:
    frame: int
    split: str
    labels_sha256: str
    kept: int
    dropped: dict[str, int]
    offset: int  #: byte offset of the line in the file
    length: int  #: bytes, without the newline


class PartsIndex:
    """The latest part of every frame in a ``parts.jsonl`` file (optionally only of ``frames``), in frame order.

    Iterating yields full parts (dicts) read one at a time from the file; iterate as often as needed."""

    def __init__(self, path: Path, frames: Iterable[int] | None = None, chunk: int = 1 << 22) -> None:
        self.path = path
        latest: dict[int, PartHeader] = {}
        if path.exists():
            with open(path, "rb") as fh:
                offset, tail = 0, b""
                while block := fh.read(chunk):
                    lines = (tail + block).split(b"\n")
                    tail = lines.pop()  # no newline yet: the rest comes with the next block (or it is torn)
                    for line in lines:
                        if line.strip():
                            head = json.loads(line[:line.index(_DATA_KEY)] + b"}")
                            latest[head["frame"]] = PartHeader(head["frame"], head["split"], head["labels_sha256"],
                                                               head["kept"], head["dropped"], offset, len(line))
                        offset += len(line) + 1
        if frames is not None:
            wanted = set(frames)
            latest = {f: h for f, h in latest.items() if f in wanted}
        self.headers = [latest[f] for f in sorted(latest)]

    def __len__(self) -> int:
        return len(self.headers)

    def __iter__(self) -> Iterator[dict]:
        if not self.headers:
            return
        with open(self.path, "rb") as fh:
            for head in self.headers:
                fh.seek(head.offset)
                yield json.loads(fh.read(head.length))


def complete_length(path: Path) -> int:
    """Bytes of ``path`` up to and including its last newline (what survives of a torn append)."""
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        pos = size
        while pos > 0:
            step = min(1 << 16, pos)
            fh.seek(pos - step)
            block = fh.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                return pos - step + cut + 1
            pos -= step
        return 0
