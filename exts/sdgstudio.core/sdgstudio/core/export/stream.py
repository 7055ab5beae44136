"""Exports made while ``generate`` runs: a background thread follows ``manifest.jsonl`` and exports each frame the
writer lists, from its files on disk -- exactly what ``sdgstudio export`` does afterwards.

Why this shape: the manifest lists a frame only once all its files are durable, so following it needs no hook
inside the writer and never sees a half-written frame; the renderer hands frames to the writer and never waits on
exporting (the writer's ``on_progress`` only sets an event that wakes this thread). The thread works through
frames in manifest order; when the run ends, ``close`` exports whatever is left and assembles each format's
aggregate files once. A frame that a crash leaves listed but not exported is picked up by the next
``sdgstudio export`` (or resumed run), which exports only frames without a part.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from .common import DatasetInfo, ExportSettings, FrameSource
from .run import Export

_POLL_S = 1.0  # fallback wake-up when no progress callback arrives (e.g. a writer without on_progress)


class StreamingExport:
    """Exports ``formats`` of the dataset being written in ``dataset_dir``; a no-op when ``formats`` is empty.

    Usage: ``with StreamingExport(out, formats) as exports, DatasetWriter(..., on_progress=exports.notify)``,
    then ``exports.start()`` after ``writer.start()`` (the dataset's ``dataset.json`` must exist). Leaving the
    ``with`` block normally exports the remaining frames and finalizes; leaving it by an exception stops at once.
    """

    def __init__(self, dataset_dir: Path | str, formats: list[str], export_options: dict | None = None) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.formats = list(dict.fromkeys(formats))
        self._options = export_options
        self._exports: list[Export] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._aborting = threading.Event()
        self._thread: threading.Thread | None = None
        self._offset = 0
        self._error: BaseException | None = None
        self.frames_exported = 0
        self.summaries: dict[str, dict] = {}  #: format -> what its export.json records, after a normal close

    def __enter__(self) -> StreamingExport:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def notify(self, *_args) -> None:
        """Wake the export thread (thread-safe; fits ``DatasetWriter(on_progress=...)``)."""
        self._wake.set()

    def start(self) -> None:
        if not self.formats:
            return
        dataset = DatasetInfo.read(self.dataset_dir)
        options = self._options if self._options is not None else dataset.export_options()
        for fmt in self.formats:
            export = Export(dataset, ExportSettings.from_options(fmt, options))
            export.open()
            self._exports.append(export)
        self._thread = threading.Thread(target=self._run, name="sdgstudio-export", daemon=True)
        self._thread.start()

    def close(self) -> dict[str, dict]:
        """Export the frames still unexported and finalize every format; re-raises the export thread's failure."""
        if not self._exports:
            return {}
        try:
            self._join()
            if self._error is None:
                self._drain()
            if self._error is not None:
                raise self._error  # ExportError (exit 2), OSError (exit 1), or a bug's own traceback
            frames = [e["frame"] for e in self._entries(all_lines=True)]
            for export in self._exports:
                self.summaries[export.settings.format] = export.finalize(frames)
            return self.summaries
        finally:
            self._release()

    def abort(self) -> None:
        """Stop without finalizing (parts written so far stay; ``sdgstudio export`` completes them)."""
        self._aborting.set()
        self._join()
        self._release()

    # -- internals ---------------------------------------------------------------------------------------

    def _join(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _release(self) -> None:
        for export in self._exports:
            export.close()
        self._exports = []

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(_POLL_S)
            self._wake.clear()
            try:
                self._drain()
            except BaseException as exc:  # noqa: BLE001 - reported by close()
                self._error = exc
                return

    def _entries(self, all_lines: bool = False) -> list[dict]:
        """Manifest entries appended since the last call (every entry with ``all_lines``); complete lines only."""
        path = self.dataset_dir / "manifest.jsonl"
        with open(path, "rb") as fh:
            fh.seek(0 if all_lines else self._offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1  # an unterminated tail is being appended (or torn): read it next time
        if not all_lines:
            self._offset += end
        return [json.loads(line) for line in data[:end].split(b"\n") if line.strip()]

    def _drain(self) -> None:
        for entry in self._entries():
            if self._aborting.is_set():
                return
            src = FrameSource(self.dataset_dir, entry)
            for export in self._exports:
                if export.needs(entry):
                    export.add(src)
            self.frames_exported += 1
