"""Warp kernels of the raster backend: primary rays (closest hit + unoccluded coverage) and shadow rays.

Every instance is a ``wp.Mesh`` in its own local frame with a world->local 4x4 (column-vector) transform. A world
ray ``o + t d`` (``d`` unit) maps to ``w2l o + t (w2l d)``; ``wp.mesh_query_ray`` measures ``t`` in multiples of the
direction's length, so ``t`` stays in world units in every instance, and closest hits compare directly.
"""

from __future__ import annotations

import warp as wp

_BIG = 1.0e30


@wp.func
def ray_box(o: wp.vec3, d: wp.vec3, lo: wp.vec3, hi: wp.vec3, tmax: float) -> bool:
    """Slab test of the ray segment ``[0, tmax]`` against the box ``[lo, hi]`` (d need not be normalized)."""
    t0 = wp.float32(0.0)
    t1 = tmax
    for a in range(3):
        inv = wp.where(wp.abs(d[a]) > 1.0e-30, 1.0 / d[a], _BIG)
        ta = (lo[a] - o[a]) * inv
        tb = (hi[a] - o[a]) * inv
        t0 = wp.max(t0, wp.min(ta, tb))
        t1 = wp.min(t1, wp.max(ta, tb))
    return t0 <= t1


@wp.kernel
def primary_kernel(
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
    depth: wp.array2d(dtype=wp.float32),
    hit_inst: wp.array2d(dtype=wp.int32),
    hit_face: wp.array2d(dtype=wp.int32),
    hit_u: wp.array2d(dtype=wp.float32),
    hit_v: wp.array2d(dtype=wp.float32),
    hit_pos: wp.array2d(dtype=wp.vec3),
    hit_nrm: wp.array2d(dtype=wp.vec3),
    unoccluded: wp.array(dtype=wp.int32),
):
    """One ray per pixel centre, starting on the near plane and ending on the far plane.

    Closest hit over all instances; every labelled object (``inst_obj >= 0``) hit anywhere on the ray counts the
    pixel in ``unoccluded[obj]``. Outputs: depth (OpenCV z, inf = no hit), instance index (-1 = none), face,
    barycentrics (p = u p0 + v p1 + (1-u-v) p2), world hit point, world unit normal facing the camera.
    """
    i, j = wp.tid()
    dc = wp.normalize(wp.vec3((float(j) + 0.5 - cx) / fx, (float(i) + 0.5 - cy) / fy, 1.0))
    dz = dc[2]
    d = cam_rot * dc
    t0 = near / dz
    o = cam_pos + d * t0
    tmax = far / dz - t0
    best = tmax
    best_k = wp.int32(-1)
    face = wp.int32(0)
    bu = wp.float32(0.0)
    bv = wp.float32(0.0)
    nl = wp.vec3(0.0, 0.0, 0.0)
    for k in range(mesh_ids.shape[0]):
        obj = inst_obj[k]
        limit = wp.where(obj >= 0, tmax, best)
        m = w2l[k]
        lo_ = wp.transform_point(m, o)
        ld = wp.transform_vector(m, d)
        if not ray_box(lo_, ld, lo[k], hi[k], limit):
            continue
        q = wp.mesh_query_ray(mesh_ids[k], lo_, ld, limit)
        if q.result:
            if obj >= 0:
                wp.atomic_add(unoccluded, obj, 1)
            if q.t < best:
                best = q.t
                best_k = k
                face = q.face
                bu = q.u
                bv = q.v
                nl = q.normal
    hit_inst[i, j] = best_k
    if best_k < 0:
        depth[i, j] = wp.inf
        hit_face[i, j] = 0
        hit_u[i, j] = 0.0
        hit_v[i, j] = 0.0
        hit_pos[i, j] = wp.vec3(0.0, 0.0, 0.0)
        hit_nrm[i, j] = wp.vec3(0.0, 0.0, 0.0)
        return
    n = wp.normalize(wp.transform_vector(wp.transpose(w2l[best_k]), nl))
    if wp.dot(n, d) > 0.0:
        n = -n
    depth[i, j] = near + best * dz
    hit_face[i, j] = face
    hit_u[i, j] = bu
    hit_v[i, j] = bv
    hit_pos[i, j] = o + d * best
    hit_nrm[i, j] = n


@wp.kernel
def shadow_kernel(
    hit_inst: wp.array2d(dtype=wp.int32),
    hit_pos: wp.array2d(dtype=wp.vec3),
    hit_nrm: wp.array2d(dtype=wp.vec3),
    light_kind: wp.array(dtype=wp.int32),
    light_vec: wp.array(dtype=wp.vec3),
    bias: float,
    mesh_ids: wp.array(dtype=wp.uint64),
    w2l: wp.array(dtype=wp.mat44),
    lo: wp.array(dtype=wp.vec3),
    hi: wp.array(dtype=wp.vec3),
    visible: wp.array3d(dtype=wp.float32),
):
    """``visible[l, i, j]`` = 1 when light ``l`` reaches the pixel's hit point, else 0 (also when n.l <= 0).

    Distant lights (kind 0): ``light_vec`` is the unit direction towards the light, rays are 1e7 long. Other
    lights: ``light_vec`` is the position (area lights are points at their centre for shadows). Rays start at
    ``p + n * (bias + 1e-6 |p|)`` and any-hit test every instance.
    """
    i, j = wp.tid()
    for li in range(light_kind.shape[0]):
        visible[li, i, j] = 0.0
        if hit_inst[i, j] < 0:
            continue
        p = hit_pos[i, j]
        n = hit_nrm[i, j]
        ldir = light_vec[li]
        maxd = wp.float32(1.0e7)
        if light_kind[li] != 0:
            delta = light_vec[li] - p
            maxd = wp.length(delta)
            ldir = delta / wp.max(maxd, 1.0e-20)
            maxd = maxd * (1.0 - 1.0e-5)
        if wp.dot(n, ldir) <= 0.0:
            continue
        o = p + n * (bias + 1.0e-6 * wp.length(p))
        blocked = wp.int32(0)
        for k in range(mesh_ids.shape[0]):
            m = w2l[k]
            lo_ = wp.transform_point(m, o)
            ld = wp.transform_vector(m, ldir)
            if ray_box(lo_, ld, lo[k], hi[k], maxd):
                if wp.mesh_query_ray_anyhit(mesh_ids[k], lo_, ld, maxd):
                    blocked = 1
                    break
        if blocked == 0:
            visible[li, i, j] = 1.0


@wp.func
def _srgb_u8(enc: wp.array(dtype=wp.uint8), c: float) -> wp.uint8:
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
def _sample(tex: wp.array(dtype=wp.uint8), lut: wp.array(dtype=wp.float32), info: wp.vec4i, uv: wp.vec2) -> wp.vec3:
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


@wp.kernel
def shade_kernel(
    hit_inst: wp.array2d(dtype=wp.int32),
    hit_face: wp.array2d(dtype=wp.int32),
    hit_u: wp.array2d(dtype=wp.float32),
    hit_v: wp.array2d(dtype=wp.float32),
    hit_pos: wp.array2d(dtype=wp.vec3),
    hit_nrm: wp.array2d(dtype=wp.vec3),
    visible: wp.array3d(dtype=wp.float32),
    shadowed: wp.array(dtype=wp.int32),  # per light: row of `visible`, or -1 = always visible
    tri_off: wp.array(dtype=wp.int32),
    tri_seg: wp.array(dtype=wp.int32),
    seg_mat: wp.array(dtype=wp.int32),
    corner_uv: wp.array(dtype=wp.vec2),
    corner_col: wp.array(dtype=wp.vec3),
    mat_mode: wp.array(dtype=wp.int32),  # 0 displayColor, 1 constant colour, 2 texture
    mat_color: wp.array(dtype=wp.vec3),
    mat_scale: wp.array(dtype=wp.vec3),
    mat_bias: wp.array(dtype=wp.vec3),
    mat_pbr: wp.array(dtype=wp.vec2),  # roughness, metallic
    mat_tex: wp.array(dtype=wp.vec4i),
    tex: wp.array(dtype=wp.uint8),
    lut: wp.array(dtype=wp.float32),  # 0..255: sRGB -> linear, 256..511: raw / 255
    enc: wp.array(dtype=wp.uint8),  # linear -> sRGB uint8, 65536 entries
    l_kind: wp.array(dtype=wp.int32),
    l_vec: wp.array(dtype=wp.vec3),
    l_axis: wp.array(dtype=wp.vec3),
    l_rgb: wp.array(dtype=wp.vec3),
    l_par: wp.array(dtype=wp.vec3),  # radius**2, diffuse multiplier, specular multiplier
    cam_pos: wp.vec3,
    ambient: wp.vec3,
    background: wp.vec3,
    rgb: wp.array3d(dtype=wp.uint8),
):
    """Shades every pixel (see the backend module docstring for the model) and sRGB-encodes it to uint8."""
    i, j = wp.tid()
    c = background
    k = hit_inst[i, j]
    if k >= 0:
        g = tri_off[k] + hit_face[i, j]
        bu = hit_u[i, j]
        bv = hit_v[i, j]
        bw = 1.0 - bu - bv
        m = seg_mat[tri_seg[g]]
        mode = mat_mode[m]
        albedo = corner_col[3 * g] * bu + corner_col[3 * g + 1] * bv + corner_col[3 * g + 2] * bw
        if mode == 1:
            albedo = mat_color[m]
        elif mode == 2:
            uv = corner_uv[3 * g] * bu + corner_uv[3 * g + 1] * bv + corner_uv[3 * g + 2] * bw
            albedo = wp.cw_mul(_sample(tex, lut, mat_tex[m], uv), mat_scale[m]) + mat_bias[m]
        albedo = wp.max(albedo, wp.vec3(0.0))
        rough = mat_pbr[m][0]
        metal = mat_pbr[m][1]
        diffuse = albedo * (1.0 - metal)
        f0 = wp.vec3(0.04 * (1.0 - metal)) + albedo * metal
        shin = 2.0 / wp.pow(wp.max(rough, 0.05), 4.0) - 2.0
        p = hit_pos[i, j]
        n = hit_nrm[i, j]
        view = wp.normalize(cam_pos - p)
        acc = wp.cw_mul(diffuse + f0 * 0.25, ambient)
        for li in range(l_kind.shape[0]):
            ldir = l_vec[li]
            e = l_rgb[li]
            if l_kind[li] != 0:
                delta = l_vec[li] - p
                d2 = wp.max(wp.dot(delta, delta), l_par[li][0] + 1.0e-12)
                ldir = delta / wp.sqrt(d2)
                e = e / d2
                if l_kind[li] == 2:
                    e = e * wp.max(0.0, -wp.dot(ldir, l_axis[li]))
            ndl = wp.max(0.0, wp.dot(n, ldir))
            row = shadowed[li]
            if row >= 0:
                ndl = ndl * visible[row, i, j]
            if ndl > 0.0:
                ndh = wp.max(0.0, wp.dot(n, wp.normalize(ldir + view)))
                spec = f0 * ((shin + 2.0) / 8.0 * wp.pow(ndh, shin))
                acc = acc + wp.cw_mul(e, diffuse * l_par[li][1] + spec * l_par[li][2]) * ndl
        c = acc
    rgb[i, j, 0] = _srgb_u8(enc, c[0])
    rgb[i, j, 1] = _srgb_u8(enc, c[1])
    rgb[i, j, 2] = _srgb_u8(enc, c[2])
