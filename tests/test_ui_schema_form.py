"""The form is generated from the config schema: every field gets a widget spec, with its metadata."""

from __future__ import annotations

from pydantic import Field
from sdgstudio.core.config import Range, SDGConfig, StrictModel, config_from_dict, config_to_dict
from sdgstudio.core.frame import ANNOTATORS
from sdgstudio.ui.schema_form import (
    OTHER_SECTION,
    config_specs,
    describe_model,
    find_spec,
    item_template,
    leaf_paths,
    schema_path,
    sections,
    template,
)


def json_schema_leaves() -> set[str]:
    """Every value a config can hold, walked from the JSON Schema (as ``sdgstudio schema`` prints it)."""
    schema = SDGConfig.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    out: set[str] = set()

    def resolve(node):
        return defs[node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node

    def walk(node, path):
        node = resolve(node)
        if "anyOf" in node:
            for option in node["anyOf"]:
                if option.get("type") != "null":
                    walk(option, path)
        elif node.get("ui") == "range":
            out.add(path)
        elif node.get("type") == "object" and "properties" in node:
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}" if path else key)
        elif node.get("type") == "array" and "properties" in resolve(node.get("items") or {}):
            walk(node["items"], f"{path}[]")
        else:
            out.add(path)

    walk(schema, "")
    return out


def test_the_form_covers_exactly_the_schema():
    leaves = leaf_paths()
    assert len(leaves) == len(set(leaves))
    assert set(leaves) == json_schema_leaves()


def test_every_top_level_field_is_in_exactly_one_section():
    placed = [spec.key for _title, specs in sections() for spec in specs]
    assert sorted(placed) == sorted(spec.key for spec in config_specs())
    titles = [title for title, _ in sections()]
    for wanted in ("Assets", "Annotators", "Lighting", "Materials & textures", "Object pose & scale", "Camera",
                   "Physics", "Background", "Output"):
        assert wanted in titles
    output = dict(sections())["Output"]
    assert [s.key for s in output] == ["output", "seed"]
    assert [c.key for c in output[0].children] == ["dir", "frames", "backend", "rgb_format", "formats", "rt_subframes", "export"]


def test_specs_carry_title_unit_bounds_description_and_kind():
    frames = find_spec("output.frames")
    assert (frames.kind, frames.title, frames.unit, frames.minimum, frames.maximum) == ("int", "Frames", "frames", 1, 1e8)
    assert "Allowed: >= 1, <= 1e+08 frames" in frames.tooltip
    size = find_spec("assets[].size")
    assert (size.kind, size.optional, size.exclusive_minimum, size.label) == ("float", True, 0.0, "Size (m)")
    assert "largest extent" in size.description
    assert find_spec("lighting.ambient").kind == "range" and find_spec("assets[].count").kind == "int_range"
    assert find_spec("output.backend").options == ("raster", "replicator")
    assert find_spec("output.formats").kind == "multi_choice"
    assert find_spec("camera.resolution").kind == "vec" and find_spec("camera.resolution").item_type == "int"
    assert find_spec("assets[].class").key == "class"  # the alias config files use
    assert find_spec("assets[].library").kind == "path_or_list"
    sun = find_spec("lighting.distant")
    assert sun.kind == "model" and not sun.optional  # switched off by its own checkbox, not by unsetting it
    assert (sun.children[0].key, sun.children[0].kind, sun.children[0].default) == ("enabled", "bool", True)
    assert find_spec("props").kind == "model_list"
    annotators = find_spec("annotators")
    assert annotators.options == tuple(ANNOTATORS) and annotators.option_descriptions[0] == ANNOTATORS["rgb"]


def test_a_new_schema_field_gets_its_widget_without_ui_code():
    class Blur(StrictModel):
        radius: Range = Field(default=Range(min=0, max=2), title="Blur radius", description="Gaussian blur.",
                              json_schema_extra={"unit": "px"})
        enabled: bool = Field(default=False, title="Enabled")

    class Extended(SDGConfig):
        blur: Blur = Field(default_factory=Blur, title="Blur")

    specs = describe_model(Extended)
    blur = next(s for s in specs if s.key == "blur")
    assert [c.label for c in blur.children] == ["Blur radius (px)", "Enabled"]
    assert blur.children[0].default == {"min": 0.0, "max": 2.0}
    assert dict(sections(specs))[OTHER_SECTION] == [blur]
    assert {"blur.radius", "blur.enabled"} <= set(leaf_paths(specs))


def test_templates_are_valid_starting_values(tabletop):
    data = config_to_dict(tabletop)
    data["props"][0]["position_range"] = template(find_spec("props[].position_range"))
    data["props"][0]["rotation_range"] = template(find_spec("props[].rotation_range"))
    data["assets"][0]["color"] = template(find_spec("assets[].color"))
    data["assets"][0]["size"] = template(find_spec("assets[].size"))
    prop = item_template(find_spec("props")) | {"name": "shelf", "size": [1.0, 1.0, 1.0]}
    data["props"].append(prop)
    config = config_from_dict(data)
    assert config.props[0].position_range.min == (0.0, 0.0, 0.0)
    assert config.props[0].rotation_range.yaw.max == 360.0
    assert config.assets[0].size == 1.0  # gt=0: one above the bound
    assert item_template(find_spec("assets[].library")) == {"file": "", "class": "", "weight": 1.0}


def test_schema_paths_of_draft_paths():
    assert schema_path(("assets", 2, "library", 0, "file")) == "assets[].library[].file"
    assert schema_path(("seed",)) == "seed"


def test_number_maps_parse_or_stay_text_for_validation():
    from sdgstudio.ui.schema_form import parse_number_map

    assert parse_number_map("train=0.8, val=0.1,test=0.1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert parse_number_map("") == {}
    assert parse_number_map("train=abc") == "train=abc"
    assert parse_number_map("=0.5") == "=0.5"
