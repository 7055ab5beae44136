"""Replays a dataset's frames with the raster backend's scene reader: full object silhouettes and object models.

BOP's ``mask/`` holds each object's *unoccluded* silhouette, which no per-frame file records. Any frame renders
alone (``sample_frame_params`` is pure and ``apply_frame_params`` sets every randomized attribute), so we rebuild the
stage from ``dataset.json``'s config, put it in frame k's state and cast one ray per pixel centre -- the same rays,
the same meshes and the same test as the raster backend's ``unoccluded`` count (``raster/kernels.py``) -- and mark
every labelled object the ray hits anywhere between the near and far planes. So ``mask`` has exactly
``unoccluded_pixel_count`` pixels; the BOP exporter checks that and reports any frame where it does not hold.
"""

from __future__ import annotations

import numpy as np
import warp as wp

from ..raster.kernels import ray_box


@wp.kernel
def silhouette_kernel(
    cam_pos: wp.vec3,
    cam_rot: wp.mat33,  # OpenCV camera -> world rotation
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    near: float,
    far: float,
    mesh_ids: wp.array(dtype=wp.uint64),
    w2l: wp.array(dtype=wp.mat44),
    lo: wp.array(dtype=wp.vec3),
    hi: wp.array(dtype=wp.vec3),
    inst_obj: wp.array(dtype=wp.int32),
    masks: wp.array3d(dtype=wp.uint8),
):
    """``masks[obj, v, u] = 1`` when the ray through pixel centre (u, v) hits labelled object ``obj`` at all."""
    i, j = wp.tid()
    dc = wp.normalize(wp.vec3((float(j) + 0.5 - cx) / fx, (float(i) + 0.5 - cy) / fy, 1.0))
    dz = dc[2]
    d = cam_rot * dc
    t0 = near / dz
    o = cam_pos + d * t0
    tmax = far / dz - t0
    for k in range(mesh_ids.shape[0]):
        obj = inst_obj[k]
        if obj < 0:
            continue
        m = w2l[k]
        lo_ = wp.transform_point(m, o)
        ld = wp.transform_vector(m, d)
        if not ray_box(lo_, ld, lo[k], hi[k], tmax):
            continue
        q = wp.mesh_query_ray(mesh_ids[k], lo_, ld, tmax)
        if q.result:
            masks[obj, i, j] = wp.uint8(1)


class SceneReplay:
    """The dataset's stage rebuilt from its config, replaying any frame on the CPU (or a Warp device)."""

    def __init__(self, config: dict, device: str = "cpu") -> None:
        from ..config import config_from_dict
        from ..raster import RasterSettings
        from ..raster.scene import SceneReader
        from ..stage import build_stage

        wp.config.quiet = True
        wp.init()
        self.config = config_from_dict(config, source="dataset.json config")
        self.stage = build_stage(self.config)
        self.device = wp.get_device(device)
        self.reader = SceneReader(list(self.config.classes), str(self.device), RasterSettings().segments)

    def _scene(self, seed: int, frame: int, resolution: tuple[int, int], show_all: bool = False):
        from ..sampler import CAMERA_PATH, sample_frame_params
        from ..stage import apply_frame_params

        params = sample_frame_params(self.config, seed, frame)
        if show_all:  # first slot of every asset visible: the geometry of every model, poses irrelevant
            seen: set[str] = set()
            for obj in params.objects:
                obj.visible = obj.visible or obj.asset not in seen
                seen.add(obj.asset)
        apply_frame_params(self.stage, params)
        return self.reader.read(self.stage, CAMERA_PATH, resolution)

    def silhouettes(self, seed: int, frame: int, resolution: tuple[int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Each labelled object's full silhouette in frame ``frame`` ((H, W) bool by prim path) and the camera K."""
        sc = self._scene(seed, frame, resolution)
        cam, dev = sc.camera, self.device
        W, H = cam.width, cam.height
        n = len(sc.instances)
        masks = wp.zeros((max(len(sc.objects), 1), H, W), dtype=wp.uint8, device=dev)
        if n and sc.objects:
            w2l = np.stack([np.linalg.inv(i.local_to_world) for i in sc.instances])
            lo = np.array([i.entry.lo for i in sc.instances]).reshape(-1, 3)
            hi = np.array([i.entry.hi for i in sc.instances]).reshape(-1, 3)
            pad = 1.0e-4 * (hi - lo).max(1, initial=0.0)[:, None] + 1.0e-6
            K, R = cam.K, cam.cam_to_world[:3, :3]
            wp.launch(silhouette_kernel, dim=(H, W), device=dev, inputs=[
                wp.vec3(*cam.cam_to_world[:3, 3]), wp.mat33(*R.ravel()), K[0, 0], K[1, 1], K[0, 2], K[1, 2],
                cam.near, cam.far,
                wp.array(np.array([i.entry.mesh.id for i in sc.instances], np.uint64), dtype=wp.uint64, device=dev),
                wp.array(w2l.astype(np.float32), dtype=wp.mat44, device=dev),
                wp.array((lo - pad).astype(np.float32), dtype=wp.vec3, device=dev),
                wp.array((hi + pad).astype(np.float32), dtype=wp.vec3, device=dev),
                wp.array(np.array([i.obj for i in sc.instances], np.int32), dtype=wp.int32, device=dev)],
                outputs=[masks])
        out = masks.numpy().astype(bool)
        return {o.path: out[k] for k, o in enumerate(sc.objects)}, cam.K.copy()

    def meshes(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(points (N, 3) meters, triangles (T, 3)) by prim path of one slot of every asset and of every labelled
        prop, in the object's own frame before its scale -- the frame ``pose_in_camera`` is the pose of."""
        sc = self._scene(self.config.seed, 0, (8, 8), show_all=True)
        return {o.path: (sc.instances[o.instance].entry.points.copy(), sc.instances[o.instance].entry.tris.copy())
                for o in sc.objects}
