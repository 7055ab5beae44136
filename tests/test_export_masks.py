"""Mask conversions of the exports: polygons for YOLO segment (exact outlines, holes, parts) and COCO RLE."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sdgstudio.core.export.polygons import mask_to_rings, merge_rings, rasterize_polygon, ring_area


def _roundtrip(mask: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    return rasterize_polygon(merge_rings(mask_to_rings(mask, tolerance=tolerance)), mask.shape[1], mask.shape[0])


@settings(max_examples=200, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_any_mask_fills_back_exactly(mask):
    """Every pixel centre inside the one bridged polygon is a mask pixel and vice versa: arbitrary masks, with
    holes, many parts and diagonal (8-connected) touches."""
    assert np.array_equal(_roundtrip(mask), mask)


def test_square_is_its_pixel_outline_through_edge_midpoints():
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:7] = True  # columns 2..6, rows 1..3
    (ring,) = mask_to_rings(mask)
    xs, ys = ring[:, 0], ring[:, 1]
    assert xs.min() == 2.0 and xs.max() == 7.0 and ys.min() == 1.0 and ys.max() == 4.0
    assert len(ring) == 8  # one vertex per side's end: the corners are cut by half a pixel
    assert ring_area(ring) == 15 - 4 * 0.125  # each convex corner loses an eighth of a pixel


def test_hole_and_separate_part_are_kept():
    mask = np.zeros((20, 30), bool)
    mask[2:18, 2:18] = True
    mask[6:12, 6:12] = False  # a hole
    mask[5:9, 22:27] = True  # a second part
    rings = mask_to_rings(mask)
    areas = [ring_area(r) for r in rings]
    assert sum(a > 0 for a in areas) == 2 and sum(a < 0 for a in areas) == 1  # 2 outlines, 1 hole (opposite turn)
    assert np.array_equal(_roundtrip(mask), mask)


def test_offset_places_a_cropped_mask_in_the_image():
    mask = np.ones((3, 4), bool)
    (ring,) = mask_to_rings(mask, offset=(10, 20))
    assert ring[:, 0].min() == 10 and ring[:, 0].max() == 14 and ring[:, 1].min() == 20 and ring[:, 1].max() == 23


def test_simplification_trades_vertices_for_fidelity():
    yy, xx = np.mgrid[:120, :160]
    mask = ((xx + 0.5 - 80) / 55) ** 2 + ((yy + 0.5 - 60) / 31) ** 2 <= 1
    exact = merge_rings(mask_to_rings(mask))
    coarse = merge_rings(mask_to_rings(mask, tolerance=1.0))
    assert len(coarse) < len(exact) / 2
    back = rasterize_polygon(coarse, 160, 120)
    assert (back & mask).sum() / (back | mask).sum() >= 0.95
    assert np.array_equal(rasterize_polygon(exact, 160, 120), mask)


def test_empty_mask_has_no_rings():
    assert mask_to_rings(np.zeros((5, 5), bool)) == []
    assert len(merge_rings([])) == 0


@settings(max_examples=150, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))), st.integers(0, 8), st.integers(0, 8))
def test_coco_rle_from_a_crop_equals_pycocotools_on_the_full_mask(mask, x0, y0):
    from pycocotools import mask as mask_utils
    from sdgstudio.core.export.coco import coco_rle

    width, height = x0 + mask.shape[1] + 3, y0 + mask.shape[0] + 2
    full = np.zeros((height, width), np.uint8, order="F")
    full[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
    expected = mask_utils.encode(full)
    assert coco_rle(mask, x0, y0, width, height) == {"size": [height, width], "counts": expected["counts"].decode()}
