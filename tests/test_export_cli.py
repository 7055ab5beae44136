"""``sdgstudio export``: the command, its errors, re-running and resuming, and streaming exports during generate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sdgstudio.core.cli import main
from sdgstudio.core.config import ConfigError, config_from_dict, config_to_dict
from sdgstudio.core.export import export_dataset
from sdgstudio.core.export.synthetic import write_synthetic_dataset


def _run(argv: list[str]) -> int:
    """Exit code of the CLI, whether it returns or raises SystemExit (argument parsing)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture()
def small(tmp_path) -> Path:
    return write_synthetic_dataset(tmp_path / "ds", 6, width=96, height=64, objects=6)


def test_export_command_writes_the_default_folder_and_reports(small, capsys):
    assert _run(["export", str(small), "--format", "coco", "--split", "train=0.5,val=0.5", "--min-pixels", "3",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("exported coco: 6 frames (train ") and str(small / "exports" / "coco") in out
    meta = json.loads((small / "exports" / "coco" / "export.json").read_text())
    assert meta["complete"] and meta["settings"]["filter"]["min_pixels"] == 3 and meta["dataset"] == "../.."
    assert sorted(p.name for p in (small / "exports" / "coco" / "annotations").iterdir()) == [
        "instances_train.json", "instances_val.json"]


@pytest.mark.parametrize("args", [
    ["--format", "voc"],
    ["--format", "coco", "--split", "train=0.5"],
    ["--format", "coco", "--split", "training=1"],
    ["--format", "coco", "--min-visible", "2"],
    ["--format", "coco", "--min-visible", "half"],
    ["--format", "coco", "--min-pixels", "0"],
    ["--format", "coco", "--max-truncation", "-1"],
    [],
])
def test_bad_options_exit_2_with_one_line(small, capsys, args):
    assert _run(["export", str(small), *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not (small / "exports" / "coco" / "export.json").exists()


def test_bad_dataset_folders_exit_2_with_one_line(tmp_path, small, capsys):
    for folder in (tmp_path / "missing", tmp_path):
        assert _run(["export", str(folder), "--format", "kitti", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "is not a dataset folder" in err and err.count("\n") == 1
    manifest = small / "manifest.jsonl"  # a dataset recorded without instance masks cannot give COCO masks
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    for entry in lines:
        entry["files"].pop("instance_segmentation")
    manifest.write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert _run(["export", str(small), "--format", "coco", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "instance_segmentation" in err and err.count("\n") == 1
    assert _run(["export", str(small), "--format", "kitti", "--quiet"]) == 0  # KITTI needs labels only


def test_other_settings_into_the_same_folder_are_refused(small, capsys):
    assert _run(["export", str(small), "--format", "yolo", "--quiet"]) == 0
    assert _run(["export", str(small), "--format", "yolo", "--min-visible", "0.5", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "min_visible" in err and err.count("\n") == 1
    out = small / "other"
    assert _run(["export", str(small), "--format", "yolo", "--min-visible", "0.5", "--out", str(out), "--quiet"]) == 0
    assert (out / "detect" / "data.yaml").is_file()


def test_rerun_and_resume_export_only_missing_frames_and_rebuild_the_same_files(small):
    first = export_dataset(small, "coco", split="train=0.5,val=0.5")
    folder = small / "exports" / "coco"
    documents = {p.name: p.read_bytes() for p in (folder / "annotations").iterdir()}
    parts = (folder / "parts.jsonl").read_bytes().splitlines(keepends=True)
    assert len(parts) == 6
    # A run stopped after 3 frames, its last part torn, the assembled JSON never written:
    (folder / "parts.jsonl").write_bytes(b"".join(parts[:3]) + parts[3][:25])
    shutil.rmtree(folder / "annotations")
    done = []
    again = export_dataset(small, "coco", split="train=0.5,val=0.5", progress=lambda n, total: done.append(total))
    assert done == [3, 3, 3]  # only the frames without a part were exported again
    assert {p.name: p.read_bytes() for p in (folder / "annotations").iterdir()} == documents
    assert again == first
    assert len((folder / "parts.jsonl").read_bytes().splitlines()) == 6
    export_dataset(small, "coco", split="train=0.5,val=0.5", progress=lambda n, total: done.append(-1))
    assert -1 not in done  # nothing left to export: only the assembly runs


def test_changed_labels_are_exported_again(small):
    export_dataset(small, "kitti")
    manifest = small / "manifest.jsonl"
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    labels_path = small / lines[2]["files"]["labels"]
    labels = json.loads(labels_path.read_text())
    labels["objects"] = labels["objects"][:1]
    labels_path.write_text(json.dumps(labels))
    lines[2]["sha256"][labels_path.name] = "changed"
    manifest.write_text("".join(json.dumps(e) + "\n" for e in lines))
    export_dataset(small, "kitti")
    assert len((small / "exports/kitti/label_2/000002.txt").read_text().splitlines()) <= 1


def test_config_formats_need_their_annotators(tabletop):
    data = config_to_dict(tabletop)
    data["output"]["formats"] = ["bop"]
    data["annotators"] = [a for a in data["annotators"] if a != "depth"]
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert "bop needs the annotators ['depth']" in str(info.value)
    data["output"]["export"] = {"split": {"train": 0.7}}
    data["output"]["formats"] = []
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert "sum to 1" in str(info.value)


def test_generate_streams_the_config_formats(tmp_path, tabletop, capsys):
    """generate writes each format as frames are listed; afterwards `export` finds nothing left to do and
    assembles byte-identical files."""
    from sdgstudio.core.config import save_config

    config = tabletop.model_copy(deep=True)
    config.camera.resolution = (96, 72)
    config.output.formats = ["coco", "yolo"]
    config.output.export.split = {"train": 0.5, "test": 0.5}
    path = tmp_path / "c.toml"
    save_config(config, path)
    out = tmp_path / "run"
    assert main(["generate", "--config", str(path), "--frames", "3", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "exported coco: 3 frames" in printed and "exported yolo: 3 frames" in printed
    coco = {p.name: p.read_bytes() for p in (out / "exports/coco/annotations").iterdir()}
    assert len((out / "exports/coco/parts.jsonl").read_text().splitlines()) == 3
    assert main(["export", str(out), "--format", "coco", "--quiet"]) == 0  # settings come from the dataset's config
    assert {p.name: p.read_bytes() for p in (out / "exports/coco/annotations").iterdir()} == coco
    assert main(["export", str(out), "--format", "coco", "--out", str(tmp_path / "again"), "--quiet"]) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "again/annotations").iterdir()} == coco


def test_a_failed_run_leaves_parts_that_export_completes(tmp_path, tabletop):
    """An exception mid-run stops the export thread without assembling; `export` then finishes the job and
    gives the same files as an export made from scratch."""
    from sdgstudio.core.generate import generate

    config = tabletop.model_copy(deep=True)
    config.camera.resolution = (64, 48)
    config.output.formats = ["kitti"]
    out = tmp_path / "run"

    def crash(index, frame):
        if index == 2:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        generate(config, out, range(5), on_frame=crash)
    listed = len((out / "manifest.jsonl").read_text().splitlines())
    assert 1 <= listed <= 3
    meta = json.loads((out / "exports/kitti/export.json").read_text())
    assert not meta["complete"]
    summary = export_dataset(out, "kitti")
    assert summary["complete"] and sum(summary["frames"].values()) == listed
    fresh = export_dataset(out, "kitti", out=tmp_path / "fresh")
    assert fresh["frames"] == summary["frames"]
    for name in ("ImageSets/train.txt", *(f"label_2/{f:06d}.txt" for f in range(listed))):
        assert (out / "exports/kitti" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes()
