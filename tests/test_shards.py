"""Shards of one run (generate --shard i/N) and their merge: the same dataset as one process, file for file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sdgstudio.core.cli import main
from sdgstudio.core.config import load_config
from sdgstudio.core.generate import generate
from sdgstudio.core.session import RunError
from sdgstudio.core.shards import MergeError, merge_shards, parse_shard, shard_frames

FRAMES = 10


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file in a folder, by relative path (hidden files included)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@given(total=st.integers(0, 500), count=st.integers(1, 40))
def test_shards_are_contiguous_disjoint_balanced_and_cover_the_run(total, count):
    blocks = [shard_frames(total, i, count) for i in range(count)]
    assert [k for block in blocks for k in block] == list(range(total))  # in order: disjoint and covering
    assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert all(b.step == 1 for b in blocks)


def test_shard_ranges_are_fixed():
    assert [list(shard_frames(10, i, 4)) for i in range(4)] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1/0", "1", "a/b", "1/4/2"):
        with pytest.raises(ValueError):
            parse_shard(bad)


@pytest.fixture(scope="module")
def single(tiny_scene, tmp_path_factory) -> Path:
    """The reference: one process renders every frame."""
    out = tmp_path_factory.mktemp("single") / "full"
    generate(load_config(tiny_scene), out, range(FRAMES))
    return out


@pytest.fixture(scope="module")
def shards(tiny_scene, tmp_path_factory) -> list[Path]:
    """Four shards through the CLI, as four machines would run them."""
    root = tmp_path_factory.mktemp("shards")
    folders = []
    for i in range(4):
        folders.append(root / f"s{i}")
        argv = ["generate", "--config", str(tiny_scene), "--frames", str(FRAMES), "--shard", f"{i}/4", "--out", str(folders[-1])]
        assert main([*argv, "--quiet"]) == 0
    return folders


def test_each_shard_lists_only_its_block(shards):
    for i, folder in enumerate(shards):
        frames = [json.loads(x)["frame"] for x in (folder / "manifest.jsonl").read_text().splitlines()]
        assert frames == list(shard_frames(FRAMES, i, 4))
        assert json.loads((folder / "shard.json").read_text()) == {"shard": i, "count": 4, "total": FRAMES,
                                                                   "frames": [frames[0], frames[-1] + 1]}


def test_four_shards_merged_equal_one_process_file_for_file(shards, single, tmp_path, capsys):
    out = tmp_path / "merged"
    assert main(["merge", str(out), *map(str, reversed(shards))]) == 0  # order of the arguments does not matter
    assert "10 frames" in capsys.readouterr().out
    assert digests(out) == digests(single)  # every frame file, manifest.jsonl and dataset.json, byte for byte
    assert (out / "rgb_000004.png").stat().st_ino == (shards[1] / "rgb_000004.png").stat().st_ino  # hard links


def _merge_error(capsys, out: Path, *folders: Path) -> str:
    """Run a merge that must be refused: exit 2, one line, no dataset in ``out``."""
    had_dataset = (out / "manifest.jsonl").exists()
    assert main(["merge", str(out), *map(str, folders)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert (out / "manifest.jsonl").exists() == had_dataset
    return err[0]


def test_merge_refuses_other_seed_backend_or_config(shards, tiny_scene, tmp_path, capsys):
    other = tmp_path / "other_seed"
    assert main(["generate", "--config", str(tiny_scene), "--frames", str(FRAMES), "--shard", "3/4", "--seed", "7",
                 "--out", str(other), "--quiet"]) == 0
    assert "seed" in _merge_error(capsys, tmp_path / "m1", *shards[:3], other)
    info = json.loads((shards[3] / "dataset.json").read_text())
    changed = tmp_path / "other_config"
    shutil.copytree(shards[3], changed)
    info["config"]["camera"]["resolution"] = [32, 24]
    info["backend"] = "replicator"
    (changed / "dataset.json").write_text(json.dumps(info))
    line = _merge_error(capsys, tmp_path / "m2", *shards[:3], changed)
    assert "config.camera.resolution" in line and "backend" in line


def test_merge_refuses_overlapping_missing_and_repeated_shards(shards, single, tmp_path, capsys):
    assert "frame 3 is in both" in _merge_error(capsys, tmp_path / "m1", single, *shards[1:])
    assert "frames 3-5 of 10 are in no shard" in _merge_error(capsys, tmp_path / "m2", shards[0], *shards[2:])
    assert "twice" in _merge_error(capsys, tmp_path / "m3", *shards, shards[0])


def test_merge_refuses_a_damaged_file_and_an_unfinished_shard(shards, tiny_scene, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(shards[2], damaged)
    (damaged / "labels_000007.json").write_text("{}")
    assert "labels_000007.json does not match its sha256" in _merge_error(capsys, tmp_path / "m1", *shards[:2], damaged, shards[3])
    unfinished = tmp_path / "unfinished"
    generate(load_config(tiny_scene), unfinished, [8])  # shard 3/4 stopped after one of its two frames
    assert "frames 9 of 10 are in no shard" in _merge_error(capsys, tmp_path / "m2", *shards[:3], unfinished)


def test_merge_refuses_an_occupied_output_and_runs_again_after_an_interrupted_merge(shards, single, tmp_path, capsys):
    assert "already holds a dataset" in _merge_error(capsys, single, *shards)
    out = tmp_path / "again"
    out.mkdir()
    (out / "rgb_000000.png").write_bytes(b"left by an interrupted merge")
    merge_shards(out, shards)
    assert digests(out) == digests(single)


def test_resuming_a_shard_keeps_its_frames_and_refuses_another_shard(tiny_scene, shards, tmp_path):
    from sdgstudio.core.shards import generate_shard

    folder = tmp_path / "s1"
    shutil.copytree(shards[1], folder)
    summary = generate_shard(load_config(tiny_scene), folder, FRAMES, 1, 4, resume=True)
    assert summary.frames_written == 0 and digests(folder) == digests(shards[1])
    with pytest.raises(RunError, match="holds shard 1/4 of 10 frames, not 2/4"):
        generate_shard(load_config(tiny_scene), folder, FRAMES, 2, 4, resume=True)
    with pytest.raises(MergeError, match="no dataset.json"):
        merge_shards(tmp_path / "m", [tmp_path])


def test_documented_kubernetes_jobs_parse_and_use_the_completion_index_as_the_shard():
    import re

    import yaml

    text = (Path(__file__).resolve().parents[1] / "docs" / "scale-out.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    shards_job, merge_job = yaml.safe_load_all(block)
    spec = shards_job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["SHARDS"]) == spec["completions"]
    script = container["args"][0]
    assert '--shard "$JOB_COMPLETION_INDEX/$SHARDS"' in script and "bins.shards/$JOB_COMPLETION_INDEX" in script
    assert "merge /data/datasets/bins /data/datasets/bins.shards/*" in merge_job["spec"]["template"]["spec"]["containers"][0]["command"][-1]


def test_merge_writes_the_configs_exports_and_the_report(tiny_scene, tmp_path, capsys):
    """With output.formats set, the merged folder's exports equal those a single run streams; --report adds
    the report of the merged dataset."""
    config = load_config(tiny_scene)
    config.output.formats = ["coco", "yolo"]
    single_out, shard_dirs = tmp_path / "single", [tmp_path / "a", tmp_path / "b"]
    generate(config, single_out, range(4))
    from sdgstudio.core.shards import generate_shard

    for i, folder in enumerate(shard_dirs):
        generate_shard(config, folder, 4, i, 2)
    merged = tmp_path / "merged"
    assert main(["merge", str(merged), *map(str, shard_dirs), "--report"]) == 0
    out = capsys.readouterr().out
    assert "exported coco" in out and "exported yolo" in out and "report" in out
    for fmt in ("coco", "yolo"):
        assert digests(merged / "exports" / fmt) == digests(single_out / "exports" / fmt), fmt
    report = json.loads((merged / "report" / "report.json").read_text())
    assert report["counts"]["frames"] == 4
