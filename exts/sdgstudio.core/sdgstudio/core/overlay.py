"""Drawing labels over images: tinted instance masks, tight 2D boxes and class names, and contact sheets.

Shared by the report's sample grid (frames read back from disk) and ``sdgstudio preview`` (frames rendered in
memory). Objects are given in the labels JSON form (``ObjectLabel.to_json()``: ``instance_id``, ``class``,
``class_id``, ``pixel_count``, ``bbox_2d_tight``), so both callers pass the same thing. Colours follow the
class id, so one class has one colour on every tile and in every report.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Class colours (sRGB), indexed by ``class_id % len``: distinct on light and dark images alike.
PALETTE: list[tuple[int, int, int]] = [
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
]


def class_color(class_id: int) -> tuple[int, int, int]:
    """The colour every overlay uses for class ``class_id`` (1-based; 0 = unknown gets grey)."""
    return (128, 128, 128) if class_id <= 0 else PALETTE[(class_id - 1) % len(PALETTE)]


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (TypeError, ImportError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def draw_overlay(rgb: np.ndarray, instance: np.ndarray | None, objects: Sequence[dict], *, width: int | None = None,
                 mask_alpha: float = 0.45, font_size: int = 12) -> Image.Image:
    """``rgb`` with every visible object's mask tinted, its tight box outlined and its class name written.

    Args:
        rgb: (H, W, 3 or 4) uint8 image.
        instance: (H, W) instance ids matching ``objects[i]["instance_id"]``, or None to draw boxes only.
        objects: labels JSON objects; those with ``pixel_count == 0`` are skipped.
        width: output width in pixels (height keeps the aspect ratio); None keeps the image's size.
        mask_alpha: opacity of the mask tint, 0..1.
        font_size: class-name text height, pixels of the output image.
    """
    height_in, width_in = rgb.shape[:2]
    width = width or width_in
    scale = width / width_in
    size = (width, max(1, round(height_in * scale)))
    image = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    visible = [o for o in objects if o.get("pixel_count", 0) > 0 and o.get("bbox_2d_tight") is not None]
    if instance is not None and visible:
        ids = instance if instance.shape == (height_in, width_in) else None
        if ids is not None:
            ids = np.asarray(Image.fromarray(ids.astype(np.int32)).resize(size, Image.Resampling.NEAREST))
            lut_size = int(max(ids.max(), max(o["instance_id"] for o in visible))) + 1
            colors = np.zeros((lut_size, 3), np.float32)
            alpha = np.zeros(lut_size, np.float32)
            for o in visible:
                colors[o["instance_id"]] = class_color(o["class_id"])
                alpha[o["instance_id"]] = mask_alpha
            a = alpha[ids][..., None]
            tinted = np.asarray(image, np.float32) * (1.0 - a) + colors[ids] * a
            image = Image.fromarray(np.clip(tinted + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    font = _font(font_size)
    for o in visible:
        color = class_color(o["class_id"])
        x0, y0, x1, y1 = (v * scale for v in o["bbox_2d_tight"])
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=color, width=max(1, round(width / 400)))
        text = str(o.get("class", o["class_id"]))
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 4, bottom - top + 4
        tx = min(max(x0, 0), size[0] - tw)
        ty = y0 - th if y0 - th >= 0 else min(y0, size[1] - th)
        ink = (0, 0, 0) if sum(c * k for c, k in zip(color, (0.299, 0.587, 0.114), strict=True)) > 140 else (255,) * 3
        draw.rectangle((tx, ty, tx + tw, ty + th), fill=color)
        draw.text((tx + 2 - left, ty + 2 - top), text, fill=ink, font=font)
    return image


def contact_sheet(tiles: Sequence[Image.Image], captions: Sequence[str], *, columns: int = 4, pad: int = 6,
                  background: tuple[int, int, int] = (24, 24, 27), font_size: int = 13) -> Image.Image:
    """Tiles laid out row by row, ``columns`` wide, each with its caption underneath (pixels of padding)."""
    if not tiles:
        raise ValueError("a contact sheet needs at least one tile")
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    tile_w = max(t.width for t in tiles)
    tile_h = max(t.height for t in tiles)
    font = _font(font_size)
    caption_h = font_size + 6
    cell_w, cell_h = tile_w + pad, tile_h + caption_h + pad
    sheet = Image.new("RGB", (columns * cell_w + pad, rows * cell_h + pad), background)
    draw = ImageDraw.Draw(sheet)
    for k, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        x, y = pad + (k % columns) * cell_w, pad + (k // columns) * cell_h
        sheet.paste(tile.convert("RGB"), (x, y))
        draw.text((x, y + tile_h + 3), caption, fill=(230, 230, 230), font=font)
    return sheet
