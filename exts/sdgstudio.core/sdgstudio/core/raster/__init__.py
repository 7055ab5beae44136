"""Embedded "raster" render backend: NVIDIA Warp ray casting of any USD stage (CPU or CUDA).

>>> backend = RasterBackend(class_names=["mug", "box"], settings=RasterSettings(device="cpu"))
>>> frame = backend.render(stage, "/World/Camera", (640, 480), {"rgb", "depth"}, frame_index=0)
"""

from .backend import RasterBackend, RasterSettings

__all__ = ["RasterBackend", "RasterSettings"]
