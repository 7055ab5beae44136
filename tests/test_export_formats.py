"""Acceptance of the four export formats on a rendered dataset (streamed while generating) and a synthetic one.

Both are exported with ``min_visible = 0.5`` and a train/val/test split, so every test also checks the filter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from pycocotools.coco import COCO
from sdgstudio.core.export import Split, export_dataset
from sdgstudio.core.export.kitti import kitti_corners
from sdgstudio.core.export.models import read_ply
from sdgstudio.core.export.polygons import rasterize_polygon
from sdgstudio.core.export.synthetic import synthetic_silhouettes, write_synthetic_dataset
from sdgstudio.core.writer import read_layer

FORMATS = ("coco", "yolo", "kitti", "bop")
SPLIT = {"train": 0.5, "val": 0.25, "test": 0.25}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, tabletop) -> Path:
    """4 frames of the built-in scene, low camera (objects occlude each other), every format streamed by generate."""
    from sdgstudio.core.generate import generate

    config = tabletop.model_copy(deep=True)
    config.camera.resolution = (320, 240)
    config.camera.elevation.min, config.camera.elevation.max = 8, 15
    config.camera.distance.min, config.camera.distance.max = 0.8, 1.0
    config.output.formats = list(FORMATS)
    config.output.export.split = SPLIT
    config.output.export.min_visible = 0.5
    out = tmp_path_factory.mktemp("rendered") / "ds"
    summary = generate(config, out, range(4))
    assert set(summary.exports) == set(FORMATS)
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    out = write_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "ds", 12, width=320, height=240, objects=20)
    for fmt in FORMATS:
        extra = {"silhouettes": synthetic_silhouettes} if fmt == "bop" else {}
        export_dataset(out, fmt, split="train=0.5,val=0.25,test=0.25", min_visible=0.5, **extra)
    return out


@pytest.fixture(params=["rendered", "synthetic"])
def dataset(request) -> Path:
    return request.getfixturevalue(request.param)


def _frames(root: Path) -> list[tuple[int, dict, np.ndarray]]:
    """(frame, labels, instance ids) of every frame of a dataset."""
    out = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        labels = json.loads((root / entry["files"]["labels"]).read_text())
        out.append((entry["frame"], labels, read_layer(root / entry["files"]["instance_segmentation"])))
    return out


def _kept(labels: dict) -> list[dict]:
    """What min_visible 0.5 (and the default min_pixels 1) must keep: exactly the objects with vf >= 0.5."""
    return [o for o in labels["objects"] if o["visible_fraction"] >= 0.5 and o["pixel_count"] >= 1]


def _yolo_lines(root: Path, task: str) -> dict[int, list[list[float]]]:
    out = {}
    for path in (root / "exports" / "yolo" / task / "labels").glob("*/*.txt"):
        out[int(path.stem.split("_")[-1])] = [[float(v) for v in line.split()] for line in path.read_text().splitlines()]
    return out


def test_filter_keeps_exactly_the_visible_enough_objects_in_every_format(dataset):
    frames = _frames(dataset)
    expected = {(f, o["instance_id"]) for f, labels, _ in frames for o in _kept(labels)}
    dropped = {(f, o["instance_id"]) for f, labels, _ in frames for o in labels["objects"]} - expected
    assert expected and dropped, "the dataset should have objects on both sides of the threshold"
    exports = dataset / "exports"
    coco = set()
    for path in (exports / "coco" / "annotations").glob("*.json"):
        coco |= {(a["image_id"], a["instance_id"]) for a in json.loads(path.read_text())["annotations"]}
    bop = set()
    for path in exports.glob("bop/*/*/scene_gt.json"):
        bop |= {(int(k), g["instance_id"]) for k, gts in json.loads(path.read_text()).items() for g in gts}
    assert coco == expected and bop == expected
    boxes = {(f, tuple(o["bbox_2d_tight"])) for f, labels, _ in frames for o in _kept(labels)}
    kitti = set()
    for path in (exports / "kitti" / "label_2").glob("*.txt"):
        kitti |= {(int(path.stem), tuple(float(v) for v in line.split()[4:8])) for line in path.read_text().splitlines()}
    assert kitti == boxes
    sizes = {f: (labels["camera"]["width"], labels["camera"]["height"]) for f, labels, _ in frames}
    yolo = set()
    for f, lines in _yolo_lines(dataset, "detect").items():
        W, H = sizes[f]
        yolo |= {(f, tuple(float(round(v)) for v in ((cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W,
                                                       (cy + h / 2) * H))) for _, cx, cy, w, h in lines}
    assert yolo == boxes
    for fmt in FORMATS:
        meta = json.loads((exports / fmt / "export.json").read_text())
        assert meta["complete"] and meta["settings"]["filter"]["min_visible"] == 0.5
        assert meta["objects_kept"] == len(expected) and sum(meta["objects_dropped"].values()) == len(dropped)


def test_every_frame_is_in_one_split_the_same_in_every_format(dataset):
    seed = json.loads((dataset / "dataset.json").read_text())["seed"]
    split = Split.parse(SPLIT)
    expected = {f: split.assign(seed, f) for f, _, _ in _frames(dataset)}
    assert len(set(expected.values())) >= 2
    exports = dataset / "exports"
    coco = {}
    for path in (exports / "coco" / "annotations").glob("instances_*.json"):
        for image in json.loads(path.read_text())["images"]:
            assert image["id"] not in coco
            coco[image["id"]] = path.stem.removeprefix("instances_")
    kitti = {int(n): p.stem for p in (exports / "kitti" / "ImageSets").glob("*.txt") for n in p.read_text().split()}
    bop = {int(k): p.parts[-3] for p in exports.glob("bop/*/*/scene_camera.json") for k in json.loads(p.read_text())}
    yolo = {int(p.stem.split("_")[-1]): p.parent.name for p in (exports / "yolo" / "segment" / "labels").glob("*/*")}
    assert coco == kitti == bop == yolo == expected


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside pycocotools' decode
def test_coco_loads_with_pycocotools_and_masks_are_the_instance_masks(dataset):
    frames = {f: (labels, ids) for f, labels, ids in _frames(dataset)}
    classes = json.loads((dataset / "dataset.json").read_text())["classes"]
    seen = 0
    for path in sorted((dataset / "exports" / "coco" / "annotations").glob("*.json")):
        coco = COCO(str(path))
        assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == [(c["id"], c["name"]) for c in classes]
        for image in coco.loadImgs(coco.getImgIds()):
            assert (path.parents[1] / "images" / path.stem.removeprefix("instances_") / image["file_name"]).is_file()
        for ann in coco.loadAnns(coco.getAnnIds()):
            labels, ids = frames[ann["image_id"]]
            mask = coco.annToMask(ann).astype(bool)
            truth = ids == ann["instance_id"]
            assert np.array_equal(mask, truth)  # IoU 1.0
            rows, cols = np.nonzero(truth)
            assert ann["bbox"] == [cols.min(), rows.min(), cols.max() + 1 - cols.min(), rows.max() + 1 - rows.min()]
            assert ann["area"] == truth.sum() and ann["iscrowd"] == 0
            obj = next(o for o in labels["objects"] if o["instance_id"] == ann["instance_id"])
            assert ann["category_id"] == obj["class_id"] and ann["visible_fraction"] == obj["visible_fraction"]
            assert ann["truncation"] == obj["truncation"]
            seen += 1
    assert seen


def test_yolo_boxes_polygons_and_class_ids(dataset):
    frames = {f: (labels, ids) for f, labels, ids in _frames(dataset)}
    names = [c["name"] for c in json.loads((dataset / "dataset.json").read_text())["classes"]]
    for task in ("detect", "segment"):
        data = yaml.safe_load((dataset / "exports" / "yolo" / task / "data.yaml").read_text())
        assert data["nc"] == len(names) and data["names"] == dict(enumerate(names)) and "path" not in data
        for key in ("train", "val", "test"):
            assert (dataset / "exports" / "yolo" / task / data[key]).is_dir()
    detect, segment = _yolo_lines(dataset, "detect"), _yolo_lines(dataset, "segment")
    large = 0
    for f, (labels, ids) in frames.items():
        W, H = labels["camera"]["width"], labels["camera"]["height"]
        kept = _kept(labels)
        assert len(detect[f]) == len(segment[f]) == len(kept)
        for obj, box, poly in zip(kept, detect[f], segment[f], strict=True):
            assert box[0] == poly[0] == obj["class_id"] - 1 and 0 <= box[0] < len(names)
            _, cx, cy, w, h = box
            ours = np.array(obj["bbox_2d_tight"])
            assert np.abs(np.array([(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H]) - ours).max() < 1
            xy = np.array(poly[1:]).reshape(-1, 2) * [W, H]
            back, truth = rasterize_polygon(xy, W, H), ids == obj["instance_id"]
            iou = (back & truth).sum() / (back | truth).sum()
            if truth.sum() > 400:
                large += 1
                assert iou >= 0.9
    assert large


def test_kitti_boxes_projected_with_the_calib_match_ours(dataset):
    checked = 0
    for f, labels, _ in _frames(dataset):
        name = f"{f:06d}"
        calib = {k: np.array(v.split(), float) for k, v in
                 (line.split(":", 1) for line in (dataset / "exports/kitti/calib" / f"{name}.txt").read_text().splitlines())}
        P2 = calib["P2"].reshape(3, 4)
        Tr = np.vstack([calib["Tr_velo_to_cam"].reshape(3, 4), [0, 0, 0, 1]])
        R0 = calib["R0_rect"].reshape(3, 3)
        K = np.array(labels["camera"]["K"])
        w2c = np.linalg.inv(np.array(labels["camera"]["camera_to_world"]))
        lines = (dataset / "exports/kitti/label_2" / f"{name}.txt").read_text().splitlines()
        for obj, line in zip(_kept(labels), lines, strict=True):
            v = line.split()
            assert v[0] == obj["class"] and float(v[1]) == pytest.approx(obj["truncation"], abs=1e-6)
            box = dict(zip(("h", "w", "l", "x", "y", "z", "rotation_y"), map(float, v[8:15]), strict=True))
            kitti = P2 @ np.vstack([kitti_corners(box).T, np.ones(8)])
            kitti = (kitti[:2] / kitti[2]).T
            lo, hi = obj["bbox_3d"]["min"], obj["bbox_3d"]["max"]
            corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
            world = np.array(obj["bbox_3d"]["local_to_world"]) @ corners.T
            ours = K @ (w2c @ world)[:3]
            ours = (ours[:2] / ours[2]).T
            dist = np.linalg.norm(kitti[:, None] - ours[None], axis=-1)
            assert dist.min(0).max() < 1.0 and dist.min(1).max() < 1.0  # every corner has its partner within 1 px
            via_world = P2 @ np.vstack([R0 @ (Tr @ world)[:3], np.ones(8)])  # velodyne (= world) -> rect -> image
            assert np.allclose((via_world[:2] / via_world[2]).T, ours, atol=1e-6)
            checked += 1
    assert checked


def test_bop_poses_masks_depth_and_models(dataset, request):
    bop = dataset / "exports" / "bop"
    frames = {f: (labels, ids) for f, labels, ids in _frames(dataset)}
    manifest = {json.loads(x)["frame"]: json.loads(x) for x in (dataset / "manifest.jsonl").read_text().splitlines()}
    checked = 0
    for scene in sorted(bop.glob("*/0*")):
        gt_all = json.loads((scene / "scene_gt.json").read_text())
        info_all = json.loads((scene / "scene_gt_info.json").read_text())
        cam_all = json.loads((scene / "scene_camera.json").read_text())
        for key, gts in gt_all.items():
            f = int(key)
            labels, ids = frames[f]
            cam = cam_all[key]
            assert cam["cam_K"] == np.array(labels["camera"]["K"]).ravel().tolist()
            depth = read_layer(dataset / manifest[f]["files"]["depth"]).astype(np.float64)
            png = np.array(Image.open(scene / "depth" / f"{f:06d}.png")).astype(float) * cam["depth_scale"]
            assert np.all(png[~np.isfinite(depth)] == 0)
            assert np.abs(png[np.isfinite(depth)] - depth[np.isfinite(depth)] * 1000).max() <= cam["depth_scale"] / 2 + 1e-6
            for k, (gt, info) in enumerate(zip(gts, info_all[key], strict=True)):
                obj = next(o for o in labels["objects"] if o["instance_id"] == gt["instance_id"])
                assert np.array(gt["cam_R_m2c"]).reshape(3, 3).tolist() == obj["pose_in_camera"]["R"]  # exact
                assert np.allclose(np.array(gt["cam_t_m2c"]) / 1000, obj["pose_in_camera"]["t"], rtol=0, atol=1e-12)
                visib = np.array(Image.open(scene / "mask_visib" / f"{f:06d}_{k:06d}.png")) > 0
                full = np.array(Image.open(scene / "mask" / f"{f:06d}_{k:06d}.png")) > 0
                assert np.array_equal(visib, ids == obj["instance_id"]) and not (visib & ~full).any()
                assert info["px_count_all"] == full.sum() == obj["unoccluded_pixel_count"]
                assert info["px_count_visib"] == obj["pixel_count"]
                assert info["visib_fract"] == pytest.approx(obj["visible_fraction"], abs=1e-6)
                checked += 1
    assert checked
    info = json.loads((bop / "models" / "models_info.json").read_text())
    camera = json.loads((bop / "camera.json").read_text())
    assert set(camera) == {"cx", "cy", "depth_scale", "fx", "fy", "height", "width"}
    for obj_id, entry in info.items():
        points, tris = read_ply((bop / "models" / f"obj_{int(obj_id):06d}.ply").read_bytes())
        assert len(tris) and np.allclose(points.min(0), [entry["min_x"], entry["min_y"], entry["min_z"]], atol=1e-3)
        assert entry["diameter"] >= max(entry["size_x"], entry["size_y"], entry["size_z"]) > 0
    if request.node.callspec.params["dataset"] == "rendered":  # a model's extent is the object's 3D box, in mm
        for labels, _ in frames.values():
            for obj in _kept(labels):
                entry = next(e for e in info.values() if obj["prim_path"].split("/")[-1].startswith(e["name"] + "_"))
                assert np.allclose([entry["min_x"], entry["min_y"], entry["min_z"]],
                                   np.array(obj["bbox_3d"]["min"]) * 1000, atol=1e-3)
