"""All instances' triangles of a frame in one set of device arrays, gathered on the device from an atlas of meshes.

Poses change every frame but meshes rarely do: every mesh and appearance the reader has handed out is placed once
in growing device arrays (the *atlas*: vertices, triangles, per-corner uv and colour). When the frame's list of
instances changes (an object shown or hidden, a new asset), two gather kernels copy the listed parts from the atlas
into the frame's concatenated arrays, from a table of a few numbers per instance: no host concatenation, no
re-upload. Each frame then uploads only one 4x4 per instance (``primary.py``). A run shows the same few sets of
objects over and over (the built-in tabletop: 8 sets, a new one 85% of frames), so the last gathers are kept,
by instance list, within ``_KEEP`` sets and ``_KEEP_BYTES``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import warp as wp

from .scene import Instance
from .search import last_at_most
from .transfer import FrameTraffic

__all__ = ["DeviceGeometry"]

wp.set_module_options({"fuse_fp": False, "enable_backward": False})

_COMPACT = 4  #: an atlas holding more than this many times the current frame's rows is rebuilt from the frame
_KEEP, _KEEP_BYTES = 16, 256 << 20  #: gathered instance lists kept: at most this many, in at most this many bytes
_FIELDS = ("n_points", "n_tris", "points", "points64", "vert_inst", "tris", "tri_inst", "tri_hull", "segs", "uv",
           "col")  #: what a gather makes


@wp.kernel
def gather_vertices_kernel(v_off: wp.array(dtype=wp.int32), v_src: wp.array(dtype=wp.int32), n_inst: int,
                           atlas_points: wp.array(dtype=wp.vec3), atlas_points64: wp.array(dtype=wp.vec3d),
                           points: wp.array(dtype=wp.vec3), points64: wp.array(dtype=wp.vec3d),
                           vert_inst: wp.array(dtype=wp.int32), per: int, count: int):
    """Frame vertex ``v`` of instance ``i`` is atlas vertex ``v_src[i] + v - v_off[i]``."""
    tid = wp.tid()
    for v in range(tid * per, wp.min(count, tid * per + per)):
        i = last_at_most(v_off, n_inst, v)
        src = v_src[i] + v - v_off[i]
        points[v] = atlas_points[src]
        points64[v] = atlas_points64[src]
        vert_inst[v] = i


@wp.kernel
def gather_triangles_kernel(t_off: wp.array(dtype=wp.int32), t_src: wp.array(dtype=wp.int32),
                            c_src: wp.array(dtype=wp.int32), v_off: wp.array(dtype=wp.int32),
                            seg_off: wp.array(dtype=wp.int32), n_inst: int, atlas_tris: wp.array(dtype=wp.vec3i),
                            atlas_hull: wp.array(dtype=wp.int32), atlas_seg: wp.array(dtype=wp.int32),
                            atlas_uv: wp.array(dtype=wp.vec2), atlas_col: wp.array(dtype=wp.vec3),
                            tris: wp.array(dtype=wp.vec3i), tri_inst: wp.array(dtype=wp.int32),
                            tri_hull: wp.array(dtype=wp.int32), segs: wp.array(dtype=wp.int32),
                            uv: wp.array(dtype=wp.vec2), col: wp.array(dtype=wp.vec3), per: int, count: int):
    """Frame triangle ``g`` of instance ``i`` is atlas triangle ``t_src[i] + g - t_off[i]`` (vertex indices local
    to its mesh, made global by ``v_off[i]``; segment ids by ``seg_off[i]``); its corners' uv and colour come from
    the instance's appearance at atlas corner ``c_src[i]``."""
    tid = wp.tid()
    for g in range(tid * per, wp.min(count, tid * per + per)):
        i = last_at_most(t_off, n_inst, g)
        k = g - t_off[i]
        src = t_src[i] + k
        base = v_off[i]
        t = atlas_tris[src]
        tris[g] = wp.vec3i(t[0] + base, t[1] + base, t[2] + base)
        tri_inst[g] = i
        tri_hull[g] = atlas_hull[src]
        segs[g] = atlas_seg[src] + seg_off[i]
        for c in range(3):
            uv[3 * g + c] = atlas_uv[c_src[i] + 3 * k + c]
            col[3 * g + c] = atlas_col[c_src[i] + 3 * k + c]


class _Atlas:
    """Rows of many parts in one growing device array per field; a part is placed when first used, by key."""

    def __init__(self, device: wp.context.Device, fields: dict[str, type]) -> None:
        self.device, self.fields = device, fields
        self.where: dict = {}  #: part key -> first row
        self.rows = 0
        self.arrays = {name: wp.empty(1, dtype=dtype, device=device) for name, dtype in fields.items()}

    def place(self, parts: list[tuple], traffic: FrameTraffic) -> list[int]:
        """First rows of ``parts`` = [(key, rows, build)], ``build()`` giving {field: numpy rows} of a part not in
        the atlas yet (uploaded with the frame's tables); an atlas grown past ``_COMPACT`` times what the frame
        uses starts over."""
        unique = {key: (rows, build) for key, rows, build in parts}
        if self.rows > _COMPACT * max(sum(rows for rows, _ in unique.values()), 1024):
            self.where, self.rows = {}, 0
        new = [(key, rows, build()) for key, (rows, build) in unique.items() if key not in self.where]
        if new:
            count = sum(rows for _, rows, _ in new)
            capacity = self.arrays[next(iter(self.fields))].shape[0]
            if self.rows + count > capacity:
                size = max(2 * capacity, self.rows + count)
                for name, dtype in self.fields.items():
                    grown = wp.empty(size, dtype=dtype, device=self.device)
                    if self.rows:
                        wp.copy(grown, self.arrays[name], count=self.rows)
                    self.arrays[name] = grown
            for name, array in self.arrays.items():
                traffic.up_into(array[self.rows:self.rows + count], np.concatenate([d[name] for _, _, d in new]))
            for key, rows, _ in new:
                self.where[key] = self.rows
                self.rows += rows
        return [self.where[key] for key, _, _ in parts]


class DeviceGeometry:
    """The frame's concatenated geometry, for the instance list of the last :meth:`update`: local-frame vertices
    (``points``, and ``points64`` for labels), triangles (``tris``, frame vertex indices), the owning instance of
    every vertex / triangle, whether a triangle is on its mesh's convex hull (``tri_hull``), its material segment
    (``segs``, into the instances' concatenated ``seg_materials``) and its corners' uv / colour."""

    def __init__(self, device: wp.context.Device) -> None:
        self.device = device
        self.key: tuple = ()
        self.n_tris = self.n_points = 0
        self.points = self.points64 = self.vert_inst = self.tris = self.tri_inst = self.tri_hull = None
        self.segs = self.uv = self.col = None
        self._gathered: OrderedDict[tuple, tuple] = OrderedDict()  #: instance list -> _FIELDS, oldest first
        self._vertices = _Atlas(device, {"points": wp.vec3, "points64": wp.vec3d})
        self._triangles = _Atlas(device, {"tris": wp.vec3i, "hull": wp.int32, "seg": wp.int32})
        self._corners = _Atlas(device, {"uv": wp.vec2, "col": wp.vec3})

    def update(self, instances: list[Instance], traffic: FrameTraffic) -> None:
        key = tuple((i.entry.serial, i.key) for i in instances)
        if key == self.key and self.points is not None:
            return
        kept = self._gathered.get(key)
        if kept is not None:  # gathered before: the arrays are never written after their gather
            self._gathered.move_to_end(key)
            for name, value in zip(_FIELDS, kept, strict=True):
                setattr(self, name, value)
            self.key = key
            return
        dev, up = self.device, traffic.up
        nv = np.array([len(i.entry.points) for i in instances], np.int64)
        nt = np.array([len(i.entry.tris) for i in instances], np.int64)
        nseg = np.array([len(i.entry.seg_tris) for i in instances], np.int64)
        v_src = self._vertices.place([(i.entry.serial, len(i.entry.points), lambda e=i.entry: {
            "points": e.points, "points64": e.points}) for i in instances], traffic)
        t_src = self._triangles.place([(i.entry.serial, len(i.entry.tris), lambda e=i.entry: {
            "tris": e.tris, "hull": e.hull, "seg": np.repeat(np.arange(len(e.seg_tris)), e.seg_tris)})
            for i in instances], traffic)
        c_src = self._corners.place([(i.key, len(i.uv), lambda i=i: {"uv": i.uv, "col": i.color}) for i in instances],
                                    traffic)
        V, T = int(nv.sum()), int(nt.sum())
        self.n_points, self.n_tris = V, T
        vertex, triangle = (wp.empty if V else wp.zeros), (wp.empty if T else wp.zeros)  # the gathers fill them
        self.points, self.points64 = vertex(max(V, 1), wp.vec3, device=dev), vertex(max(V, 1), wp.vec3d, device=dev)
        self.vert_inst = vertex(max(V, 1), wp.int32, device=dev)
        self.tris, self.tri_inst = triangle(max(T, 1), wp.vec3i, device=dev), triangle(max(T, 1), wp.int32, device=dev)
        self.tri_hull, self.segs = triangle(max(T, 1), wp.int32, device=dev), triangle(max(T, 1), wp.int32, device=dev)
        self.uv, self.col = triangle(3 * max(T, 1), wp.vec2, device=dev), triangle(3 * max(T, 1), wp.vec3, device=dev)
        v_off, t_off = np.cumsum(nv) - nv, np.cumsum(nt) - nt
        tables = [up(v_off, wp.int32), up(v_src, wp.int32), up(t_off, wp.int32), up(t_src, wp.int32),
                  up(c_src, wp.int32), up(np.cumsum(nseg) - nseg, wp.int32)]
        traffic.send()
        n, per = len(instances), 1024 if dev.is_cpu else 1
        if V:
            wp.launch(gather_vertices_kernel, dim=(V + per - 1) // per, device=dev, inputs=[
                tables[0], tables[1], n, self._vertices.arrays["points"], self._vertices.arrays["points64"],
                self.points, self.points64, self.vert_inst, per, V])
        if T:
            tri = self._triangles.arrays
            wp.launch(gather_triangles_kernel, dim=(T + per - 1) // per, device=dev, inputs=[
                tables[2], tables[3], tables[4], tables[0], tables[5], n, tri["tris"], tri["hull"], tri["seg"],
                self._corners.arrays["uv"], self._corners.arrays["col"], self.tris, self.tri_inst, self.tri_hull,
                self.segs, self.uv, self.col, per, T])
        self.key = key
        self._keep(key)

    def _keep(self, key: tuple) -> None:
        self._gathered[key] = tuple(getattr(self, name) for name in _FIELDS)
        size = lambda fields: sum(a.capacity for a in fields[2:])  # noqa: E731
        total = sum(size(f) for f in self._gathered.values())
        while len(self._gathered) > 1 and (len(self._gathered) > _KEEP or total > _KEEP_BYTES):
            total -= size(self._gathered.popitem(last=False)[1])
