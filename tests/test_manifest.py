"""Dataset bookkeeping: manifest reading/appending after crashes, dataset.json, durable writes, the folder lock."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat

import pytest
from sdgstudio.core import manifest
from sdgstudio.core.manifest import (
    DatasetLock,
    DatasetLockedError,
    ManifestAppender,
    listed_frames,
    read_dataset_info,
    read_manifest,
    remove_temp_files,
    verify_entry,
    write_dataset_info,
    write_file_durably,
)


def line(frame: int) -> bytes:
    return (json.dumps({"frame": frame, "files": {}, "sha256": {}}) + "\n").encode()


def test_read_manifest_skips_a_torn_last_line(tmp_path):
    (tmp_path / "manifest.jsonl").write_bytes(line(0) + line(1) + b'{"frame": 2, "fil')
    assert [e["frame"] for e in read_manifest(tmp_path)] == [0, 1]
    assert listed_frames(tmp_path) == {0, 1}
    assert read_manifest(tmp_path / "missing") == []


def test_appender_cuts_a_torn_tail_before_appending(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(line(0) + b'{"frame": 1, "fi')
    appender = ManifestAppender(tmp_path)
    appender.append([line(1), line(2)])
    appender.sync()
    appender.close()
    assert path.read_bytes() == line(0) + line(1) + line(2)


def test_appender_on_a_torn_only_line_starts_empty(tmp_path):
    (tmp_path / "manifest.jsonl").write_bytes(b'{"fra')
    ManifestAppender(tmp_path).close()
    assert (tmp_path / "manifest.jsonl").read_bytes() == b""


def test_verify_entry_reports_missing_and_changed_files(tmp_path):
    (tmp_path / "rgb_000000.png").write_bytes(b"png bytes")
    (tmp_path / "labels_000000.json").write_bytes(b"{}")
    entry = {"frame": 0, "files": {"rgb": "rgb_000000.png", "labels": "labels_000000.json",
                                   "depth": "depth_000000.tif"},
             "sha256": {"rgb_000000.png": hashlib.sha256(b"png bytes").hexdigest(),
                        "labels_000000.json": hashlib.sha256(b"{ }").hexdigest()}}
    assert verify_entry(tmp_path, entry) == ["frame 0: labels_000000.json does not match its sha256",
                                             "frame 0: depth_000000.tif is missing"]


def test_dataset_info_gets_format_version_and_normal_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        written = write_dataset_info(tmp_path, {"name": "bins", "frames": 10})
    finally:
        os.umask(old_umask)
    assert written == read_dataset_info(tmp_path) == {"name": "bins", "frames": 10, "format_version": "1.0"}
    assert stat.S_IMODE((tmp_path / "dataset.json").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.json"]


def test_write_file_durably_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "rgb_000000.png"
    write_file_durably(target, b"first")
    assert target.read_bytes() == b"first"

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(manifest.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        write_file_durably(target, b"second")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb_000000.png"]  # no temp file left


def test_remove_temp_files_removes_only_temp_files(tmp_path):
    (tmp_path / ".rgb_000001.png.123.tmp").write_bytes(b"partial")
    (tmp_path / "rgb_000000.png").write_bytes(b"done")
    assert remove_temp_files(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb_000000.png"]


def test_lock_is_exclusive_and_released(tmp_path):
    first = DatasetLock(tmp_path)
    first.acquire()
    with pytest.raises(DatasetLockedError, match=f"being written by another run \\(pid {os.getpid()} on "):
        DatasetLock(tmp_path).acquire()
    first.release()
    assert not (tmp_path / ".sdgstudio.lock").exists()  # a finished dataset folder has no hidden files
    (tmp_path / ".sdgstudio.lock").write_text("pid 1 on crashed-host\n")  # stale: its process is gone
    second = DatasetLock(tmp_path)
    second.acquire()
    assert (tmp_path / ".sdgstudio.lock").read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
    assert second.stale_holder == "pid 1 on crashed-host" and first.stale_holder is None
    second.release()


def test_lock_holder_names_a_live_holder_only(tmp_path):
    assert manifest.lock_holder(tmp_path) is None
    lock = DatasetLock(tmp_path)
    lock.acquire()
    assert manifest.lock_holder(tmp_path) == f"pid {os.getpid()} on {socket.gethostname()}"
    lock.release()
    (tmp_path / ".sdgstudio.lock").write_text("")  # a run killed between creating and writing its lock
    assert manifest.lock_holder(tmp_path) is None
    lock.acquire()
    assert lock.stale_holder == "a run that died while starting"
    lock.release()
