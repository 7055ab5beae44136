"""Shading inputs on the device (materials, textures, per-corner colours and UVs, lights) and the Warp functions
that sample textures and encode sRGB. The shading model itself is documented in ``backend.py``."""

from __future__ import annotations

import numpy as np
import warp as wp

from .materials import Cache, Light
from .scene import RenderScene

wp.set_module_options({"fuse_fp": False, "enable_backward": False})

#: Specular lobes below this (after the normalization factor) are skipped: invisible after 8-bit encoding.
SPEC_FLOOR = 1.0e-7
#: Entries of each material's table of the lobe ``(s + 2) / 8 (n.h)**s`` over n.h in [start, 1] (linearly
#: interpolated: under 1e-3 relative error, far below 8-bit steps; a table lookup costs a fraction of ``pow``).
SPEC_TABLE = 256


@wp.func
def srgb_u8(enc: wp.array(dtype=wp.uint8), c: float) -> wp.uint8:
    """Linear [0, 1] (clamped) -> sRGB uint8 through a 65536-entry table."""
    return enc[int(wp.clamp(c, 0.0, 1.0) * 65535.0 + 0.5)]


@wp.func
def _wrap(i: float, n: int, repeat: int) -> int:
    fn = float(n)
    if repeat != 0:
        return int(i - wp.floor(i / fn) * fn)
    return int(wp.clamp(i, 0.0, fn - 1.0))


@wp.func
def _texel(tex: wp.array(dtype=wp.uint8), lut: wp.array(dtype=wp.float32), base: int, w: int, x: int, y: int,
           lut_off: int) -> wp.vec3:
    k = base + (y * w + x) * 3
    return wp.vec3(lut[lut_off + int(tex[k])], lut[lut_off + int(tex[k + 1])], lut[lut_off + int(tex[k + 2])])


@wp.func
def sample_texture(tex: wp.array(dtype=wp.uint8), lut: wp.array(dtype=wp.float32), info: wp.vec4i,
                   uv: wp.vec2) -> wp.vec3:
    """Bilinear lookup; info = (byte offset, width, height, flags: 1 repeat s, 2 repeat t, 4 raw); st (0, 0) is
    the image's bottom-left corner."""
    w = info[1]
    h = info[2]
    x = uv[0] * float(w) - 0.5
    y = (1.0 - uv[1]) * float(h) - 0.5
    x0 = wp.floor(x)
    y0 = wp.floor(y)
    fx = x - x0
    fy = y - y0
    xa = _wrap(x0, w, info[3] & 1)
    xb = _wrap(x0 + 1.0, w, info[3] & 1)
    ya = _wrap(y0, h, info[3] & 2)
    yb = _wrap(y0 + 1.0, h, info[3] & 2)
    lo = wp.where((info[3] & 4) != 0, 256, 0)
    top = _texel(tex, lut, info[0], w, xa, ya, lo) * (1.0 - fx) + _texel(tex, lut, info[0], w, xb, ya, lo) * fx
    bot = _texel(tex, lut, info[0], w, xa, yb, lo) * (1.0 - fx) + _texel(tex, lut, info[0], w, xb, yb, lo) * fx
    return top * (1.0 - fy) + bot * fy


def frame_lights(sc: RenderScene) -> tuple[list[Light], np.ndarray, list[int]]:
    """The lights that shade this frame, the ambient irradiance and which lights cast shadows; no light at all
    gives a headlight along the view direction (no shadows) plus a little ambient."""
    lights, ambient = list(sc.lights), sc.ambient.copy()
    shadowed = list(range(len(lights)))
    if not lights and not ambient.any():
        lights = [Light(0, np.full(3, 0.9), -sc.camera.cam_to_world[:3, 2])]
        ambient, shadowed = np.full(3, 0.1), []
    return lights, ambient, shadowed


class ShadingTables:
    """Builds the device arrays the pixel kernel shades with; geometry-sized ones are cached by instance keys."""

    def __init__(self, device: wp.context.Device) -> None:
        self.device = device
        self._atlas: tuple | None = None
        x = np.arange(256) / 255.0
        self.lut = self._arr(np.concatenate([np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4), x]),
                             wp.float32)
        y = np.arange(65536) / 65535.0
        self.enc = self._arr(np.round(255.0 * np.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055)),
                             wp.uint8, np.uint8)

    def _arr(self, values, dtype, np_dtype=np.float32) -> wp.array:
        return wp.array(np.asarray(values, np_dtype), dtype=dtype, device=self.device)

    def atlas(self, textures: Cache) -> tuple[wp.array, dict[str, int]]:
        """All cached textures in one uint8 device array (rebuilt only when the texture cache changes)."""
        key = tuple(sorted(k for k, v in textures.data.items() if v[0] is not None))
        if self._atlas is None or self._atlas[0] != key:
            offsets, parts, n = {}, [np.zeros(3, np.uint8)], 3
            for k in key:
                offsets[k] = n
                parts.append(textures.data[k][0].ravel())
                n += parts[-1].size
            self._atlas = (key, self._arr(np.concatenate(parts), wp.uint8, np.uint8), offsets)
        return self._atlas[1], self._atlas[2]

    def materials(self, sc: RenderScene, textures: Cache, up) -> list[wp.array]:
        """seg_mat, mode (0 displayColor, 1 colour, 2 texture), colour, texture scale, bias, (roughness,
        metallic, n.h below which the lobe is < SPEC_FLOOR, table entries per unit n.h), the lobe tables
        (materials x SPEC_TABLE), texture info, atlas, LUTs."""
        atlas, offsets = self.atlas(textures)
        mats = sc.materials
        mode = [2 if m.texture is not None else 1 if m.color is not None else 0 for m in mats]
        tex = [(offsets.get(m.texture_key, 0), *(m.texture.shape[1::-1] if m.texture is not None else (1, 1)),
                int(m.repeat[0]) | 2 * int(m.repeat[1]) | 4 * int(not m.srgb)) for m in mats]
        rough = np.array([m.roughness for m in mats], np.float64)
        shin = 2.0 / np.maximum(rough, 0.05) ** 4 - 2.0
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            start = np.where(shin > 0, (SPEC_FLOOR * 8.0 / (shin + 2.0)) ** (1.0 / np.maximum(shin, 1e-30)), 0.0)
            x = start[:, None] + (1.0 - start[:, None]) * np.linspace(0.0, 1.0, SPEC_TABLE)[None, :]
            lobe = (shin[:, None] + 2.0) / 8.0 * x ** shin[:, None]
        scale = (SPEC_TABLE - 1) / np.maximum(1.0 - start, 1e-12)
        pbr = np.stack([rough, [m.metallic for m in mats], start, scale], 1)
        seg_mat = [m for i in sc.instances for m in i.seg_materials] or [0]
        return [up(seg_mat, wp.int32), up(mode, wp.int32),
                up([m.color if m.color is not None else np.zeros(3) for m in mats], wp.vec3),
                up([m.tex_scale for m in mats], wp.vec3), up([m.tex_bias for m in mats], wp.vec3),
                up(pbr, wp.vec4), up(lobe.ravel(), wp.float32), up(tex, wp.vec4i), atlas,
                self.lut, self.enc]

    def lights(self, lights: list[Light], shadow_row: list[int], up) -> list[wp.array]:
        """kind, position / direction, axis, E, (radius**2, diffuse, specular), shadow row (-1: unshadowed)."""
        return [up([lt.kind for lt in lights], wp.int32),
                up([lt.vec for lt in lights], wp.vec3),
                up([lt.axis for lt in lights], wp.vec3), up([lt.rgb for lt in lights], wp.vec3),
                up([(lt.radius**2, lt.diffuse, lt.specular) for lt in lights], wp.vec3),
                up(shadow_row, wp.int32)]
