"""Preview thumbnails as RGBA8 arrays (what ``omni.ui.ByteImageProvider`` takes), with optional overlays.

Pure numpy: the masks overlay tints each object's pixels (instance image) with a colour of its class, the
boxes overlay draws each visible object's tight 2D box in the same colour. Nothing here is written to disk.
"""

from __future__ import annotations

import colorsys

import numpy as np
from sdgstudio.core.frame import FrameData

MASK_ALPHA = 0.45


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A stable, well-separated colour per class id (golden-ratio hues)."""
    hue = (class_id * 0.61803398875) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _sample_indices(n: int, out: int) -> np.ndarray:
    """Nearest-neighbour source indices of ``out`` evenly spaced samples (pixel centres) of ``n``."""
    return np.minimum(((np.arange(out) + 0.5) * n / out).astype(np.int64), n - 1)


def thumbnail_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def thumbnail(frame: FrameData, max_width: int = 160, *, boxes: bool = False, masks: bool = False) -> np.ndarray:
    """(h, w, 4) uint8 RGBA of the frame's colour image (grey where it has none), overlays drawn at thumbnail
    scale."""
    height, width = frame.camera.height, frame.camera.width
    tw, th = thumbnail_size(width, height, max_width)
    rows, cols = _sample_indices(height, th), _sample_indices(width, tw)
    if frame.rgb is not None:
        rgb = frame.rgb[rows][:, cols, :3].astype(np.float32)
    else:
        rgb = np.full((th, tw, 3), 96, np.float32)
    by_instance = {o.instance_id: o for o in frame.objects}
    if masks and frame.instance_segmentation is not None:
        ids = frame.instance_segmentation[rows][:, cols]
        for instance_id in np.unique(ids):
            label = by_instance.get(int(instance_id))
            if label is None:
                continue
            hit = ids == instance_id
            rgb[hit] = rgb[hit] * (1 - MASK_ALPHA) + np.array(class_colour(label.class_id), np.float32) * MASK_ALPHA
    image = np.empty((th, tw, 4), np.uint8)
    image[..., :3] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    image[..., 3] = 255
    if boxes:
        sx, sy = tw / width, th / height
        for label in frame.objects:
            if label.bbox_2d_tight is None or label.pixel_count <= 0:
                continue
            x0, y0, x1, y1 = label.bbox_2d_tight
            _draw_box(image, int(x0 * sx), int(y0 * sy), int(np.ceil(x1 * sx)) - 1, int(np.ceil(y1 * sy)) - 1,
                      class_colour(label.class_id))
    return image


def _draw_box(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int]) -> None:
    """A one-pixel outline, clipped to the image (inclusive corners)."""
    h, w = image.shape[:2]
    x0, x1 = max(0, min(x0, w - 1)), max(0, min(x1, w - 1))
    y0, y1 = max(0, min(y0, h - 1)), max(0, min(y1, h - 1))
    if x1 < x0 or y1 < y0:
        return
    rgba = (*colour, 255)
    image[y0, x0:x1 + 1] = rgba
    image[y1, x0:x1 + 1] = rgba
    image[y0:y1 + 1, x0] = rgba
    image[y0:y1 + 1, x1] = rgba


def rgba_bytes(image: np.ndarray) -> tuple[list[int], list[int]]:
    """(flat byte values, [width, height]): the arguments of ``ByteImageProvider.set_bytes_data``."""
    h, w = image.shape[:2]
    return list(np.ascontiguousarray(image, dtype=np.uint8).tobytes()), [w, h]
