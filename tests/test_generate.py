"""End to end through the CLI: config -> randomized stage -> raster backend -> labeled frames on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from runs import saved_tabletop
from sdgstudio.core.cli import main
from sdgstudio.core.config import config_from_dict, config_to_dict, load_config, save_config
from sdgstudio.core.generate import generate

FRAMES = 3


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory, tabletop_path) -> Path:
    """The built-in scene at a small resolution, so the end-to-end tests stay quick."""
    return saved_tabletop(tmp_path_factory, tabletop_path, (160, 120), "small")


@pytest.fixture(scope="module")
def full_run(small_scene, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "full"
    assert main(["generate", "--config", str(small_scene), "--frames", str(FRAMES), "--out", str(out), "--quiet"]) == 0
    return out


def _digests(folder: Path, frame: int) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(f"*_{frame:06d}.*"))}


def test_generate_writes_every_layer_labels_and_manifest(full_run):
    dataset = json.loads((full_run / "dataset.json").read_text())
    assert [c["name"] for c in dataset["classes"]] == ["box", "ball", "can", "mug", "bottle", "bowl"]
    assert [c["id"] for c in dataset["classes"]] == [1, 2, 3, 4, 5, 6]
    assert dataset["version"] and dataset["config"]["camera"]["resolution"] == [160, 120]
    lines = [json.loads(x) for x in (full_run / "manifest.jsonl").read_text().splitlines()]
    assert [entry["frame"] for entry in lines] == list(range(FRAMES))
    for entry in lines:
        assert entry["params"]["camera"]["position"] and entry["params"]["objects"]
        for name, digest in entry["sha256"].items():
            assert hashlib.sha256((full_run / name).read_bytes()).hexdigest() == digest
        names = set(entry["files"].values())
        for prefix in ("rgb_", "depth_", "instance_", "semantic_", "normals_", "labels_"):
            assert any(n.startswith(prefix) for n in names), prefix
    labels = json.loads((full_run / "labels_000000.json").read_text())
    visible = [o for o in labels["objects"] if o["pixel_count"] > 0]
    assert len(visible) >= 3, "the orbiting camera should see most of the table"
    assert not list(full_run.glob("*.tmp")) and not list(full_run.glob(".*"))


def test_labels_agree_with_the_masks(full_run):
    from sdgstudio.core.writer import read_layer

    labels = json.loads((full_run / "labels_000001.json").read_text())
    instance = read_layer(next(full_run.glob("instance_000001.*")))
    semantic = read_layer(next(full_run.glob("semantic_000001.*")))
    depth = read_layer(next(full_run.glob("depth_000001.*")))
    for obj in labels["objects"]:
        mask = instance == obj["instance_id"]
        assert mask.sum() == obj["pixel_count"]
        if obj["pixel_count"] == 0:
            assert obj["bbox_2d_tight"] is None
            continue
        assert np.all(semantic[mask] == obj["class_id"])
        rows, cols = np.nonzero(mask)
        assert obj["bbox_2d_tight"] == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
        assert np.all(np.isfinite(depth[mask]))
        assert 0.0 < obj["visible_fraction"] <= 1.0
    assert np.isinf(depth[instance == 0]).sum() >= 0  # background may or may not be visible


def test_same_seed_gives_byte_identical_frames(full_run, small_scene, tmp_path):
    again = tmp_path / "again"
    assert main(["generate", "--config", str(small_scene), "--frames", str(FRAMES), "--out", str(again), "--quiet"]) == 0
    for frame in range(FRAMES):
        assert _digests(again, frame) == _digests(full_run, frame)


def test_frame_rendered_alone_equals_frame_of_full_run(full_run, small_scene, tmp_path):
    config = load_config(small_scene)
    generate(config, tmp_path / "alone", [FRAMES - 1])
    assert _digests(tmp_path / "alone", FRAMES - 1) == _digests(full_run, FRAMES - 1)
    assert not list((tmp_path / "alone").glob("*_000000.*"))


def test_other_seed_gives_other_frames(full_run, small_scene, tmp_path):
    out = tmp_path / "seed9"
    assert main(["generate", "--config", str(small_scene), "--frames", "1", "--out", str(out), "--seed", "9", "--quiet"]) == 0
    assert _digests(out, 0) != _digests(full_run, 0)
    assert json.loads((out / "manifest.jsonl").read_text().splitlines()[0])["seed"] == 9


def test_occupied_output_folder_is_refused_and_kept(full_run, small_scene, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in full_run.iterdir()}
    assert main(["generate", "--config", str(small_scene), "--frames", "1", "--out", str(full_run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a dataset" in err
    assert {p.name: p.stat().st_mtime_ns for p in full_run.iterdir()} == before


def test_save_stage_writes_each_frames_usda(small_scene, tmp_path):
    from pxr import Usd

    out = tmp_path / "staged"
    assert main(["generate", "--config", str(small_scene), "--frames", "2", "--out", str(out), "--save-stage", "--quiet"]) == 0
    stage = Usd.Stage.Open(str(out / "stages" / "frame_000001.usda"))
    assert stage.GetPrimAtPath("/World/Camera").IsValid()
    params = json.loads((out / "manifest.jsonl").read_text().splitlines()[1])["params"]
    cam = stage.GetPrimAtPath("/World/Camera").GetAttribute("focalLength").Get()
    assert abs(cam - params["camera"]["focal_length"]) < 1e-4


def test_bad_arguments_exit_2(small_scene, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--config", str(small_scene), "--frames", "0", "--out", str(tmp_path / "x")])
    assert info.value.code == 2
    assert "expected a number >= 1" in capsys.readouterr().err
    assert main(["generate", "--config", str(small_scene), "--backend", "replicator", "--out", str(tmp_path / "y"), "--quiet"]) == 2
    assert "Isaac Sim" in capsys.readouterr().err


def test_yaml_config_generates_the_same_dataset(small_scene, full_run, tmp_path):
    yaml_path = tmp_path / "same.yaml"
    save_config(load_config(small_scene), yaml_path)
    out = tmp_path / "from_yaml"
    assert main(["generate", "--config", str(yaml_path), "--frames", "1", "--out", str(out), "--quiet"]) == 0
    assert _digests(out, 0) == _digests(full_run, 0)


def test_config_round_trip_keeps_unknown_classes_out():
    config = config_from_dict({"assets": [{"name": "a", "source": "cube", "class": "a"}]})
    assert config_to_dict(config)["classes"] == ["a"]


def test_resume_adds_missing_frames_and_keeps_the_rest(full_run, small_scene, tmp_path, capsys):
    import shutil

    out = tmp_path / "partial"
    shutil.copytree(full_run, out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text(lines[0] + lines[1][:40])  # frame 0 listed, frame 1 torn mid-line
    (out / "rgb_000002.png").write_bytes(b"half")  # a file of an unlisted frame, as a killed run leaves it
    kept = (out / "rgb_000000.png").stat().st_mtime_ns
    assert main(["generate", "--config", str(small_scene), "--frames", str(FRAMES), "--out", str(out), "--resume", "--quiet"]) == 0
    entries = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [e["frame"] for e in entries] == list(range(FRAMES))
    assert (out / "rgb_000000.png").stat().st_mtime_ns == kept
    for frame in range(FRAMES):
        assert _digests(out, frame) == _digests(full_run, frame)
    assert "wrote 2 frames" in capsys.readouterr().out


def test_resume_refuses_a_dataset_made_with_other_settings(full_run, small_scene, tmp_path, capsys):
    assert main(["generate", "--config", str(small_scene), "--frames", "4", "--out", str(full_run), "--seed", "5", "--resume", "--quiet"]) == 2
    assert "seed" in capsys.readouterr().err
    assert main(["generate", "--config", str(small_scene), "--out", str(tmp_path / "empty"), "--resume", "--quiet"]) == 2
    assert "no dataset to resume" in capsys.readouterr().err
