"""The window's view-model without Kit: field <-> config binding, validation messages, files, state, Generate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from sdgstudio.core.config import SphereLightConfig, load_config
from sdgstudio.ui.view_model import GENERAL, ConfigViewModel, Problem, normalize_location, read_config_file

SCENES = Path(__file__).resolve().parents[1] / "exts" / "sdgstudio.core" / "data" / "scenes"
ASSETS = SCENES.parent / "assets"


@pytest.fixture
def vm(tmp_path) -> ConfigViewModel:
    return ConfigViewModel.from_file(SCENES / "tabletop.toml", template=True, output_root=tmp_path)


def test_a_scene_opens_valid_in_long_form_with_absolute_paths(vm, tmp_path):
    assert vm.valid and vm.problems == []
    assert vm.get(("lighting", "ambient")) == {"min": 120.0, "max": 280.0}  # written [120, 280] in the file
    assert Path(vm.get(("assets", 3, "source"))).is_absolute()
    assert vm.get(("lighting", "distant", "intensity", "max")) == 1000.0
    assert vm.source is None  # a template: Save asks for a file
    assert vm.output_dir() == tmp_path / "out"
    assert vm.config == load_config(SCENES / "tabletop.toml")


def test_editing_a_value_updates_the_config(vm):
    vm.set(("camera", "resolution"), [320, 240])
    vm.set(("lighting", "ambient", "max"), 500.0)
    vm.set(("annotators",), ["rgb", "depth"])
    assert vm.config.camera.resolution == (320, 240)
    assert vm.config.lighting.ambient.max == 500.0
    assert vm.config.annotators == ["rgb", "depth"]


def test_min_above_max_is_refused_with_one_message_at_the_range(vm):
    vm.set(("lighting", "ambient", "min"), 900.0)
    assert not vm.valid and not vm.can_generate()
    assert vm.problems == [Problem(("lighting", "ambient"), "min (900) is greater than max (280)")]
    messages = vm.messages(["lighting.ambient", "lighting", "output.frames"])
    assert messages == {"lighting.ambient": "min (900) is greater than max (280)"}


@pytest.mark.parametrize("path, value, anchor, expected", [
    (("output", "frames"), 0, "output.frames", "greater than or equal to 1"),
    (("seed",), -1, "seed", "greater than or equal to 0"),
    (("seed",), math.nan, "seed", "finite"),
    (("output", "frames"), "many", "output.frames", "valid integer"),
    (("camera", "resolution"), [0, 10], "camera.resolution", "1..16384"),
    (("assets", 3, "source"), "/no/such.usda", "assets.3.source", "not found"),
    (("camera", "mount"), "not a path", "camera.mount", "absolute prim path"),
    (("materials", "hue", "max"), 2.0, "materials.hue", "within [0, 1]"),
    (("assets", 0, "name"), "has space", "assets.0.name", "pattern"),
    (("background", "textures"), "/no/such/folder", "background.textures", "not found"),
])
def test_bad_values_never_raise_and_land_beside_their_field(vm, path, value, anchor, expected):
    vm.set(path, value)
    assert not vm.valid
    anchors = ["seed", "output.frames", "camera.resolution", "camera.mount", "assets.3.source", "assets.3",
               "materials.hue", "assets.0.name", "assets.0", "background.textures", "lighting.ambient"]
    messages = vm.messages(anchors)
    assert list(messages) == [anchor], messages
    assert expected in messages[anchor]


def test_a_table_level_problem_naming_one_empty_key_goes_to_that_field(vm):
    vm.set(("assets", 0, "class"), None)
    assert vm.problems == [Problem(("assets", 0, "class"), "'class' is required with 'source'")]
    vm.set(("assets", 0, "class"), "box")
    vm.set(("props", 0, "size"), None)
    assert [p.path for p in vm.problems] == [("props", 0, "size")]
    vm.set(("props", 0, "size"), [8.0, 8.0, 0.02])
    vm.set(("assets", 0, "library"), str(ASSETS / "household"))  # now both source and library: the table
    assert [p.path for p in vm.problems] == [("assets", 0)]


def test_union_errors_keep_the_branch_the_value_is_of(vm):
    vm.set(("assets", 0, "source"), None)
    vm.set(("assets", 0, "library"), [{"file": "missing.usda", "class": "box"}])
    assert [p.path for p in vm.problems] == [("assets", 0, "library", 0, "file")]
    assert normalize_location(("assets", 0, "library", "str"), vm.data) == (("assets", 0, "library"), False)
    assert normalize_location(("assets", 0, "library", "list[LibraryItem]", 0, "file"), vm.data) == (
        ("assets", 0, "library", 0, "file"), True)


def test_problems_no_field_shows_go_to_the_general_line(vm):
    vm.set(("assets",), [])
    messages = vm.messages(["seed"])
    assert list(messages) == [GENERAL] and "at least 1 item" in messages[GENERAL]


def test_several_problems_at_one_field_show_the_first_and_a_count(vm):
    vm.set(("pose", "region", "min"), [1.0, 1.0, 1.0])  # above max on x and y: one message
    vm.set(("lighting", "ambient"), {"min": 5, "max": 1})
    vm.set(("lighting", "distant", "intensity"), {"min": 5, "max": 1})
    messages = vm.messages(["lighting"])
    assert messages["lighting"].endswith("(+1 more)")


def test_rows_are_added_with_unique_names_and_removed(vm):
    before = len(vm.get(("assets",)))
    structural = []
    vm.subscribe(lambda _vm, s: structural.append(s))
    index = vm.add_item(("assets",), {"name": "", "source": "sphere", "class": "ball"})
    assert index == before and vm.get(("assets", index, "name")) == "asset" and vm.valid
    vm.add_item(("assets",), {"name": "", "source": "sphere", "class": "ball"})
    assert vm.get(("assets", before + 1, "name")) == "asset_1"
    assert vm.unique_name("box") == "box_1" and vm.unique_name("9 lives") == "_9_lives"
    vm.remove_item(("assets",), index)
    assert len(vm.get(("assets",))) == before + 1
    vm.set(("seed",), 3)
    assert structural == [True, True, True, False]


def test_save_writes_what_the_cli_reads_and_refuses_an_invalid_draft(vm, tmp_path):
    vm.set(("seed",), 12)
    vm.set(("lighting", "sphere", "enabled"), False)  # the lamp off: it stays off in the file
    for name in ("a.toml", "b.yaml"):
        path = vm.save(tmp_path / name)
        loaded = load_config(path)
        assert loaded.seed == 12 and loaded.camera == vm.config.camera and loaded.assets == vm.config.assets
        assert loaded.lighting == vm.config.lighting and not loaded.lighting.sphere.enabled
        assert vm.source == path
    vm.set(("output", "frames"), 0)
    with pytest.raises(ValueError, match="problem"):
        vm.save(tmp_path / "c.toml")
    assert not (tmp_path / "c.toml").exists()


def test_a_file_with_mistakes_opens_marked_with_its_short_forms_expanded(tmp_path):
    text = (SCENES / "tabletop.toml").read_text().replace("ambient = [120, 280]", "ambient = [400, 280]")
    text = text.replace('source = "../assets/mug.usda"', 'source = "mug.usda"')
    path = tmp_path / "broken.toml"
    path.write_text(text)
    vm = ConfigViewModel(read_config_file(path), base_dir=SCENES, source=path)  # its ../assets paths resolve
    assert {p.path for p in vm.problems} == {("lighting", "ambient"), ("assets", 3, "source")}
    assert vm.get(("lighting", "ambient")) == {"min": 400, "max": 280}
    vm.set(("lighting", "ambient", "min"), 100)
    vm.set(("assets", 3, "source"), str(ASSETS / "mug.usda"))
    assert vm.valid


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    path = tmp_path / "scene.toml"
    path.write_text((SCENES / "tabletop.toml").read_text())
    vm = ConfigViewModel.from_file(path)
    assert vm.base_dir == tmp_path and vm.output_dir() == tmp_path / "out" and vm.source == path
    assert not vm.valid  # its ../assets paths point next to tmp_path now
    vm.load(SCENES / "tabletop.toml")
    assert vm.valid and vm.source == SCENES / "tabletop.toml"


def test_unreadable_files_raise_clearly(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="expected a .toml"):
        read_config_file(tmp_path / "x.json")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="table of settings"):
        read_config_file(tmp_path / "list.yaml")


def test_state_round_trips_the_draft_including_lights_turned_off(vm):
    vm.set(("lighting", "distant", "enabled"), False)
    vm.set(("output", "frames"), 0)  # an invalid draft is restored as it was
    again = ConfigViewModel.from_state(vm.to_state())
    assert again.data == vm.data and again.output_root == vm.output_root and again.problems == vm.problems
    again.set(("output", "frames"), 5)
    assert again.valid and not again.config.lighting.distant.enabled and again.config.lighting.sphere.enabled
    with pytest.raises(ValueError):
        ConfigViewModel.from_state('{"nope": 1}')


def test_generate_is_blocked_while_busy_or_invalid(vm):
    assert vm.can_generate() and vm.generate_blockers(busy=False) == []
    assert vm.generate_blockers(busy=True) == ["a run or preview is in progress"]
    vm.set(("output", "frames"), 0)
    assert vm.generate_blockers(busy=False) == ["1 setting(s) to fix"]
    assert vm.frames() == 0


def test_writes_through_stale_or_mistyped_paths_are_ignored_not_raised(vm):
    data = repr(vm.data)
    vm.set(("assets", 40, "name"), "gone")  # a widget of a row removed a moment ago
    vm.set(("seed", "x"), 1)  # into a number
    assert repr(vm.data) == data and vm.valid
    vm.set(("camera", "target", 7), 1.0)
    assert repr(vm.data) == data


def test_a_light_set_to_none_by_an_older_window_state_opens_switched_off(vm):
    state = json.loads(vm.to_state())
    state["data"]["lighting"]["sphere"] = None  # how windows before the "enabled" flag stored the lamp off
    again = ConfigViewModel.from_state(json.dumps(state))
    assert again.valid and again.get(("lighting", "sphere", "enabled")) is False  # the checkbox shows it off
    assert again.config.lighting.sphere == SphereLightConfig(enabled=False)
