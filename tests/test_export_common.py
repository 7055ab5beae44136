"""Label filters and splits shared by every export format."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sdgstudio.core.export.common import ExportError, ExportSettings, LabelFilter, Split


def _obj(pixels=100, visible=1.0, truncation=0.0):
    return {"pixel_count": pixels, "visible_fraction": visible, "truncation": truncation}


def test_filter_reasons():
    flt = LabelFilter(min_visible=0.5, min_pixels=10, max_truncation=0.3)
    assert flt.rejects(_obj()) is None
    assert flt.rejects(_obj(pixels=9)) == "min_pixels"
    assert flt.rejects(_obj(visible=0.499999)) == "min_visible"
    assert flt.rejects(_obj(visible=0.5)) is None
    assert flt.rejects(_obj(truncation=0.31)) == "max_truncation"
    assert LabelFilter().rejects(_obj(pixels=0, visible=0.0)) == "min_pixels"  # invisible objects never exported


@pytest.mark.parametrize("kwargs", [{"min_visible": 1.5}, {"min_pixels": 0}, {"max_truncation": -0.1}])
def test_filter_rejects_bad_values(kwargs):
    with pytest.raises(ExportError):
        LabelFilter(**kwargs)


def test_split_parse_and_canonical_order():
    split = Split.parse("val=0.2, train=0.8")
    assert split.parts == (("train", 0.8), ("val", 0.2))
    assert Split.parse({"train": 0.8, "val": 0.2}) == split


@pytest.mark.parametrize("text", ["train=0.8,val=0.1", "train=0.5,bogus=0.5", "train", "train=x", "train=1,train=0",
                                  "train=1.2,val=-0.2", ""])
def test_split_rejects_bad_specs(text):
    with pytest.raises(ExportError) as info:
        Split.parse(text)
    assert "\n" not in str(info.value)


@given(st.integers(0, 2**63 - 1), st.integers(0, 10**7))
def test_split_is_a_pure_function_of_seed_and_frame(seed, frame):
    split = Split.parse("train=0.8,val=0.1,test=0.1")
    assert split.assign(seed, frame) == split.assign(seed, frame) in ("train", "val", "test")


def test_split_fractions_hold_on_many_frames_and_seeds_differ():
    split = Split.parse("train=0.8,val=0.1,test=0.1")
    names = [split.assign(7, f) for f in range(20000)]
    assert abs(names.count("train") / 20000 - 0.8) < 0.015 and abs(names.count("test") / 20000 - 0.1) < 0.01
    assert names != [split.assign(8, f) for f in range(20000)]
    assert {Split.parse("train=1").assign(7, f) for f in range(100)} == {"train"}


def test_settings_from_config_options_with_overrides():
    options = {"split": {"train": 0.5, "test": 0.5}, "min_visible": 0.2, "min_pixels": 5, "max_truncation": 0.9}
    settings = ExportSettings.from_options("yolo", options, min_visible=0.7)
    assert settings.filter == LabelFilter(0.7, 5, 0.9) and settings.split.names == ["train", "test"]
    assert ExportSettings.from_options("coco").to_json() == {
        "format": "coco", "filter": {"min_visible": 0.0, "min_pixels": 1, "max_truncation": 1.0},
        "split": {"train": 1.0}}
    with pytest.raises(ExportError):
        ExportSettings.from_options("voc")
