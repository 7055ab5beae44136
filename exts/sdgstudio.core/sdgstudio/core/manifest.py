"""The dataset folder's bookkeeping files: ``manifest.jsonl``, ``dataset.json`` and the writer lock.

``manifest.jsonl`` has one JSON object per finished frame, in frame order: the caller's record (``frame``,
``seed``, ``params``, ...) plus ``files`` (layer name -> file name relative to the folder) and ``sha256``
(file name -> hex digest of its bytes). A frame is listed only once all its files are durable, so a listed
frame is complete; a frame that is not listed is not done, whatever files it left. A crash can leave a torn
last line: readers skip it, and ``ManifestAppender`` cuts it off before appending.

``dataset.json`` is the run's description as the caller gave it plus ``format_version``; it is replaced
atomically (``write_file_durably``). ``.sdgstudio.lock`` holds an exclusive OS lock while a writer is open, so
two runs never write one folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

from .files import fsync_dir, write_file_durably  # noqa: F401  (re-exported: the writer's I/O primitives)

#: Version of the on-disk layout described in encoders.py and here; bumped on incompatible changes.
FORMAT_VERSION = "1.0"
MANIFEST_NAME = "manifest.jsonl"
DATASET_INFO_NAME = "dataset.json"
LOCK_NAME = ".sdgstudio.lock"
#: Glob of the temp files ``write_file_durably`` leaves behind only when the process dies mid-write.
TEMP_GLOB = ".*.tmp"


class DatasetLockedError(RuntimeError):
    """Another open writer (this process or another) holds the dataset folder's lock."""


def read_manifest(out_dir: Path | str) -> list[dict]:
    """The listed frames, in file order; a torn (unterminated) last line from a crash is ignored."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    # The last element is b"" when the file ends with a newline, else the torn tail of an interrupted append.
    return [json.loads(line) for line in lines[:-1] if line.strip()]


def listed_frames(out_dir: Path | str) -> set[int]:
    """Frame indices the manifest lists as done (what a resumed run skips)."""
    return {int(entry["frame"]) for entry in read_manifest(out_dir)}


def verify_entry(out_dir: Path | str, entry: dict) -> list[str]:
    """Problems with one manifest entry's files (missing, checksum mismatch); empty when the frame is intact."""
    problems = []
    for name in entry["files"].values():
        path = Path(out_dir) / name
        if not path.is_file():
            problems.append(f"frame {entry['frame']}: {name} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"].get(name):
            problems.append(f"frame {entry['frame']}: {name} does not match its sha256")
    return problems


def write_dataset_info(out_dir: Path | str, info: dict) -> dict:
    """Atomically write ``dataset.json`` = ``info`` + ``format_version``; returns what was written."""
    written = {**info, "format_version": FORMAT_VERSION}
    data = (json.dumps(written, indent=1, sort_keys=True) + "\n").encode()
    write_file_durably(Path(out_dir) / DATASET_INFO_NAME, data, drop_cache=False)
    return written


def read_dataset_info(out_dir: Path | str) -> dict:
    """The folder's ``dataset.json``."""
    return json.loads((Path(out_dir) / DATASET_INFO_NAME).read_text())


def remove_temp_files(out_dir: Path | str) -> int:
    """Delete temp files a killed writer left (call only while holding the lock); returns how many."""
    stale = list(Path(out_dir).glob(TEMP_GLOB))
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


class ManifestAppender:
    """Appends entries to ``manifest.jsonl``: ``append`` writes and flushes, ``sync`` makes it durable."""

    def __init__(self, out_dir: Path | str) -> None:
        self.path = Path(out_dir) / MANIFEST_NAME
        # Unbuffered: a failed append (disk full) leaves nothing queued in Python that close() would retry.
        self._file = open(self.path, "a+b", buffering=0)  # noqa: SIM115 - kept open for the writer's lifetime
        self._cut_torn_tail()

    def _cut_torn_tail(self) -> None:
        """Drop an unterminated last line left by a crash, so the next line starts on its own line."""
        size = self._file.seek(0, os.SEEK_END)
        if size == 0:
            return
        self._file.seek(max(0, size - 65536))
        tail = self._file.read()
        if tail.endswith(b"\n"):
            return
        keep = size - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
        if keep == 0 and size > len(tail):
            raise ValueError(f"{self.path}: last line is longer than 64 KiB and unterminated; repair it by hand")
        self._file.truncate(keep)
        self.sync()

    def append(self, lines: list[bytes]) -> None:
        """Append already-encoded lines (each ending in a newline) and hand them to the OS.

        On failure (disk full, file too large) a torn line may end the file: append nothing more (the next
        ``ManifestAppender`` cuts it off).
        """
        view = memoryview(b"".join(lines))
        while view:
            view = view[self._file.write(view):]

    def sync(self) -> None:
        """fsync the manifest: every line appended so far survives a power loss."""
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _holder_of(fd: int) -> str:
    """What the lock file says about its holder ("pid 123 on host"); read from offset 0."""
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 200).decode(errors="replace").strip()


def lock_holder(out_dir: Path | str) -> str | None:
    """The run writing ``out_dir`` now ("pid 123 on host"), or None when no live process holds its lock.

    Probes by taking the lock for an instant, so call it only where a writer would start anyway (``generate``):
    a writer starting in that instant is refused as if the folder were busy.
    """
    try:
        fd = os.open(Path(out_dir) / LOCK_NAME, os.O_RDONLY)
    except OSError:  # no lock file (or unreadable: then the writer's own acquire reports it)
        return None
    try:
        return None if _try_lock(fd) else (_holder_of(fd) or "unknown process")
    finally:
        os.close(fd)  # drops the probe's lock


class DatasetLock:
    """Exclusive lock on a dataset folder, held from ``acquire`` to ``release`` (dropped if the process dies).

    The lock file exists only while held (``release`` deletes it), so a finished dataset has no hidden files.
    One that exists but is not locked was left by a run that died (SIGKILL, power loss): ``acquire`` takes it
    over and records what it said in ``stale_holder``, so the caller can tell the user.
    """

    def __init__(self, out_dir: Path | str) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self._fd: int | None = None
        self.stale_holder: str | None = None  #: set by acquire() when it took over a dead run's lock

    def acquire(self) -> None:
        while True:
            try:
                fd, created = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), True
            except FileExistsError:
                try:
                    fd, created = os.open(self.path, os.O_RDWR), False
                except FileNotFoundError:  # its holder just deleted it: create it
                    continue
            if not _try_lock(fd):
                holder = _holder_of(fd) or "unknown process"
                os.close(fd)
                raise DatasetLockedError(f"{self.path.parent} is being written by another run ({holder})")
            try:  # the holder we waited on may have deleted the file: then lock the new one
                same_file = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)
        # A live holder deletes the file before unlocking it, so one we did not create was left by a dead run
        # (empty if it died between creating and writing it).
        self.stale_holder = None if created else _holder_of(fd) or "a run that died while starting"
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Unlock and delete the lock file; never raises (a file left behind is stale and taken over later)."""
        if self._fd is None:
            return
        try:
            self.path.unlink()  # before unlocking, so no one can lock this file once it is unlinked
        except OSError:  # Windows cannot delete an open file; a read-only folder keeps it: unlock, then try
            os.close(self._fd)
            self._fd = None
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass
            return
        os.close(self._fd)  # closing the descriptor drops the lock
        self._fd = None
