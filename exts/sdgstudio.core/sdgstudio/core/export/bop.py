"""BOP export (BOP'19 format): ``<split>/<scene>/`` with ``scene_camera.json``, ``scene_gt.json``,
``scene_gt_info.json``, ``rgb/``, ``depth/``, ``mask/``, ``mask_visib/``; ``models/`` with PLY files and
``models_info.json``; ``camera.json``.

Scenes hold 1000 frames each (scene id = frame // 1000, image id = frame index), like BOP's PBR training sets.
Units are BOP's: millimeters for translations, depth and models. Rotations are row-major 3x3 model->camera
matrices in the OpenCV camera frame, which is ours, so ``cam_R_m2c`` / ``cam_t_m2c`` are ``pose_in_camera``'s R
and t (times 1000). Full silhouettes (``mask/``) are replayed with the raster scene reader (``replay.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..encoders import encode_png
from ..manifest import write_file_durably
from .common import FORMAT_NEEDS, DatasetInfo, ExportError, ExportSettings, FrameSource, link_or_copy, mask_extent
from .models import model_info, model_name, model_table, ply_bytes

FRAMES_PER_SCENE = 1000
#: Depth PNG steps tried per frame, in millimeters per unit: the finest one that holds the frame's farthest depth.
DEPTH_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)

#: Full silhouettes of one frame: (H, W) bool masks by object prim path.
SilhouetteSource = Callable[[FrameSource], dict[str, np.ndarray]]


def depth_png(depth_m: np.ndarray) -> tuple[np.ndarray, float]:
    """16-bit depth image and its ``depth_scale`` (mm per unit): ``depth_mm = value * depth_scale``, 0 = no depth.

    Depth is the distance to the image plane (OpenCV z), as in BOP; ``inf`` (nothing hit) becomes 0."""
    finite = np.isfinite(depth_m)
    mm = np.where(finite, depth_m.astype(np.float64) * 1000.0, 0.0)
    farthest = float(mm.max(initial=0.0))
    scale = next((s for s in DEPTH_SCALES if farthest / s <= 65535), None)
    if scale is None:
        raise ExportError(f"depth of {farthest / 1000:.1f} m does not fit a 16-bit BOP depth image")
    return np.round(mm / scale).astype(np.uint16), scale


def bbox_xywh(box: tuple[int, int, int, int] | list[float]) -> list[int]:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def pose_m2c(obj: dict) -> dict:
    """BOP pose of an object: row-major R and t in mm (exactly ``pose_in_camera``, t scaled by 1000)."""
    R = np.asarray(obj["pose_in_camera"]["R"], float)
    t = np.asarray(obj["pose_in_camera"]["t"], float)
    return {"cam_R_m2c": R.ravel().tolist(), "cam_t_m2c": (t * 1000.0).tolist()}


class BopExporter:
    """Writes BOP scenes; ``silhouettes`` overrides where full masks come from (default: replay the frame)."""

    needs = FORMAT_NEEDS["bop"]

    def __init__(self, out: Path, dataset: DatasetInfo, settings: ExportSettings,
                 silhouettes: SilhouetteSource | None = None) -> None:
        self.out, self.dataset, self.settings = out, dataset, settings
        self.models = model_table(dataset.config)
        self._silhouettes = silhouettes
        self._replay = None
        self._made: set[Path] = set()

    @property
    def replay(self):
        if self._replay is None:
            from .replay import SceneReplay

            try:
                self._replay = SceneReplay(self.dataset.config)
            except ValueError as exc:  # ConfigError: moved assets, textures ...
                raise ExportError(f"BOP needs the dataset's scene to replay full silhouettes, and it cannot be "
                                  f"rebuilt: {str(exc).splitlines()[0]}") from exc
        return self._replay

    def silhouettes(self, src: FrameSource) -> dict[str, np.ndarray]:
        if self._silhouettes is not None:
            return self._silhouettes(src)
        masks, K = self.replay.silhouettes(int(src.entry.get("seed", self.dataset.seed)), src.index,
                                           (src.width, src.height))
        if not np.allclose(K, src.labels["camera"]["K"], rtol=1e-9, atol=1e-9):
            raise ExportError(f"frame {src.index}: the replayed camera differs from the recorded one")
        return masks

    def _folder(self, path: Path) -> Path:
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def frame(self, src: FrameSource, split: str, objects: list[dict]) -> dict:
        scene = src.index // FRAMES_PER_SCENE
        base = self.out / split / f"{scene:06d}"
        stem = f"{src.index:06d}"
        rgb = src.path("rgb")
        if rgb is not None:
            link_or_copy(rgb, self._folder(base / "rgb") / f"{stem}{rgb.suffix}")
        depth16, depth_scale = depth_png(src.layer("depth", "the BOP export"))
        (self._folder(base / "depth") / f"{stem}.png").write_bytes(encode_png(depth16))
        camera = src.labels["camera"]
        w2c = np.linalg.inv(np.asarray(camera["camera_to_world"], float))
        cam = {"cam_K": np.asarray(camera["K"], float).ravel().tolist(), "depth_scale": depth_scale,
               "cam_R_w2c": w2c[:3, :3].ravel().tolist(), "cam_t_w2c": (w2c[:3, 3] * 1000.0).tolist()}
        full = self.silhouettes(src) if objects else {}
        gt, info, mismatches = [], [], []
        H, W = src.height, src.width
        for k, obj in enumerate(objects):
            name = model_name(obj["prim_path"])
            if name not in self.models:
                raise ExportError(f"frame {src.index}: {obj['prim_path']} is no asset or prop of the config, so it "
                                  f"has no BOP model")
            visib, x0, y0 = src.object_mask(obj)
            visib_full = np.zeros((H, W), bool)
            visib_full[y0:y0 + visib.shape[0], x0:x0 + visib.shape[1]] = visib
            amodal = full.get(obj["prim_path"], np.zeros((H, W), bool))
            if int(np.count_nonzero(amodal)) != obj["unoccluded_pixel_count"] or (visib_full & ~amodal).any():
                mismatches.append(obj["instance_id"])
            amodal = amodal | visib_full
            mask_name = f"{stem}_{k:06d}.png"
            (self._folder(base / "mask") / mask_name).write_bytes(encode_png(amodal.view(np.uint8) * np.uint8(255)))
            (self._folder(base / "mask_visib") / mask_name).write_bytes(
                encode_png(visib_full.view(np.uint8) * np.uint8(255)))
            px_all = int(np.count_nonzero(amodal))
            gt.append({**pose_m2c(obj), "obj_id": self.models[name]["obj_id"],
                       "scale": [float(s) for s in obj["scale"]], "instance_id": int(obj["instance_id"])})
            info.append({"bbox_obj": bbox_xywh(mask_extent(amodal)), "bbox_visib": bbox_xywh(obj["bbox_2d_tight"]),
                         "px_count_all": px_all, "px_count_valid": int(np.count_nonzero(amodal & (depth16 > 0))),
                         "px_count_visib": int(obj["pixel_count"]),
                         "visib_fract": float(obj["pixel_count"]) / px_all if px_all else 0.0})
        return {"scene": scene, "im_id": src.index, "size": [W, H], "camera": cam, "gt": gt, "gt_info": info,
                "silhouette_mismatches": mismatches}

    def finalize(self, parts: Iterable[dict]) -> dict:
        """Scene JSONs in one pass over the parts in frame order: a scene's documents are written once its last
        frame has passed (scene = frame // 1000), so memory holds at most one scene per split."""
        open_scenes: dict[tuple[str, int], list[dict]] = {}
        used: set[int] = set()
        first, mismatched = None, 0
        for part in parts:
            data = part["data"]
            first = first or data
            used.update(g["obj_id"] for g in data["gt"])
            mismatched += len(data["silhouette_mismatches"])
            for key in [k for k in open_scenes if k[1] < data["scene"]]:
                self._write_scene(*key, open_scenes.pop(key))
            open_scenes.setdefault((part["split"], data["scene"]), []).append(data)
        for key, items in open_scenes.items():
            self._write_scene(*key, items)
        self._write_models(sorted(used))
        if first is not None:
            K = np.asarray(first["camera"]["cam_K"]).reshape(3, 3)
            width, height = first["size"]  # the first frame's camera; per-image K is in scene_camera
            camera = {"cx": K[0, 2], "cy": K[1, 2], "depth_scale": first["camera"]["depth_scale"], "fx": K[0, 0],
                      "fy": K[1, 1], "height": height, "width": width}
            write_file_durably(self.out / "camera.json", _json(camera), drop_cache=False)
        return {"models": sorted(used), "frames_per_scene": FRAMES_PER_SCENE, "silhouette_mismatches": mismatched}

    def _write_scene(self, split: str, scene: int, items: list[dict]) -> None:
        base = self._folder(self.out / split / f"{scene:06d}")
        for name, key in (("scene_camera", "camera"), ("scene_gt", "gt"), ("scene_gt_info", "gt_info")):
            doc = {str(d["im_id"]): d[key] for d in items}
            write_file_durably(base / f"{name}.json", _json(doc), drop_cache=False)

    def _write_models(self, obj_ids: list[int]) -> None:
        folder = self._folder(self.out / "models")
        by_id = {v["obj_id"]: (name, v) for name, v in self.models.items()}
        meshes: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
        if obj_ids:
            for path, mesh in self.replay.meshes().items():
                meshes.setdefault(model_name(path), mesh)
        infos = {}
        for obj_id in obj_ids:
            name, entry = by_id[obj_id]
            points, tris = meshes[name]
            points_mm = points * 1000.0
            comment = f"SDG Studio model '{name}' (class {entry['class']}), millimeters, object frame before scale"
            write_file_durably(folder / f"obj_{obj_id:06d}.ply", ply_bytes(points_mm, tris, comment), drop_cache=False)
            infos[str(obj_id)] = {**model_info(points_mm), "name": name, "class": entry["class"]}
        write_file_durably(folder / "models_info.json", _json(infos), drop_cache=False)


def _json(doc: dict) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode()
