"""The window's stage actions with plain pxr: assets from the selection or a file, and the frame scrubber."""

from __future__ import annotations

from pathlib import Path

import pytest
from pxr import Gf, Sdf, Usd, UsdGeom
from sdgstudio.core.config import config_from_dict, config_to_dict
from sdgstudio.core.sampler import sample_frame_params
from sdgstudio.core.stage import add_semantic_class, apply_frame_params, build_stage
from sdgstudio.ui.stage_tools import SCENE_KEY, asset_from_file, asset_from_prim, ensure_scene, prim_class, show_frame

ASSETS = Path(__file__).resolve().parents[1] / "exts" / "sdgstudio.core" / "data" / "assets"


@pytest.fixture
def user_stage() -> Usd.Stage:
    """A stage as a user has it: their own prims, Z up."""
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.Xform.Define(stage, "/World")
    UsdGeom.Xform.Define(stage, "/World/Robot")
    cube = UsdGeom.Cube.Define(stage, "/World/crate")
    cube.CreateSizeAttr(0.25)
    add_semantic_class(cube.GetPrim(), "crate")
    mug = stage.DefinePrim("/World/mug", "Xform")
    mug.GetReferences().AddReference(str(ASSETS / "mug.usda"))
    return stage


def test_a_labelled_primitive_becomes_a_primitive_asset(user_stage):
    s = asset_from_prim(user_stage, "/World/crate", "crate")
    assert s.asset == {"name": "crate", "source": "cube", "class": "crate", "count": {"min": 1, "max": 1}, "size": 0.25}
    assert s.note == ""


def test_a_referenced_file_without_a_class_is_added_flagged(user_stage):
    s = asset_from_prim(user_stage, "/World/mug", "mug_1")
    assert s.asset["source"] == str(ASSETS / "mug.usda") and s.asset["class"] is None
    assert "no semantic class" in s.note and "/World/mug" in s.note


def test_a_prim_that_is_neither_is_refused_with_a_reason(user_stage):
    assert asset_from_prim(user_stage, "/World/Robot", "robot").asset is None
    assert "neither a primitive" in asset_from_prim(user_stage, "/World/Robot", "robot").note
    assert asset_from_prim(user_stage, "/World/nothing", "x").note.endswith("no such prim")


def test_legacy_semantics_attributes_are_read():
    stage = Usd.Stage.CreateInMemory()
    prim = stage.DefinePrim("/p", "Sphere")
    prim.CreateAttribute("semantic:Semantics:params:semanticType", Sdf.ValueTypeNames.String).Set("class")
    prim.CreateAttribute("semantic:Semantics:params:semanticData", Sdf.ValueTypeNames.String).Set("ball")
    assert prim_class(prim) == "ball"


def test_files_are_checked_by_suffix():
    assert asset_from_file(ASSETS / "bowl.usda", "bowl", "bowl").asset["source"].endswith("bowl.usda")
    assert asset_from_file("/tmp/picture.png", "x").asset is None


def test_the_scrubber_shows_exactly_frame_k_and_keeps_the_users_prims(user_stage, tabletop):
    params = show_frame(user_stage, tabletop, 3, 5)
    reference = build_stage(tabletop)
    apply_frame_params(reference, sample_frame_params(tabletop, 3, 5))
    assert params == sample_frame_params(tabletop, 3, 5)
    for obj in params.objects:
        for attr in ("visibility", "xformOp:translate", "xformOp:rotateXYZ", "xformOp:scale", "physics:mass"):
            ours = user_stage.GetPrimAtPath(obj.prim_path).GetAttribute(attr).Get()
            assert ours == reference.GetPrimAtPath(obj.prim_path).GetAttribute(attr).Get(), (obj.prim_path, attr)
    camera = "/World/Camera"
    assert Gf.IsClose(user_stage.GetPrimAtPath(camera).GetAttribute("xformOp:transform").Get(),
                      reference.GetPrimAtPath(camera).GetAttribute("xformOp:transform").Get(), 1e-9)
    assert user_stage.GetPrimAtPath("/World/Robot") and user_stage.GetPrimAtPath("/World/crate")


def test_the_scene_is_built_once_per_config_and_rebuilt_when_it_changes(user_stage, tabletop):
    assert ensure_scene(user_stage, tabletop)
    assert not ensure_scene(user_stage, tabletop)
    assert not ensure_scene(user_stage, tabletop.model_copy(update={"seed": 9}))  # seeds do not change the scene
    data = config_to_dict(tabletop)
    data["assets"] = data["assets"][:2]
    data["classes"] = []
    smaller = config_from_dict(data)
    assert ensure_scene(user_stage, smaller)
    assert not user_stage.GetPrimAtPath("/World/Objects/mug_0")  # the old slots went with the old scene
    assert user_stage.GetRootLayer().customLayerData[SCENE_KEY]
    show_frame(user_stage, smaller, 0, 1)
