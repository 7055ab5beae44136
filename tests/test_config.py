"""Config loading and validation as a user meets it through `sdgstudio validate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sdgstudio.core.cli import main
from sdgstudio.core.config import ConfigError, config_from_dict, config_to_dict, load_config, save_config

MINIMAL = '[[assets]]\nname = "box"\nsource = "cube"\nclass = "box"\n'

# (config text appended to / replacing the minimal one, field path the message must name)
BROKEN = [
    ('[[assets]]\nname = "box"\nsource = "cube"\nclass = "box"\ncount = [3, 1]\n', "assets.0.count"),
    ('annotators = ["rgb", "lidar"]\n' + MINIMAL, "annotators: unknown"),
    ('[[assets]]\nname = "m"\nsource = "missing/mug.usda"\nclass = "mug"\n', "assets.0.source"),
    ('[[assets]]\nname = "m"\nsource = "teapot"\nclass = "mug"\n', "assets.0.source"),
    ('[[assets]]\nname = "box"\nsource = "cube"\nclass = "box"\ncount = [-1, 2]\n', "assets.0.count.min"),
    (MINIMAL + "[camera]\nresolution = [0, 480]\n", "camera.resolution"),
    (MINIMAL + "[camera]\nfov = 60\n", "camera.fov"),
    ("seed = 1\n", "assets"),
    (MINIMAL + "[camera]\nelevation = [10, 95]\n", "camera.elevation"),
    (MINIMAL + "[camera]\nfocal_length = [-5, 20]\n", "camera.focal_length"),
    (MINIMAL + "[camera]\nclipping_range = [10.0, 1.0]\n", "camera.clipping_range"),
    (MINIMAL + "[lighting.distant]\ncolor_temperature = [100, 6500]\n", "lighting.distant.color_temperature"),
    (MINIMAL + "[materials]\nhue = [0.2, 1.5]\n", "materials.hue"),
    (MINIMAL + "[materials]\nroughness = [0.1, 0.2, 0.3]\n", "materials.roughness"),
    (MINIMAL + "[physics]\nmass = [0, 1]\n", "physics.mass"),
    (MINIMAL + "[physics]\nrestitution = [0, 1.5]\n", "physics.restitution"),
    (MINIMAL + "[pose]\nregion = { min = [0, 0, 0], max = [1, -1, 0] }\n", "pose.region"),
    (MINIMAL + '[output]\nbackend = "blender"\n', "output.backend"),
    (MINIMAL + "[output]\nframes = 0\n", "output.frames"),
    (MINIMAL + '[output]\nformats = ["coco", "voc"]\n', "output.formats.1"),
    (MINIMAL + '[[props]]\nname = "box"\nposition = [0, 0, 0]\nsize = [1, 1, 1]\n', "names must be unique"),
    ('classes = ["ball"]\n' + MINIMAL, "missing from 'classes'"),
    (MINIMAL + '[[props]]\nname = "t"\nposition = [0, 0, 0]\nsize = [1, -1, 1]\n', "props.0.size"),
    (MINIMAL + '[background]\ntextures = "no_such_folder"\n', "background.textures"),
    ('[[assets]]\nname = "box"\nsource = "cube"\nclass = "box"\nscale = [-1, 2]\n', "assets.0.scale"),
    ('[[assets]]\nname = "my box"\nsource = "cube"\nclass = "box"\n', "assets.0.name"),
    ('[[assets]]\nname = "box"\nsource = "cube"\nclass = "box"\ncolor = [1.0, 2.0, 0.0]\n', "assets.0.color"),
    ("seed = -4\n" + MINIMAL, "seed"),
    (MINIMAL + "[camera\nresolution = [1, 1]\n", "(syntax)"),
]


@pytest.mark.parametrize(("text", "field"), BROKEN, ids=[b[1] for b in BROKEN])
def test_broken_config_exits_2_naming_the_field(tmp_path, capsys, text, field):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert field in err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert all(line.startswith("error: ") and str(path) in line for line in lines)


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    path = tmp_path / "many.toml"
    path.write_text('annotators = ["x"]\n' + MINIMAL + '[camera]\nresolution = [0, 0]\n[physics]\nmass = [2, 1]\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 3
    for field in ("annotators", "camera.resolution", "physics.mass"):
        assert field in err


def test_missing_file_and_wrong_suffix(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.toml")]) == 2
    (tmp_path / "c.json").write_text("{}")
    assert main(["validate", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert "config file not found" in err and "expected a .toml" in err


def test_builtin_scene_validates(tabletop_path, capsys):
    assert main(["validate", str(tabletop_path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_builtin_scene_has_the_promised_content(tabletop):
    assert len(tabletop.classes) >= 4
    assert sum(a.count.min for a in tabletop.assets) >= 6
    assert any(not a.is_primitive for a in tabletop.assets)
    assert tabletop.lighting.distant.enabled and tabletop.lighting.sphere.enabled


def test_yaml_and_toml_round_trip(tmp_path, tabletop):
    for suffix in (".toml", ".yaml"):
        path = tmp_path / f"saved{suffix}"
        save_config(tabletop, path)
        again = load_config(path)
        assert config_to_dict(again) == config_to_dict(tabletop)
    assert not list(tmp_path.glob(".*tmp"))


def test_range_short_forms_and_default_classes():
    config = config_from_dict(
        {"assets": [{"name": "a", "source": "cube", "class": "z", "count": 2}, {"name": "b", "source": "sphere", "class": "y"}],
         "materials": {"roughness": {"min": 0.2, "max": 0.4}, "metallic": 0.1}}
    )
    assert config.classes == ["z", "y"] and config.class_id("y") == 2
    assert (config.assets[0].count.min, config.assets[0].count.max) == (2, 2)
    assert (config.materials.metallic.min, config.materials.metallic.max) == (0.1, 0.1)


def test_schema_command_prints_json_schema(capsys, tmp_path):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "assets" in schema["properties"] and "camera" in schema["properties"]
    assert main(["schema", "--out", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == schema


def test_config_error_lists_problems():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"assets": [{"name": "a", "source": "cube", "class": "c", "count": [5, 1]}]}, source="x.toml")
    assert info.value.problems[0][0] == "assets.0.count"


# ------------------------------------------------------------------ lights switched off (``enabled = false``)

LIGHT_PRIMS = {"distant": "/World/Lights/Sun", "sphere": "/World/Lights/Lamp"}


def _with_lights_off(config, *lights: str, via_none: bool = False):
    data = config_to_dict(config)
    for light in lights:
        data["lighting"][light] = None if via_none else {**data["lighting"][light], "enabled": False}
    return config_from_dict(data)


@pytest.mark.parametrize("light", ["distant", "sphere"])
@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
def test_a_light_switched_off_is_saved_and_loads_back_off(tmp_path, tabletop, light, suffix):
    config = _with_lights_off(tabletop, light)
    path = tmp_path / f"off{suffix}"
    save_config(config, path)
    assert ("enabled = false" if suffix == ".toml" else "enabled: false") in path.read_text()
    loaded = load_config(path)
    other = "sphere" if light == "distant" else "distant"
    assert not getattr(loaded.lighting, light).enabled and getattr(loaded.lighting, other).enabled
    assert loaded.lighting == config.lighting  # its other settings are kept too
    assert config_to_dict(loaded) == config_to_dict(config)


@pytest.mark.parametrize("light", ["distant", "sphere"])
def test_the_stage_of_a_saved_config_has_no_light_switched_off(tmp_path, tabletop, light):
    """The reloaded file builds what the None config always built: the light invisible at intensity 0, no draws."""
    from pxr import UsdGeom
    from sdgstudio.core.sampler import sample_frame_params
    from sdgstudio.core.stage import apply_frame_params, build_stage

    path = tmp_path / "off.toml"
    save_config(_with_lights_off(tabletop, light), path)
    loaded, as_none = load_config(path), _with_lights_off(tabletop, light, via_none=True)
    stages = []
    for config in (loaded, as_none):
        stage = build_stage(config)
        params = sample_frame_params(config, 3, 1)
        assert getattr(params, f"{light}_light") is None
        apply_frame_params(stage, params)
        stages.append((stage.ExportToString(), params.to_json()))
        off = stage.GetPrimAtPath(LIGHT_PRIMS[light])
        assert UsdGeom.Imageable(off).ComputeVisibility() == UsdGeom.Tokens.invisible
        assert off.GetAttribute("inputs:intensity").Get() == 0.0
        on = stage.GetPrimAtPath(LIGHT_PRIMS["sphere" if light == "distant" else "distant"])
        assert UsdGeom.Imageable(on).ComputeVisibility() == UsdGeom.Tokens.inherited
        assert on.GetAttribute("inputs:intensity").Get() > 0
    assert stages[0] == stages[1]


def test_a_saved_config_with_the_sun_off_renders_as_the_window_showed_it(tmp_path, tabletop):
    from sdgstudio.core.session import RenderSession, make_backend

    def rgb(config):
        config = config.model_copy(deep=True)
        config.camera.resolution, config.annotators = (64, 48), ["rgb"]
        return RenderSession(config, make_backend("raster", config)).render(2)[1].rgb

    config = _with_lights_off(tabletop, "distant")
    save_config(config, tmp_path / "off.toml")
    off = rgb(config)
    assert np.array_equal(rgb(load_config(tmp_path / "off.toml")), off)
    assert not np.array_equal(rgb(tabletop), off)


@pytest.mark.parametrize("lights", [("distant",), ("sphere",), ("distant", "sphere")])
@pytest.mark.parametrize("via_none", [False, True], ids=["enabled_false", "none"])
def test_config_dict_round_trip_keeps_lights_off(tabletop, lights, via_none):
    config = _with_lights_off(tabletop, *lights, via_none=via_none)
    assert all(not getattr(config.lighting, light).enabled for light in lights)
    assert config_from_dict(config_to_dict(config)) == config
    for light in lights if via_none else ():  # None: the light off, at its default settings
        off = getattr(config.lighting, light)
        assert off == type(off)(enabled=False)


def test_none_in_python_and_yaml_still_switches_a_light_off(tmp_path, tabletop):
    config = tabletop.model_copy(deep=True)
    config.lighting.sphere = None  # validated assignment: older code switched the lamp off this way
    assert not config.lighting.sphere.enabled and config.lighting.sphere.radius == 0.1
    yaml = "assets:\n- {name: box, source: cube, class: box}\nlighting:\n  distant: null\n"
    (tmp_path / "null.yaml").write_text(yaml)
    loaded = load_config(tmp_path / "null.yaml")
    assert not loaded.lighting.distant.enabled and loaded.lighting.sphere.enabled


def test_a_file_that_says_nothing_about_enabled_keeps_its_lights_on(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text(MINIMAL + "[lighting.distant]\nintensity = [1000, 2000]\n")
    config = load_config(path)
    assert config.lighting.distant.enabled and config.lighting.sphere.enabled
