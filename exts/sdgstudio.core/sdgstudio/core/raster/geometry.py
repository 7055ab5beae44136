"""All instances' triangles of a frame in one set of device arrays, rebuilt only when the list of meshes changes.

Poses change every frame but meshes rarely do, so the local-frame vertices, the triangle indices and the
per-triangle instance stay on the device; each frame uploads only one 4x4 per instance. A new list (objects shown
or hidden) is uploaded with the frame's tables (``FrameTraffic.keep``), without waiting for the device.
"""

from __future__ import annotations

import numpy as np
import warp as wp

from .scene import Instance
from .transfer import FrameTraffic

__all__ = ["DeviceGeometry"]


class DeviceGeometry:
    """Concatenated local-frame vertices (``points``), triangles (``tris``, global vertex indices), the owning
    instance of every vertex / triangle and whether a triangle is on its mesh's convex hull (``tri_hull``), for the
    instance list of the last :meth:`update`."""

    def __init__(self, device: wp.context.Device) -> None:
        self.device = device
        self.key: tuple = ()
        self.n_tris = 0
        self.tri_off = np.zeros(1, np.int64)  #: (n + 1,) first triangle of each instance (host)
        self.points = self.vert_inst = self.tris = self.tri_inst = self.tri_off_dev = self.tri_hull = None

    def update(self, instances: list[Instance], traffic: FrameTraffic) -> None:
        key = tuple(i.entry.serial for i in instances)
        if key == self.key and self.points is not None:
            return
        keep = traffic.keep
        nv = np.array([len(i.entry.points) for i in instances], np.int64)
        nt = np.array([len(i.entry.tris) for i in instances], np.int64)
        v_off = np.concatenate([[0], np.cumsum(nv)])
        self.tri_off = np.concatenate([[0], np.cumsum(nt)])
        self.n_tris = int(self.tri_off[-1])
        if not instances:
            pts, tris = np.zeros((1, 3), np.float32), np.zeros((1, 3), np.int32)
        else:
            pts = np.concatenate([i.entry.points for i in instances]).astype(np.float32)
            tris = np.concatenate([i.entry.tris + o for i, o in zip(instances, v_off, strict=False)]).astype(np.int32)
        self.points = keep(pts, wp.vec3)
        self.vert_inst = keep(np.repeat(np.arange(len(instances), dtype=np.int32), nv), wp.int32)
        self.tris = keep(tris, wp.vec3i)
        self.tri_inst = keep(np.repeat(np.arange(len(instances), dtype=np.int32), nt), wp.int32)
        self.tri_off_dev = keep(self.tri_off, wp.int32)
        self.tri_hull = keep(np.concatenate([i.entry.hull for i in instances] or [np.zeros(1, bool)]), wp.int32)
        self.key = key
