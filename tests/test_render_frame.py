"""``render-frame`` re-renders one frame byte for byte without touching the dataset; progress reporting."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from sdgstudio.core.cli import main
from sdgstudio.core.config import load_config
from sdgstudio.core.generate import generate
from sdgstudio.core.writer import WriterProgress

FRAMES = 3


@pytest.fixture(scope="module")
def dataset(tiny_scene, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "tiny"
    args = ["generate", "--config", str(tiny_scene), "--frames", str(FRAMES), "--out", str(out), "--seed", "77"]
    assert main(args + ["--quiet"]) == 0
    return out


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_render_frame_gives_byte_identical_files_and_leaves_the_dataset_alone(dataset, tmp_path, capsys):
    before = snapshot(dataset)
    to = tmp_path / "frame1"
    assert main(["render-frame", "--out", str(dataset), "--frame", "1", "--to", str(to), "--check"]) == 0
    out = capsys.readouterr().out
    assert "seed 77" in out and "6 of 6 files identical" in out and "DIFFERS" not in out
    assert (to / "labels_000001.json").read_bytes() == (dataset / "labels_000001.json").read_bytes()
    frame_files = sorted(p.name for p in dataset.glob("*_000001.*"))
    assert sorted(p.name for p in to.glob("*_000001.*")) == frame_files
    for name in frame_files:
        assert (to / name).read_bytes() == (dataset / name).read_bytes(), name
    assert [json.loads(line)["frame"] for line in (to / "manifest.jsonl").read_text().splitlines()] == [1]
    assert snapshot(dataset) == before


def test_render_frame_without_to_only_compares(dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["render-frame", "--out", str(dataset), "--frame", "2", "--check"]) == 0
    assert "6 of 6 files identical" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # its temp folder is gone


def test_render_frame_check_fails_and_names_the_file_that_differs(dataset, tmp_path, capsys):
    changed = tmp_path / "changed"
    shutil.copytree(dataset, changed)
    lines = [json.loads(line) for line in (changed / "manifest.jsonl").read_text().splitlines()]
    lines[0]["sha256"]["labels_000000.json"] = "0" * 64  # as if this version rendered other labels
    (changed / "manifest.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert main(["render-frame", "--out", str(changed), "--frame", "0", "--check"]) == 1
    captured = capsys.readouterr()
    assert "DIFFERS    labels_000000.json" in captured.out and "5 of 6 files identical" in captured.out
    assert "labels_000000.json does not match its sha256" in captured.err
    assert main(["render-frame", "--out", str(changed), "--frame", "0"]) == 0  # without --check: report only


def test_render_frame_refuses_bad_requests_with_one_line(dataset, tmp_path, capsys):
    assert main(["render-frame", "--out", str(dataset), "--frame", str(FRAMES)]) == 2
    assert f"frame {FRAMES} is not listed" in capsys.readouterr().err
    assert main(["render-frame", "--out", str(tmp_path), "--frame", "0"]) == 2
    assert "holds no dataset" in capsys.readouterr().err
    assert main(["render-frame", "--out", str(dataset), "--frame", "0", "--to", str(dataset)]) == 2
    assert "another folder" in capsys.readouterr().err


def test_generate_reports_writer_progress(tiny_scene, tmp_path):
    seen: list[WriterProgress] = []
    summary = generate(load_config(tiny_scene), tmp_path / "p", range(4), on_progress=seen.append)
    assert [p.frames_written for p in seen] == sorted(p.frames_written for p in seen) and seen[-1].frames_written == 4
    files = [p for p in (tmp_path / "p").iterdir() if p.stem[-6:].isdigit()]  # frame files, not bookkeeping
    assert seen[-1].bytes_written == summary.bytes_written == sum(p.stat().st_size for p in files) > 0
    assert summary.blocked_seconds == seen[-1].blocked_seconds >= 0.0


def test_progress_bar_and_summary_show_writer_numbers(tiny_scene, tmp_path, capsys):
    assert main(["generate", "--config", str(tiny_scene), "--frames", "3", "--out", str(tmp_path / "bar")]) == 0
    captured = capsys.readouterr()
    bar = captured.err.replace("\r", "\n").splitlines()
    assert any("3/3" in line and "written 3 (" in line and "queue 0" in line and " MB" in line and "blocked" in line
               for line in bar), captured.err
    assert "frames/s; renderer blocked" in captured.out and " MB, to " in captured.out
