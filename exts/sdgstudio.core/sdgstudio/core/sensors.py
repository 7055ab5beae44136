"""Depth-camera realism, applied as a post-process to a copy of the exact depth (``FrameData.depth_sensor``).

Steps, in order (parameters from ``DepthSensorConfig``, recorded in dataset.json and each manifest line):

1. range clipping: readings outside ``[min_range, max_range]`` meters are dropped;
2. grazing-angle dropout: readings whose surface is seen at an incidence angle (between the surface normal and the
   viewing ray) above ``dropout_angle`` degrees are dropped — structured-light and ToF sensors lose these;
3. axial noise: Gaussian with sigma = ``noise_coefficient`` x depth^2 (meters), the usual stereo/structured-light
   model, drawn from the frame's own stream ``SeedSequence([seed, frame, DEPTH_NOISE_STREAM])``;
4. quantization: rounded to multiples of ``quantization`` meters.

Dropped readings are 0, as real depth cameras report them. The exact depth (``inf`` = no hit) is never modified.
"""

from __future__ import annotations

import numpy as np

from .config import DepthSensorConfig
from .frame import CameraData

DEPTH_NOISE_STREAM = 0x5E45  # third SeedSequence word: keeps sensor noise apart from the sampler's streams


def view_rays_world(camera: CameraData) -> np.ndarray:
    """Unit viewing ray through every pixel centre, world frame, (H, W, 3)."""
    v, u = np.mgrid[0 : camera.height, 0 : camera.width]
    pix = np.stack([u + 0.5, v + 0.5, np.ones_like(u, dtype=float)], -1)
    rays_cam = pix @ np.linalg.inv(camera.K).T
    rays = rays_cam @ camera.camera_to_world[:3, :3].T
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def simulate_depth_sensor(
    depth: np.ndarray, normals: np.ndarray | None, camera: CameraData, config: DepthSensorConfig,
    seed: int, frame_index: int,
) -> np.ndarray:
    """The depth a sensor with ``config`` would report for the exact ``depth`` (meters, float32, 0 = no reading)."""
    z = depth.astype(np.float64)
    valid = np.isfinite(z) & (z >= config.min_range) & (z <= config.max_range)
    if config.dropout_angle < 90.0:
        if normals is None:
            raise ValueError("grazing-angle dropout needs surface normals")
        cos_incidence = np.abs(np.sum(normals * view_rays_world(camera), axis=-1))
        valid &= cos_incidence >= np.cos(np.radians(config.dropout_angle))
    if config.noise_coefficient > 0:
        rng = np.random.default_rng(np.random.SeedSequence([seed, frame_index, DEPTH_NOISE_STREAM]))
        noise = rng.standard_normal(z.shape)  # drawn for every pixel: the stream never depends on the scene
        z = np.where(valid, z + noise * config.noise_coefficient * np.square(np.where(valid, z, 0.0)), z)
    if config.quantization > 0:
        z = np.round(z / config.quantization) * config.quantization
    return np.where(valid & (z > 0), z, 0.0).astype(np.float32)
