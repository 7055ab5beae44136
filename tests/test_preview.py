"""``sdgstudio preview``: a contact sheet with label overlays, rendered in memory, and nothing else written."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sdgstudio.core.cli import main
from sdgstudio.core.config import load_config, save_config
from sdgstudio.core.overlay import class_color, draw_overlay
from sdgstudio.core.preview import parse_frame_range
from sdgstudio.core.session import RenderSession, make_backend


@pytest.fixture
def small_config(tmp_path, tabletop_path):
    config = load_config(tabletop_path)
    config.camera.resolution = (160, 120)
    path = tmp_path / "small.toml"
    save_config(config, path)
    return path


def test_preview_writes_only_the_sheet_with_overlays(small_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = {p for p in tmp_path.rglob("*")}
    assert main(["preview", "--config", str(small_config), "--frames", "2:5", "--out", "sheets/sheet.png",
                 "--columns", "2"]) == 2, "the output folder must exist"
    (tmp_path / "sheets").mkdir()
    assert main(["preview", "--config", str(small_config), "--frames", "2:5", "--out", "sheets/sheet.png",
                 "--columns", "2"]) == 0
    after = {p for p in tmp_path.rglob("*")}
    assert after - before == {tmp_path / "sheets", tmp_path / "sheets" / "sheet.png"}
    sheet = np.asarray(Image.open(tmp_path / "sheets" / "sheet.png").convert("RGB"))
    assert sheet.shape == (2 * (120 + 19 + 6) + 6, 2 * (160 + 6) + 6, 3)  # 3 tiles, 2 per row, captions under

    config = load_config(small_config)
    _, frame = RenderSession(config, make_backend("raster", config)).render(2)
    plain = draw_overlay(frame.rgb, None, [], width=160)
    tile = sheet[6:126, 6:166]
    assert np.array_equal(np.asarray(plain), frame.rgb), "no objects, no overlay: the image as rendered"
    assert not np.array_equal(tile, frame.rgb), "the sheet's tile carries overlays"
    seen = {o.class_id for o in frame.objects if o.pixel_count > 0}
    for class_id in seen:  # every visible class's name tag is filled with its colour
        assert np.all(tile == class_color(class_id), axis=-1).sum() > 10, class_id


def test_overlay_tints_exactly_the_object_mask():
    rgb = np.full((20, 30, 3), 100, np.uint8)
    instance = np.zeros((20, 30), np.uint32)
    instance[5:10, 4:12] = 3
    objects = [{"instance_id": 3, "class": "box", "class_id": 1, "pixel_count": 40, "bbox_2d_tight": [4, 5, 12, 10]}]
    image = np.asarray(draw_overlay(rgb, instance, objects, mask_alpha=0.5, font_size=1)).astype(int)
    color = np.array(class_color(1))
    inside = image[6:9, 5:11]  # mask interior, away from the box outline
    assert np.all(np.abs(inside - (100 + color) / 2) <= 1)
    assert np.all(image[15:, 20:] == 100), "background untouched"


@pytest.mark.parametrize(("text", "frames"), [("0:16", range(16)), ("7", range(7, 8)), ("3:4", range(3, 4))])
def test_frame_ranges(text, frames):
    assert parse_frame_range(text) == frames


@pytest.mark.parametrize("text", ["", "a:b", "5:2", "-1:3", "1:2:3", "4:4"])
def test_bad_frame_ranges_are_rejected(text):
    with pytest.raises(ValueError, match="expected"):
        parse_frame_range(text)
