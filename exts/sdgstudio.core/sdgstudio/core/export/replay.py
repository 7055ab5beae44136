"""Replays a dataset's frames with the raster backend's scene reader: full object silhouettes and object models.

BOP's ``mask/`` holds each object's *unoccluded* silhouette, which no per-frame file records. Any frame renders
alone (``sample_frame_params`` is pure and ``apply_frame_params`` sets every randomized attribute), so we rebuild the
stage from ``dataset.json``'s config, put it in frame k's state and ask the raster backend for its unoccluded
coverage masks (``RasterBackend.silhouettes``) -- the very masks it counts into ``unoccluded_pixel_count``. So
``mask`` has exactly that many pixels; the BOP exporter checks it and reports any frame where it does not hold.
"""

from __future__ import annotations

import numpy as np


class SceneReplay:
    """The dataset's stage rebuilt from its config, replaying any frame through the raster backend."""

    def __init__(self, config: dict, device: str = "cpu") -> None:
        from ..config import config_from_dict
        from ..raster import RasterBackend, RasterSettings
        from ..sampler import camera_path
        from ..stage import FrameWriter, build_stage

        self.config = config_from_dict(config, source="dataset.json config")
        self.stage = build_stage(self.config)
        self.writer = FrameWriter(self.stage)
        self.camera_path = camera_path(self.config)
        self.backend = RasterBackend(list(self.config.classes), RasterSettings(device=device))
        self.reader = self.backend.reader

    def _pose(self, seed: int, frame: int, show_all: bool = False) -> None:
        from ..sampler import sample_frame_params

        params = sample_frame_params(self.config, seed, frame)
        if show_all:  # first slot of every asset visible: the geometry of every model, poses irrelevant
            seen: set[str] = set()
            for obj in params.objects:
                obj.visible = obj.visible or obj.asset not in seen
                seen.add(obj.asset)
        self.writer.apply(params)

    def silhouettes(self, seed: int, frame: int, resolution: tuple[int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Each labelled object's full silhouette in frame ``frame`` ((H, W) bool by prim path) and the camera K."""
        self._pose(seed, frame)
        return self.backend.silhouettes(self.stage, self.camera_path, resolution)

    def meshes(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(points (N, 3) meters, triangles (T, 3)) by prim path of one slot of every asset and of every labelled
        prop, in the object's own frame before its scale -- the frame ``pose_in_camera`` is the pose of."""
        self._pose(self.config.seed, 0, show_all=True)
        sc = self.reader.read(self.stage, self.camera_path, (8, 8))
        return {o.path: (sc.instances[o.instance].entry.points.copy(), sc.instances[o.instance].entry.tris.copy())
                for o in sc.objects}
