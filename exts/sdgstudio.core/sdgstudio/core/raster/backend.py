"""RasterBackend: renders any USD stage with exact Warp ray casting into a :class:`~sdgstudio.core.frame.FrameData`.

Light intensity mapping (irradiance ``E`` in "albedo units": a white Lambertian surface facing a light with
``E = 1`` renders as pixel value 255). ``I = inputs:intensity * 2 ** inputs:exposure / 1000``, ``c`` =
``inputs:color`` (times ``UsdLux.BlackbodyTemperatureAsRgb(inputs:colorTemperature)`` when
``inputs:enableColorTemperature``; USD's own luminance-normalized blackbody):

* DistantLight: ``E = I * c`` from the light's world +Z side (it shines along its -Z axis). ``angle`` ignored.
* SphereLight (radius ``r`` times the world scale): ``E(d) = I * c * pi r**2 / d**2`` (a sphere of radiance ``I``
  seen from distance ``d``), ``d`` clamped to >= r. With ``inputs:normalize`` the ``pi r**2`` becomes ``1/4``
  (power independent of size). ``treatAsPoint`` is ignored. Shadows: a point at the centre.
* DiskLight ``pi r**2``, RectLight ``width*height`` (one-sided, times ``max(0, cos)`` about its -Z axis),
  CylinderLight ``2 r length``: the same point-light formula with that projected area (normalize: area ratio).
* DomeLight: uniform ambient ``E = I * c`` on every lit surface, no shadows; also the background colour. Textures
  of dome lights are ignored.
* No light at all: a headlight along the view direction, ``E = 0.9`` plus ambient ``0.1``, no shadows.
* ``inputs:diffuse`` / ``inputs:specular`` multiply the light's diffuse / specular contribution.

Shading (linear RGB): ``albedo * (1 - metallic) * (ambient + sum_l E_l vis_l max(0, n.l))`` plus a normalized
Blinn-Phong lobe ``F0 (s + 2) / 8 (n.h)**s E_l vis_l max(0, n.l)`` with ``s = 2 / max(roughness, 0.05)**4 - 2``
(the lobe is looked up in a 256-entry table per material, linearly interpolated),
``F0 = 0.04 (1 - metallic) + albedo * metallic``, plus ``(albedo (1 - metallic) + F0 / 4) * ambient``; clamped to
[0, 1] and sRGB-encoded (65536-entry table) to uint8, all in a Warp kernel.
Albedo: the material's texture (bilinear, UsdUVTexture wrap; textures are sRGB-decoded unless
``sourceColorSpace = raw``) or diffuse colour, else displayColor, else 0.5. Normals are geometric (flat shading).
Specular lobes below 1e-7 (after the normalization factor) are skipped.

Passes per frame (CPU or CUDA, the same kernels): read the stage (``scene.py``, cached tessellations) -> primary
visibility by exact ray-triangle rasterization (``primary.py``) -> one per-pixel kernel that resolves depth, normals
and ids, casts shadow rays through light-space instance grids (``shadows.py``) and shades (``pixels.py``) -> labels
(``labels.py``). A frame's uploads, scratch buffers and read-backs go through ``transfer.FrameTraffic`` (few,
large, asynchronous copies from recycled buffers); its geometry is gathered from a device atlas of meshes
(``geometry.py``). ``last_timings`` holds milliseconds per stage. ``render`` is ``prepare`` (everything that reads
the stage, and the host-built tables) then ``execute`` (the passes and labels), so that a run can pose and read the
next frame while the current one's passes run (``RenderSession.frames``).
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass

import numpy as np
import warp as wp
from pxr import Usd

from ..frame import CameraData, FrameData
from .from_params import ParamsReader
from .geometry import DeviceGeometry
from .labels import object_labels, queue_loose_boxes
from .pixels import WANT_DEPTH, WANT_IDS, WANT_NORMALS, WANT_RGB, WANT_SEM, PixelPass
from .primary import PrimaryPass
from .scene import RenderScene, SceneReader
from .shading import ShadingTables, frame_lights
from .shadows import shadow_tables
from .transfer import FrameTraffic, Staging

_WANT = {"depth": WANT_DEPTH, "normals": WANT_NORMALS, "instance_segmentation": WANT_IDS,
         "semantic_segmentation": WANT_SEM, "rgb": WANT_RGB}


@dataclass
class RasterSettings:
    """Options of the raster backend."""

    device: str = "cpu"  #: Warp device: "cpu" or "cuda" / "cuda:N"
    segments: int = 96  #: tessellation segments around curved implicit prims (spheres get segments // 2 rings)
    shadows: bool = True  #: cast shadow rays for distant / point-like lights
    shadow_bias: float = 1.0e-4  #: meters; shadow-ray origin offset along the normal
    cache_max_age: int = 64  #: renders an unused cached mesh / texture survives
    quiet: bool = True  #: set ``wp.config.quiet`` (no Warp banner / module-load lines on stdout)
    threads: int = 0  #: CPU device: threads for the image passes (0: one per core, at most 4); same results for any
    frames_in_flight: int | None = None  #: see :attr:`RasterBackend.frames_in_flight`; None: the device's default


class RasterBackend:
    """Embedded ray-casting renderer; reads everything from the stage (see module docstring)."""

    def __init__(self, class_names: list[str], settings: RasterSettings | None = None) -> None:
        self.class_names = list(class_names)
        self.settings = settings or RasterSettings()
        if self.settings.quiet:
            wp.config.quiet = True
        wp.init()
        self.device = wp.get_device(self.settings.device)
        threads = self.settings.threads or min(os.cpu_count() or 1, 4)
        self.primary = PrimaryPass(self.device, threads)
        self.pixels = PixelPass(self.device, threads)
        self.shading = ShadingTables(self.device)
        self.staging = Staging(self.device)
        self.close()
        self.last_timings: dict[str, float] = {}  #: ms per stage of the last render

    @property
    def frames_in_flight(self) -> int:
        """How many frames' ``execute`` ``RenderSession.frames`` may run on other threads while it prepares the
        next (0: one frame at a time). CPU: 2. The passes release the GIL for tens of ms, and a frame's serial
        parts (setup, host syncs, labels) leave the band threads idle unless another frame's kernels fill them:
        2-core VM, generate at 640x480: 18.6-19.3 frames/s with 1 in flight, 20.5-22.2 with 2 (bench/RESULTS.md).
        CUDA: 0. ``execute`` sleeps in its two waits with the GIL released, but the next frame's preparation and
        this frame's launches then trade the GIL: H100, one process, 69 frames/s one at a time, 44 with one in
        flight (bench/RESULTS.md). Processes sharing the GPU keep it busy instead (``launch --gpus-per-worker``)."""
        if self.settings.frames_in_flight is not None:
            return max(0, int(self.settings.frames_in_flight))
        return 2 if self.device.is_cpu else 0

    def close(self) -> None:
        """Drop cached meshes, textures and device buffers; stop listening to the last stage."""
        if getattr(self, "reader", None) is not None:
            self.reader.close()
        self.reader = SceneReader(self.class_names, str(self.device), self.settings.segments,
                                  self.settings.cache_max_age)
        self.params_reader = ParamsReader(self.reader)
        self.geometry = DeviceGeometry(self.device)
        self.shading = ShadingTables(self.device)

    def silhouettes(self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int]
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Each labelled object's full silhouette (occluders ignored), (H, W) bool by prim path, and the camera K:
        the very coverage ``render`` counts into ``unoccluded_pixel_count`` (BOP's ``mask/`` is made from it)."""
        sc = self.reader.read(stage, camera_path, resolution)
        traffic = FrameTraffic(self.staging)
        self.geometry.update(sc.instances, traffic)
        n = len(sc.instances)
        l2w = np.stack([i.local_to_world for i in sc.instances]) if n else np.zeros((0, 4, 4))
        inst_obj = np.array([i.obj for i in sc.instances], np.int64)
        try:
            raster = self.primary.run(self.geometry, sc.camera, l2w, inst_obj, len(sc.objects), traffic,
                                      keep_cover=True)
        finally:
            traffic.close()
        empty = np.zeros((sc.camera.height, sc.camera.width), bool)
        return {obj.path: raster.silhouettes.get(k, empty) for k, obj in enumerate(sc.objects)}, sc.camera.K.copy()

    def render(self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int], annotators: set[str],
               frame_index: int) -> FrameData:
        """Render one frame of ``stage`` seen from ``camera_path`` at ``resolution`` = (W, H) pixels.

        Only the requested image layers are set; labels (``objects``) are always filled.
        """
        return self.execute(self.prepare(stage, camera_path, resolution, annotators, frame_index))

    def prepare(self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int], annotators: set[str],
                frame_index: int) -> PreparedFrame:
        """The first half of :meth:`render`: read the stage and build the kernels' tables. Once it returns, the
        stage may change (the next frame) while :meth:`execute` runs on another thread."""
        _check(resolution)
        t = time.perf_counter()
        return self._prepare_scene(self.reader.read(stage, camera_path, resolution), annotators, frame_index, t)

    def prepare_params(self, stage: Usd.Stage, params, camera_path: str, resolution: tuple[int, int],
                      annotators: set[str], frame_index: int) -> PreparedFrame | None:
        """:meth:`prepare` of ``stage`` in the state ``stage.FrameWriter`` would give it for ``params``
        (``FrameParams``), without posing it (``from_params.py``); None when that cannot be done yet: pose the stage
        and call :meth:`prepare`."""
        _check(resolution)
        t = time.perf_counter()
        sc = self.params_reader.read(stage, params, camera_path, resolution)
        return None if sc is None else self._prepare_scene(sc, annotators, frame_index, t)

    def _prepare_scene(self, sc: RenderScene, annotators: set[str], frame_index: int, t: float) -> PreparedFrame:
        tm = {}
        traffic = FrameTraffic(self.staging)
        self.geometry.update(sc.instances, traffic)
        tm["scene"], t = _lap(t)
        cam, geo = sc.camera, copy.copy(self.geometry)  # a snapshot: the next frame's update replaces its arrays
        frame = FrameData(index=frame_index, camera=CameraData(cam.width, cam.height, cam.K.copy(),
                                                               cam.cam_to_world.copy(), cam.prim_path, cam.near,
                                                               cam.far))
        n = len(sc.instances)
        l2w = np.stack([i.local_to_world for i in sc.instances]) if n else np.zeros((0, 4, 4))
        inst_obj = np.array([i.obj for i in sc.instances], np.int64)
        lights, ambient, shadowed = frame_lights(sc)
        if not self.settings.shadows:
            shadowed = []
        row = {k: r for r, k in enumerate(shadowed)}
        up = traffic.up
        shading = [geo.segs, geo.uv, geo.col, *self.shading.materials(sc, self.reader.materials.textures, up),
                   *self.shading.lights(lights, [row.get(k, -1) for k in range(len(lights))], up),
                   wp.vec3(*ambient), wp.vec3(*sc.ambient)]
        shadows = shadow_tables(sc.instances, l2w, [lights[k] for k in shadowed], up)
        traffic.send()
        tm["tables"], t = _lap(t)
        return PreparedFrame(frame, sc, geo, l2w, inst_obj, set(annotators), shading, shadows, traffic, tm)

    def execute(self, job: PreparedFrame) -> FrameData:
        """The second half of :meth:`render`: the image passes and labels of a prepared frame (no stage access).
        On CUDA it waits for the device once, for everything the frame reads back (images, counts, boxes); on the
        CPU also once midway, to size the raster launch (``PrimaryPass.one_wait``). Several frames may run at
        once: every buffer is the frame's own."""
        try:
            return self._execute(job)
        finally:
            job.traffic.close()

    def _execute(self, job: PreparedFrame, exact: bool = False) -> FrameData:
        tm, t = dict(job.timings), time.perf_counter()
        sc, cam, geo, annotators = job.scene, job.scene.camera, job.geometry, job.annotators
        raster = self.primary.run(geo, cam, job.l2w, job.inst_obj, len(sc.objects), job.traffic, exact=exact)
        tm["raster"], t = _lap(t)
        want = sum(f for name, f in _WANT.items() if name in annotators)
        inst_sem = np.array([sc.objects[o].class_id if o >= 0 else 0 for o in job.inst_obj], np.int64)
        px = self.pixels.run(raster, geo.tri_inst, geo.tri_hull, job.inst_obj + 1, inst_sem, cam.cam_to_world, want,
                             job.shading, job.shadows, self.settings.shadow_bias, len(sc.objects), job.traffic)
        tm["pixels"], t = _lap(t)
        layers = {name: px[key] for name, key in (("depth", "depth"), ("normals", "normals"),
                                                  ("instance_segmentation", "ids"), ("semantic_segmentation", "sem"),
                                                  ("rgb", "rgb")) if name in annotators}
        loose = queue_loose_boxes(sc, geo, raster.inst_obj, job.traffic)
        got = job.traffic.fetch({**layers, "counts": px["counts"], "tight_lo": px["tight_lo"],
                                 "tight_hi": px["tight_hi"], "unoccluded": raster.unoccluded,
                                 **{f"loose_{k}": v for k, v in loose.items()}, **raster.checks}, lend=True)
        if raster.checks and not self.primary.accept(raster, got):
            return self._execute(job, exact=True)  # it outgrew the bounds the launches were sized from
        tm["readback"], t = _lap(t)
        frame = job.frame
        for name in layers:
            setattr(frame, name, got[name])
        counts = got["counts"].sum(0).astype(np.int64)
        tight = np.concatenate([got["tight_lo"].min(0), got["tight_hi"].max(0)], axis=1).astype(np.int64)
        frame.unlabeled_pixel_count = int(counts[0])
        frame.extra["unknown_classes"] = list(sc.unknown_classes)
        frame.objects.extend(object_labels(sc, counts, tight, got["unoccluded"].astype(np.int64),
                                           {k: got[f"loose_{k}"] for k in loose}))
        tm["labels"], t = _lap(t)
        tm["total"] = sum(tm.values())
        self.last_timings = tm
        return frame


@dataclass
class PreparedFrame:
    """A frame read from the stage with its tables built (:meth:`RasterBackend.prepare`), awaiting its passes."""

    frame: FrameData  #: camera set; images and labels come from ``execute``
    scene: RenderScene
    geometry: DeviceGeometry
    l2w: np.ndarray  #: (n, 4, 4) per instance
    inst_obj: np.ndarray  #: (n,) object index per instance, -1 unlabelled
    annotators: set[str]
    shading: list
    shadows: list
    traffic: FrameTraffic  #: its uploaded tables; released by ``execute``
    timings: dict[str, float]  #: ms per stage so far


def _check(resolution: tuple[int, int]) -> None:
    if int(resolution[0]) < 1 or int(resolution[1]) < 1:
        raise ValueError(f"resolution must be (W, H) with W, H >= 1, got {resolution!r}")


def _lap(t: float) -> tuple[float, float]:
    now = time.perf_counter()
    return (now - t) * 1000.0, now
