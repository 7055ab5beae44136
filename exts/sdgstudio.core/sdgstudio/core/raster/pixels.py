"""The per-pixel pass: resolve each pixel's winning triangle into depth, normal and ids, cast its shadow rays and
shade it, in one kernel so that per-pixel data is never written to memory between steps.

One thread owns ``chunk`` pixels of a row, ``jb, jb + nb, jb + 2 nb, ...`` (``nb`` threads per row): on the CPU one
thread takes a whole row (Warp copies every array argument into each thread's frame, a cost paid once per row); on
a GPU consecutive threads take consecutive pixels. Per-object pixel counts and tight boxes are accumulated over runs
of equal ids in a thread's pixels, so atomics are few.
"""

from __future__ import annotations

import numpy as np
import warp as wp

from .bands import band_pool
from .shading import SPEC_TABLE, sample_texture, srgb_u8
from .shadows import light_cell, occluded
from .transfer import FrameTraffic

wp.set_module_options({"fuse_fp": False, "enable_backward": False})

WANT_DEPTH, WANT_NORMALS, WANT_IDS, WANT_SEM, WANT_RGB = 1, 2, 4, 8, 16


@wp.func
def _flush(counts: wp.array2d(dtype=wp.int32), tight_lo: wp.array2d(dtype=wp.vec2i),
           tight_hi: wp.array2d(dtype=wp.vec2i), band: int, oid: int, n: int, jmin: int, jmax: int, i: int):
    if oid >= 0 and n > 0:
        wp.atomic_add(counts, band, oid, n)
        if oid > 0:
            wp.atomic_min(tight_lo, band, oid, wp.vec2i(jmin, i))
            wp.atomic_max(tight_hi, band, oid, wp.vec2i(jmax + 1, i + 1))


@wp.kernel
def pixel_kernel(
    zbuf: wp.array2d(dtype=wp.uint64),
    tri_plane: wp.array(dtype=wp.vec4),
    tri_nrm: wp.array(dtype=wp.vec3),
    tri_e0: wp.array(dtype=wp.vec3),
    tri_e1: wp.array(dtype=wp.vec3),
    tri_inst: wp.array(dtype=wp.int32),
    tri_hull: wp.array(dtype=wp.int32),
    inst_id: wp.array(dtype=wp.int32),
    inst_sem: wp.array(dtype=wp.int32),
    ray_x: wp.array(dtype=wp.float32),
    ray_y: wp.array(dtype=wp.float32),
    cam_pos: wp.vec3,
    cam_rot: wp.mat33,  # OpenCV camera -> world rotation
    want: int,
    chunk: int,
    # shading
    tri_seg: wp.array(dtype=wp.int32),
    corner_uv: wp.array(dtype=wp.vec2),
    corner_col: wp.array(dtype=wp.vec3),
    seg_mat: wp.array(dtype=wp.int32),
    mat_mode: wp.array(dtype=wp.int32),  # 0 displayColor, 1 constant colour, 2 texture
    mat_color: wp.array(dtype=wp.vec3),
    mat_scale: wp.array(dtype=wp.vec3),
    mat_bias: wp.array(dtype=wp.vec3),
    mat_pbr: wp.array(dtype=wp.vec4),  # roughness, metallic, lobe table start (n.h), table entries per unit n.h
    mat_lobe: wp.array(dtype=wp.float32),  # per material: SPEC_TABLE samples of (s + 2) / 8 (n.h)**s
    mat_tex: wp.array(dtype=wp.vec4i),
    tex: wp.array(dtype=wp.uint8),
    lut: wp.array(dtype=wp.float32),  # 0..255: sRGB -> linear, 256..511: raw / 255
    enc: wp.array(dtype=wp.uint8),  # linear -> sRGB uint8, 65536 entries
    l_kind: wp.array(dtype=wp.int32),
    l_vec: wp.array(dtype=wp.vec3),
    l_axis: wp.array(dtype=wp.vec3),
    l_rgb: wp.array(dtype=wp.vec3),
    l_par: wp.array(dtype=wp.vec3),  # radius**2, diffuse multiplier, specular multiplier
    l_shadow: wp.array(dtype=wp.int32),  # light -> shadow grid r, -1 = unshadowed
    ambient: wp.vec3,
    background: wp.vec3,
    # shadows (shadows.shadow_tables)
    g_kind: wp.array(dtype=wp.int32),
    g_grid: wp.array(dtype=wp.int32),
    g_vec: wp.array(dtype=wp.vec3),  # per light: direction, e1, e2 (distant) or position (point)
    g_face: wp.array(dtype=wp.vec3),  # per light and cube face: grid origin s, t, cells per unit
    g_face_base: wp.array(dtype=wp.int32),
    cell_start: wp.array(dtype=wp.int32),
    cell_items: wp.array(dtype=wp.int32),
    reach: wp.array(dtype=wp.float32),
    shape: wp.array(dtype=wp.int32),
    centroid: wp.array(dtype=wp.vec3),
    wlo: wp.array(dtype=wp.vec3),
    whi: wp.array(dtype=wp.vec3),
    mesh_ids: wp.array(dtype=wp.uint64),
    w2l: wp.array(dtype=wp.mat44),
    blo: wp.array(dtype=wp.vec3),
    bhi: wp.array(dtype=wp.vec3),
    n_inst: int,
    bias: float,
    # outputs
    depth: wp.array2d(dtype=wp.float32),
    normals: wp.array2d(dtype=wp.vec3),
    ids: wp.array2d(dtype=wp.uint32),
    sem: wp.array2d(dtype=wp.uint16),
    rgb: wp.array3d(dtype=wp.uint8),
    counts: wp.array2d(dtype=wp.int32),  # [band, object id]
    tight_lo: wp.array2d(dtype=wp.vec2i),
    tight_hi: wp.array2d(dtype=wp.vec2i),
    row0: int,
    band: int,
):
    """Depth (camera z, inf = no hit), world unit normal facing the camera (0 = no hit), instance / semantic ids,
    shaded sRGB (see the backend module docstring); per object id (0 = hit but unlabelled) pixel count and tight
    box (half-open). Barycentrics: p = u p0 + v p1 + (1-u-v) p2 of the winning triangle."""
    i, jb = wp.tid()
    i = i + row0
    width = zbuf.shape[1]
    nb = (width + chunk - 1) / chunk
    run_id = wp.int32(-1)
    run_n = wp.int32(0)
    run_lo = wp.int32(0)
    run_hi = wp.int32(0)
    bg = wp.vec3(0.0, 0.0, 0.0)
    if (want & WANT_RGB) != 0:
        bg = background
    for s in range(chunk):
        j = jb + s * nb
        if j >= width:
            break
        key = zbuf[i, j]
        oid = wp.int32(-1)
        z = wp.inf
        nw = wp.vec3(0.0, 0.0, 0.0)
        c = bg
        semv = wp.int32(0)
        if key != wp.uint64(0xFFFFFFFFFFFFFFFF):  # primary.EMPTY: no hit
            g = int(key & wp.uint64(0xFFFFFFFF))
            k = tri_inst[g]
            dx = ray_x[j]
            dy = ray_y[i]
            pl = tri_plane[g]
            den = pl[0] * dx + pl[1] * dy + pl[2]
            z = pl[3] / den
            nw = tri_nrm[g]
            oid = inst_id[k]
            semv = inst_sem[k]
            if (want & WANT_RGB) != 0:
                inv_s = 1.0 / den
                bu = wp.dot(tri_e0[g], wp.vec3(dx, dy, 1.0)) * inv_s
                bv = wp.dot(tri_e1[g], wp.vec3(dx, dy, 1.0)) * inv_s
                bw = 1.0 - bu - bv
                pc = wp.vec3(dx * z, dy * z, z)
                p = cam_pos + cam_rot * pc
                m = seg_mat[tri_seg[g]]
                mode = mat_mode[m]
                albedo = mat_color[m]
                if mode == 0:
                    albedo = corner_col[3 * g] * bu + corner_col[3 * g + 1] * bv + corner_col[3 * g + 2] * bw
                elif mode == 2:
                    uv = corner_uv[3 * g] * bu + corner_uv[3 * g + 1] * bv + corner_uv[3 * g + 2] * bw
                    albedo = wp.cw_mul(sample_texture(tex, lut, mat_tex[m], uv), mat_scale[m]) + mat_bias[m]
                albedo = wp.max(albedo, wp.vec3(0.0))
                pbr = mat_pbr[m]
                metal = pbr[1]
                diffuse = albedo * (1.0 - metal)
                f0 = wp.vec3(0.04 * (1.0 - metal)) + albedo * metal
                view = wp.normalize(cam_pos - p)
                o = p + nw * (bias + 1.0e-6 * wp.length(p))
                acc = wp.cw_mul(diffuse + f0 * 0.25, ambient)
                for li in range(l_kind.shape[0]):
                    kind = l_kind[li]
                    ldir = l_vec[li]
                    e = l_rgb[li]
                    par = l_par[li]
                    if kind != 0:
                        delta = ldir - p
                        d2 = wp.max(wp.dot(delta, delta), par[0] + 1.0e-12)
                        inv_d = 1.0 / wp.sqrt(d2)
                        ldir = delta * inv_d
                        e = e * (inv_d * inv_d)
                        if kind == 2:
                            e = e * wp.max(0.0, -wp.dot(ldir, l_axis[li]))
                    ndl = wp.max(0.0, wp.dot(nw, ldir))
                    r = l_shadow[li]
                    if ndl > 0.0 and r >= 0 and wp.max(wp.max(e[0], e[1]), e[2]) > 0.0:
                        # shadow ray: distant lights 1e7 long, point lights end just before the light
                        sdir = g_vec[3 * r]
                        maxd = wp.float32(1.0e7)
                        level = wp.dot(o, sdir)
                        sign = wp.float32(1.0)
                        if g_kind[r] != 0:
                            delta = sdir - p
                            maxd = wp.length(delta)
                            sdir = delta / wp.max(maxd, 1.0e-20)
                            maxd = maxd * (1.0 - 1.0e-5)
                            level = wp.length(o - g_vec[3 * r])
                            sign = -1.0
                        cell = light_cell(g_kind[r], o, g_vec[3 * r], g_vec[3 * r + 1], g_vec[3 * r + 2], g_grid[r],
                                          g_face, g_face_base, 6 * r)
                        if wp.dot(nw, sdir) <= 0.0:
                            ndl = 0.0
                        elif cell >= 0:
                            if occluded(cell_items, cell_start[cell], cell_start[cell + 1], k, tri_hull[g], reach,
                                        r * n_inst,
                                        level, sign, o, p, nw, sdir, maxd, shape, centroid, wlo, whi, mesh_ids, w2l,
                                        blo, bhi) != 0:
                                ndl = 0.0
                    if ndl > 0.0:
                        h = ldir + view
                        ndh = wp.max(0.0, wp.dot(nw, h) / wp.length(h))
                        lobe = diffuse * par[1]
                        if ndh >= pbr[2]:
                            u = wp.min((ndh - pbr[2]) * pbr[3], float(SPEC_TABLE - 1))
                            t0 = wp.min(int(u), SPEC_TABLE - 2)
                            row0 = m * SPEC_TABLE + t0
                            spec = wp.lerp(mat_lobe[row0], mat_lobe[row0 + 1], u - float(t0))
                            lobe = lobe + f0 * spec * par[2]
                        acc = acc + wp.cw_mul(e, lobe) * ndl
                c = acc
        if (want & WANT_DEPTH) != 0:
            depth[i, j] = z
        if (want & WANT_NORMALS) != 0:
            normals[i, j] = nw
        if (want & WANT_IDS) != 0:
            ids[i, j] = wp.uint32(wp.max(oid, 0))
        if (want & WANT_SEM) != 0:
            sem[i, j] = wp.uint16(semv)
        if (want & WANT_RGB) != 0:
            rgb[i, j, 0] = srgb_u8(enc, c[0])
            rgb[i, j, 1] = srgb_u8(enc, c[1])
            rgb[i, j, 2] = srgb_u8(enc, c[2])
        if oid != run_id:
            _flush(counts, tight_lo, tight_hi, band, run_id, run_n, run_lo, run_hi, i)
            run_id = oid
            run_n = 0
            run_lo = j
            run_hi = j
        run_n += 1
        run_lo = wp.min(run_lo, j)
        run_hi = wp.max(run_hi, j)
    _flush(counts, tight_lo, tight_hi, band, run_id, run_n, run_lo, run_hi, i)


class PixelPass:
    """Launches :func:`pixel_kernel` for one frame, on the CPU as bands of rows in parallel threads."""

    def __init__(self, device: wp.context.Device, threads: int = 1) -> None:
        self.device = device
        self.chunk = 0 if device.is_cpu else 8  #: pixels per thread (0: a whole row, for the CPU)
        self.threads = max(1, threads) if device.is_cpu else 1
        self._pool = band_pool(self.threads)

    def run(self, raster, tri_inst: wp.array, tri_hull: wp.array, inst_id, inst_sem, cam_to_world, want: int,
            shading: list, shadows: list, bias: float, n_objects: int, traffic: FrameTraffic) -> dict[str, wp.array]:
        """``raster``: :class:`primary.Raster`; ``shading``: geometry + material + light arrays + (ambient,
        background); ``shadows``: :func:`shadows.shadow_tables`. Returns the device images and, per band of rows,
        per object id, the pixel counts (``counts``) and tight boxes (``tight_lo``, ``tight_hi``)."""
        dev = self.device
        H, W = raster.zbuf.shape
        chunk = self.chunk or W
        nb = (W + chunk - 1) // chunk

        def img(shape, dtype, flag):  # pooled memory, lent with the images it holds (FrameTraffic.fetch)
            return traffic.scratch(shape if want & flag else (1,) * len(shape), dtype)

        out = [img((H, W), wp.float32, WANT_DEPTH), img((H, W), wp.vec3, WANT_NORMALS),
               img((H, W), wp.uint32, WANT_IDS), img((H, W), wp.uint16, WANT_SEM), img((H, W, 3), wp.uint8, WANT_RGB)]
        # more bands than threads: a thread slowed by other work (the writer) leaves bands to the other
        N, B = n_objects, 1 if self.threads == 1 else 2 * self.threads
        up = traffic.up  # accumulators start as uploaded values (no fill per array)
        counts, tight_lo = up(np.zeros((B, N + 1)), wp.int32), up(np.full((B, N + 1, 2), 1 << 30), wp.vec2i)
        tight_hi = up(np.full((B, N + 1, 2), -1), wp.vec2i)
        R = cam_to_world[:3, :3]
        ids = [up(np.append(inst_id, 0), wp.int32), up(np.append(inst_sem, 0), wp.int32)]
        traffic.send()
        inputs = [raster.zbuf, raster.planes, raster.normals, raster.e0, raster.e1, tri_inst, tri_hull, *ids,
                  raster.ray_x, raster.ray_y, wp.vec3(*cam_to_world[:3, 3]), wp.mat33(*R.ravel()), want, chunk,
                  *shading, *shadows, bias, *out, counts, tight_lo, tight_hi]

        def band(b: int) -> None:
            r0, r1 = b * H // B, (b + 1) * H // B
            if r1 > r0:
                wp.launch(pixel_kernel, dim=(r1 - r0, nb), device=dev, inputs=[*inputs, r0, b])

        if self._pool is None:
            band(0)
        else:
            list(self._pool.map(band, range(B)))
        return dict(zip(("depth", "normals", "ids", "sem", "rgb"), out, strict=True)) | {
            "counts": counts, "tight_lo": tight_lo, "tight_hi": tight_hi}
