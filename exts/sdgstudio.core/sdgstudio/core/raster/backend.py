"""RasterBackend: renders any USD stage with Warp ray casting into a :class:`~sdgstudio.core.frame.FrameData`.

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
Blinn-Phong lobe ``F0 (s + 2) / 8 (n.h)**s E_l vis_l max(0, n.l)`` with ``s = 2 / max(roughness, 0.05)**4 - 2``,
``F0 = 0.04 (1 - metallic) + albedo * metallic``, plus ``(albedo (1 - metallic) + F0 / 4) * ambient``; clamped to
[0, 1] and sRGB-encoded (65536-entry table) to uint8, all in a Warp kernel.
Albedo: the material's texture (bilinear, UsdUVTexture wrap; textures are sRGB-decoded unless
``sourceColorSpace = raw``) or diffuse colour, else displayColor, else 0.5. Normals are geometric (flat shading).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import warp as wp
from pxr import Usd

from ..frame import CameraData, FrameData, ObjectLabel
from .kernels import primary_kernel, shade_kernel, shadow_kernel
from .scene import Light, RenderScene, SceneReader


@dataclass
class RasterSettings:
    """Options of the raster backend."""

    device: str = "cpu"  #: Warp device: "cpu" or "cuda" / "cuda:N"
    segments: int = 96  #: tessellation segments around curved implicit prims (spheres get segments // 2 rings)
    shadows: bool = True  #: cast shadow rays for distant / point-like lights
    shadow_bias: float = 1.0e-4  #: meters; shadow-ray origin offset along the normal
    cache_max_age: int = 64  #: renders an unused cached mesh / texture survives
    quiet: bool = True  #: set ``wp.config.quiet`` (no Warp banner / module-load lines on stdout)


class RasterBackend:
    """Embedded ray-casting renderer; reads everything from the stage (see module docstring)."""

    def __init__(self, class_names: list[str], settings: RasterSettings | None = None) -> None:
        self.class_names = list(class_names)
        self.settings = settings or RasterSettings()
        if self.settings.quiet:
            wp.config.quiet = True
        wp.init()
        self.device = wp.get_device(self.settings.device)
        self.reader = SceneReader(self.class_names, str(self.device), self.settings.segments,
                                  self.settings.cache_max_age)
        self._buffers: tuple | None = None
        self._atlas: tuple | None = None
        x = np.arange(256) / 255.0
        self._lut = wp.array(np.concatenate([np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4), x])
                             .astype(np.float32), dtype=wp.float32, device=self.device)
        y = np.arange(65536) / 65535.0
        self._enc = wp.array(np.round(255.0 * np.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055))
                             .astype(np.uint8), dtype=wp.uint8, device=self.device)
        self.last_timings: dict[str, float] = {}  #: ms per stage of the last render

    def close(self) -> None:
        """Drop cached meshes and textures."""
        self.reader = SceneReader(self.class_names, str(self.device), self.settings.segments,
                                  self.settings.cache_max_age)
        self._buffers = self._atlas = None

    def render(self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int], annotators: set[str],
               frame_index: int) -> FrameData:
        """Render one frame of ``stage`` seen from ``camera_path`` at ``resolution`` = (W, H) pixels.

        Only the requested image layers are set; labels (``objects``) are always filled.
        """
        if int(resolution[0]) < 1 or int(resolution[1]) < 1:
            raise ValueError(f"resolution must be (W, H) with W, H >= 1, got {resolution!r}")
        tm, t = {}, time.perf_counter()
        sc = self.reader.read(stage, camera_path, resolution)
        tm["scene"], t = _lap(t)
        cam = sc.camera
        frame = FrameData(index=frame_index, camera=CameraData(cam.width, cam.height, cam.K.copy(),
                                                               cam.cam_to_world.copy(), cam.prim_path, cam.near,
                                                               cam.far))
        dev = self.device
        n = len(sc.instances)
        w2l = np.stack([np.linalg.inv(i.local_to_world) for i in sc.instances]) if n else np.zeros((0, 4, 4))
        lo = np.array([i.entry.lo for i in sc.instances]).reshape(-1, 3)
        hi = np.array([i.entry.hi for i in sc.instances]).reshape(-1, 3)
        pad = 1.0e-4 * (hi - lo).max(1, initial=0.0)[:, None] + 1.0e-6
        geo = (wp.array(np.array([i.entry.mesh.id for i in sc.instances], np.uint64), dtype=wp.uint64, device=dev),
               wp.array(w2l.astype(np.float32), dtype=wp.mat44, device=dev),
               wp.array((lo - pad).astype(np.float32), dtype=wp.vec3, device=dev),
               wp.array((hi + pad).astype(np.float32), dtype=wp.vec3, device=dev))
        W, H = cam.width, cam.height
        out = [wp.empty((H, W), dtype=d, device=dev) for d in (wp.float32, wp.int32, wp.int32, wp.float32,
                                                               wp.float32, wp.vec3, wp.vec3)]
        unocc = wp.zeros(len(sc.objects), dtype=wp.int32, device=dev)
        K, R = cam.K, cam.cam_to_world[:3, :3]
        inst_obj = wp.array(np.array([i.obj for i in sc.instances], np.int32), dtype=wp.int32, device=dev)
        wp.launch(primary_kernel, dim=(H, W), device=dev,
                  inputs=[wp.vec3(*cam.cam_to_world[:3, 3]), wp.mat33(*R.ravel()), K[0, 0], K[1, 1], K[0, 2],
                          K[1, 2], cam.near, cam.far, *geo, inst_obj],
                  outputs=[*out, unocc])
        inst = out[1].numpy()  # host copies only of what is needed (zero-copy views on the CPU)
        unoccluded = unocc.numpy().astype(np.int64)
        tm["primary"], t = _lap(t)
        hit = inst >= 0
        if "depth" in annotators:
            frame.depth = out[0].numpy().copy()
        if "normals" in annotators:
            frame.normals = out[6].numpy().copy()
        if "rgb" in annotators:
            lights, ambient, shadowed = self._lights(sc)
            if not self.settings.shadows:
                shadowed = []
            vis = wp.empty((max(len(shadowed), 1), H, W), dtype=wp.float32, device=dev)
            if shadowed:
                wp.launch(shadow_kernel, dim=(H, W), device=dev, inputs=[
                    out[1], out[5], out[6], wp.array(np.array([lights[k].kind for k in shadowed], np.int32),
                                                     dtype=wp.int32, device=dev),
                    wp.array(np.array([lights[k].vec for k in shadowed], np.float32), dtype=wp.vec3, device=dev),
                    self.settings.shadow_bias, *geo], outputs=[vis])
                wp.synchronize_device(dev)
            tm["shadow"], t = _lap(t)
            frame.rgb = self._shade(sc, lights, ambient, vis, shadowed, out)
            tm["shading"], t = _lap(t)
        self._labels(sc, frame, inst, hit, unoccluded, annotators)
        tm["labels"], t = _lap(t)
        tm["total"] = sum(tm.values())
        self.last_timings = tm
        return frame

    # ------------------------------------------------------------------ shading
    @staticmethod
    def _lights(sc: RenderScene) -> tuple[list[Light], np.ndarray, list[int]]:
        lights, ambient = list(sc.lights), sc.ambient.copy()
        shadowed = list(range(len(lights)))
        if not lights and not ambient.any():
            lights = [Light(0, np.full(3, 0.9), -sc.camera.cam_to_world[:3, 2])]
            ambient, shadowed = np.full(3, 0.1), []
        return lights, ambient, shadowed

    def _scene_buffers(self, sc: RenderScene) -> tuple:
        """Device arrays of all instances' per-corner uv / colour and per-triangle segment ids (cached by keys)."""
        key = tuple(i.key for i in sc.instances)
        if self._buffers is None or self._buffers[0] != key:
            dev = self.device
            ntri = np.array([len(i.entry.tris) for i in sc.instances], np.int64)
            nseg = np.array([len(i.entry.seg_tris) for i in sc.instances], np.int64)
            seg_off = np.cumsum(nseg) - nseg
            segs = np.concatenate([np.repeat(np.arange(len(i.entry.seg_tris)) + o, i.entry.seg_tris)
                                   for i, o in zip(sc.instances, seg_off, strict=True)] or [np.zeros(1, np.int64)])
            uv = np.concatenate([i.uv for i in sc.instances] or [np.zeros((3, 2), np.float32)])
            col = np.concatenate([i.color for i in sc.instances] or [np.zeros((3, 3), np.float32)])
            self._buffers = (key, wp.array(np.concatenate([[0], np.cumsum(ntri)]).astype(np.int32), dtype=wp.int32,
                                           device=dev),
                             wp.array(segs.astype(np.int32), dtype=wp.int32, device=dev),
                             wp.array(uv, dtype=wp.vec2, device=dev), wp.array(col, dtype=wp.vec3, device=dev))
        return self._buffers[1:]

    def _texture_atlas(self) -> tuple[wp.array, dict[str, int]]:
        """All cached textures in one uint8 device array (rebuilt only when the texture cache changes)."""
        cache = self.reader.materials.textures.data
        key = tuple(sorted(k for k, v in cache.items() if v[0] is not None))
        if self._atlas is None or self._atlas[0] != key:
            offsets, parts, n = {}, [np.zeros(3, np.uint8)], 3
            for k in key:
                offsets[k] = n
                parts.append(cache[k][0].ravel())
                n += parts[-1].size
            self._atlas = (key, wp.array(np.concatenate(parts), dtype=wp.uint8, device=self.device), offsets)
        return self._atlas[1], self._atlas[2]

    def _shade(self, sc: RenderScene, lights: list[Light], ambient: np.ndarray, vis, shadowed: list[int],
               out: list) -> np.ndarray:
        dev = self.device
        H, W = sc.camera.height, sc.camera.width
        tri_off, tri_seg, corner_uv, corner_col = self._scene_buffers(sc)
        atlas, offsets = self._texture_atlas()
        mats = sc.materials
        mode = [2 if m.texture is not None else 1 if m.color is not None else 0 for m in mats]
        tex = [(offsets.get(m.texture_key, 0), *(m.texture.shape[1::-1] if m.texture is not None else (1, 1)),
                int(m.repeat[0]) | 2 * int(m.repeat[1]) | 4 * int(not m.srgb)) for m in mats]

        def arr(values, dtype, np_dtype=np.float32):
            return wp.array(np.asarray(values, np_dtype), dtype=dtype, device=dev)

        seg_mat = [m for i in sc.instances for m in i.seg_materials] or [0]
        row = {k: r for r, k in enumerate(shadowed)}
        rgb = wp.empty((H, W, 3), dtype=wp.uint8, device=dev)
        wp.launch(shade_kernel, dim=(H, W), device=dev, inputs=[
            *out[1:7], vis, arr([row.get(k, -1) for k in range(len(lights))] or [0], wp.int32, np.int32),
            tri_off, tri_seg, arr(seg_mat, wp.int32, np.int32), corner_uv, corner_col,
            arr(mode, wp.int32, np.int32),
            arr([m.color if m.color is not None else np.zeros(3) for m in mats], wp.vec3),
            arr([m.tex_scale for m in mats], wp.vec3), arr([m.tex_bias for m in mats], wp.vec3),
            arr([(m.roughness, m.metallic) for m in mats], wp.vec2), arr(tex, wp.vec4i, np.int32), atlas,
            self._lut, self._enc, arr([lt.kind for lt in lights], wp.int32, np.int32),
            arr([lt.vec for lt in lights], wp.vec3), arr([lt.axis for lt in lights], wp.vec3),
            arr([lt.rgb for lt in lights], wp.vec3),
            arr([(lt.radius**2, lt.diffuse, lt.specular) for lt in lights], wp.vec3),
            wp.vec3(*sc.camera.cam_to_world[:3, 3]), wp.vec3(*ambient), wp.vec3(*sc.ambient)], outputs=[rgb])
        return rgb.numpy()

    # ------------------------------------------------------------------ labels
    def _labels(self, sc: RenderScene, frame: FrameData, inst: np.ndarray, hit: np.ndarray, unoccluded: np.ndarray,
                annotators: set[str]) -> None:
        H, W = inst.shape
        N = len(sc.objects)
        to_id = np.zeros(len(sc.instances) + 1, np.uint32)
        to_sem = np.zeros(len(sc.instances) + 1, np.uint16)
        for k, o in enumerate(sc.objects):
            to_id[o.instance + 1], to_sem[o.instance + 1] = k + 1, o.class_id
        ids = to_id[inst + 1]
        if "instance_segmentation" in annotators:
            frame.instance_segmentation = ids
        if "semantic_segmentation" in annotators:
            frame.semantic_segmentation = to_sem[inst + 1]
        frame.unlabeled_pixel_count = int(np.count_nonzero(hit & (ids == 0)))
        frame.extra["unknown_classes"] = list(sc.unknown_classes)
        ids64 = ids.astype(np.int64)
        counts = np.bincount(ids64.ravel(), minlength=N + 1)
        cols = np.bincount((ids64 * W + np.arange(W)).ravel(), minlength=(N + 1) * W).reshape(N + 1, W) > 0
        rows = np.bincount((ids64 * H + np.arange(H)[:, None]).ravel(), minlength=(N + 1) * H).reshape(N + 1, H) > 0
        x0, x1 = cols.argmax(1), W - cols[:, ::-1].argmax(1)
        y0, y1 = rows.argmax(1), H - rows[:, ::-1].argmax(1)
        cam = sc.camera
        w2c = np.linalg.inv(cam.cam_to_world)
        for k, o in enumerate(sc.objects):
            ins = sc.instances[o.instance]
            l2w = ins.local_to_world
            scale = np.linalg.norm(l2w[:3, :3], axis=0)
            u_, _, vt = np.linalg.svd(l2w[:3, :3] / np.where(scale > 0, scale, 1.0))
            pose = np.eye(4)
            pose[:3, :3], pose[:3, 3] = u_ @ vt, l2w[:3, 3]
            loose, trunc = _loose_box(ins.entry.points, ins.entry.tris, w2c @ l2w, cam.K, cam.near, W, H)
            pc, uc = int(counts[k + 1]), int(unoccluded[k])
            frame.objects.append(ObjectLabel(
                instance_id=k + 1, prim_path=o.path, class_name=o.class_name, class_id=o.class_id, pixel_count=pc,
                unoccluded_pixel_count=uc, visible_fraction=pc / uc if uc else 0.0, truncation=trunc,
                bbox_2d_tight=(float(x0[k + 1]), float(y0[k + 1]), float(x1[k + 1]), float(y1[k + 1])) if pc else None,
                bbox_2d_loose=loose,
                bbox_3d_extents=(tuple(float(x) for x in ins.entry.lo), tuple(float(x) for x in ins.entry.hi)),
                local_to_world=l2w.copy(), pose_in_camera=w2c @ pose, scale=tuple(float(s) for s in scale),
                is_target=o.is_target))


def _lap(t: float) -> tuple[float, float]:
    now = time.perf_counter()
    return (now - t) * 1000.0, now


def _loose_box(points: np.ndarray, tris: np.ndarray, obj_to_cam: np.ndarray, K: np.ndarray, near: float, W: int,
               H: int) -> tuple[tuple[float, float, float, float] | None, float]:
    """Projected extent of all vertices, clipped to the image, and the truncation.

    Geometry behind the near plane is clipped away: the vertices in front plus the points where triangle edges
    cross the near plane are projected. Nothing in front -> (None, 1.0).
    """
    pc = points @ obj_to_cam[:3, :3].T + obj_to_cam[:3, 3]
    front = pc[:, 2] >= near
    if not front.all():
        a = pc[tris.ravel()]
        b = pc[np.roll(tris, -1, axis=1).ravel()]
        cross = (a[:, 2] >= near) != (b[:, 2] >= near)
        a, b = a[cross], b[cross]
        s = ((near - a[:, 2]) / (b[:, 2] - a[:, 2]))[:, None]
        pc = np.concatenate([pc[front], a + s * (b - a)])
    if len(pc) == 0:
        return None, 1.0
    uv = pc[:, :2] / pc[:, 2:3] * np.diag(K)[:2] + K[:2, 2]
    (u0, v0), (u1, v1) = uv.min(0), uv.max(0)
    cu0, cv0, cu1, cv1 = max(u0, 0.0), max(v0, 0.0), min(u1, float(W)), min(v1, float(H))
    if cu1 <= cu0 or cv1 <= cv0:
        return None, 1.0
    area = (u1 - u0) * (v1 - v0)
    trunc = 1.0 - (cu1 - cu0) * (cv1 - cv0) / area if area > 0 else 0.0
    return (float(cu0), float(cv0), float(cu1), float(cv1)), float(max(trunc, 0.0))
