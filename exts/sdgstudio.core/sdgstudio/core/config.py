"""The SDG Studio configuration: one typed schema shared by the CLI, the Kit window and the Replicator runner.

``SDGConfig`` (this module) assembles the sections (``config_scene``, ``config_sections``) built from the schema's building blocks
(``config_fields``); loading, saving and the JSON Schema live here too, and every name of those modules is
importable from ``sdgstudio.core.config``. Paths (USD assets, texture folders) resolve against the config file's
folder when loaded. ``sdgstudio schema`` exports the JSON Schema; docs/config.md is generated from it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from .config_fields import (  # noqa: F401  (re-exported: the schema's public names)
    BACKENDS,
    EXPORT_FORMATS,
    IMAGE_SUFFIXES,
    PRIMITIVES,
    RGB,
    USD_SUFFIXES,
    IntRange,
    Range,
    StrictModel,
    Vec3,
    Vec3Range,
    _meta,
)
from .config_scene import AssetConfig, AssetItem, LibraryItem, PropConfig, RotationConfig  # noqa: F401
from .config_sections import (  # noqa: F401  (re-exported)
    BackgroundConfig,
    CameraConfig,
    DepthSensorConfig,
    DistantLightConfig,
    ExportOptions,
    LightingConfig,
    MaterialsConfig,
    OutputConfig,
    PhysicsConfig,
    PoseConfig,
    SequenceConfig,
    SphereLightConfig,
)
from .frame import ANNOTATORS


class ConfigError(ValueError):
    """A config that cannot be used; ``problems`` holds one ``(field path, message)`` pair per problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))

    def lines(self) -> list[str]:
        return [f"{self.source}: {path}: {msg}" for path, msg in self.problems]


class SDGConfig(StrictModel):
    """A complete SDG Studio run: scene, what to label, how to randomize, where to write."""

    name: str = Field(default="scene", **_meta("Scene name"))
    seed: int = Field(default=0, ge=0, le=2**63 - 1, **_meta("Seed"))
    classes: list[str] = Field(
        default_factory=list,
        **_meta("Classes", description="Ordered class list: class id = position + 1. Default: order of appearance."),
    )
    annotators: list[str] = Field(
        default_factory=lambda: [a for a in ANNOTATORS if a != "optical_flow"], **_meta("Annotators")
    )
    props: list[PropConfig] = Field(default_factory=list, **_meta("Props"))
    assets: list[AssetConfig] = Field(min_length=1, **_meta("Assets"))
    lighting: LightingConfig = Field(default_factory=LightingConfig, **_meta("Lighting"))
    materials: MaterialsConfig = Field(default_factory=MaterialsConfig, **_meta("Materials & textures"))
    pose: PoseConfig = Field(default_factory=PoseConfig, **_meta("Object pose & scale"))
    camera: CameraConfig = Field(default_factory=CameraConfig, **_meta("Camera"))
    physics: PhysicsConfig = Field(default_factory=PhysicsConfig, **_meta("Physics"))
    background: BackgroundConfig = Field(default_factory=BackgroundConfig, **_meta("Background"))
    depth_sensor: DepthSensorConfig = Field(default_factory=DepthSensorConfig, **_meta("Depth sensor"))
    sequence: SequenceConfig = Field(default_factory=SequenceConfig, **_meta("Sequences"))
    output: OutputConfig = Field(default_factory=OutputConfig, **_meta("Output"))

    @field_validator("annotators")
    @classmethod
    def _known_annotators(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in ANNOTATORS]
        if unknown:
            raise ValueError(f"unknown annotator(s) {unknown}; expected any of {list(ANNOTATORS)}")
        if len(set(value)) != len(value):
            raise ValueError(f"annotators listed twice: {sorted({a for a in value if value.count(a) > 1})}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SDGConfig:
        names = [a.name for a in self.assets] + [p.name for p in self.props]
        names += [i.name for a in self.assets if a.is_library for i in a.items()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"asset/prop names must be unique, repeated: {dupes}")
        used = [i.semantic_class for a in self.assets for i in a.items()]
        used += [p.semantic_class for p in self.props if p.semantic_class]
        if self.classes:
            if len(set(self.classes)) != len(self.classes):
                raise ValueError(f"classes listed twice: {self.classes}")
            missing = sorted(set(used) - set(self.classes))
            if missing:
                raise ValueError(f"classes {missing} are used by assets but missing from 'classes'")
        else:
            self.classes = list(dict.fromkeys(used))
        from .export.common import FORMAT_NEEDS

        for fmt in self.output.formats:
            missing = [a for a in FORMAT_NEEDS[fmt] if a not in self.annotators]
            if missing:
                raise ValueError(f"output.formats: {fmt} needs the annotators {missing}")
        if sum(a.count.max for a in self.assets) == 0:
            raise ValueError("every asset has count max 0: nothing to label")
        return self

    def asset_items(self) -> list[tuple[AssetConfig, AssetItem]]:
        """Every (asset, item) pair in config order: what the stage builds slots for."""
        return [(asset, item) for asset in self.assets for item in asset.items()]

    def class_id(self, name: str) -> int:
        """Stable 1-based class id (0 is background)."""
        return self.classes.index(name) + 1


# --------------------------------------------------------------------------------------------- loading / saving


def _format_problem(err: dict) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after[_ordered(), Range]",))
    loc = re.sub(r"\.?function-[a-z]+\[[^\]]*\]", "", loc) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] not in ("missing",):
        value = err.get("input")
        shown = str(list(value)) if isinstance(value, list | tuple) else str(value)
        if not isinstance(value, dict) and shown not in msg:
            msg = f"{msg} (got {value!r})"
    return loc, msg


def config_from_dict(data: Any, *, base_dir: Path | str = ".", source: str = "<config>") -> SDGConfig:
    """Validate a mapping into an SDGConfig; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, [("(top level)", f"expected a table of settings, got {type(data).__name__}")])
    try:
        return SDGConfig.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        raise ConfigError(source, [_format_problem(e) for e in exc.errors()]) from None


def load_config(path: Path | str) -> SDGConfig:
    """Read a TOML or YAML config file; relative paths inside resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), [("(file)", "config file not found")])
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(str(path), [("(file)", "expected a .toml, .yaml or .yml file")])
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(str(path), [("(syntax)", first)]) from None
    return config_from_dict(data, base_dir=path.parent.resolve(), source=str(path))


def config_to_dict(config: SDGConfig) -> dict:
    """A plain mapping (aliases as in files, no None values) that ``config_from_dict`` reads back unchanged."""
    return config.model_dump(mode="json", by_alias=True, exclude_none=True)


def save_config(config: SDGConfig, path: Path | str) -> None:
    """Write TOML or YAML (by suffix) atomically: a crash never leaves a half-written config."""
    import tomli_w

    from .files import write_file_durably

    path = Path(path)
    data = config_to_dict(config)
    if path.suffix.lower() == ".toml":
        text = tomli_w.dumps(data)
    elif path.suffix.lower() in (".yaml", ".yml"):
        text = yaml.safe_dump(data, sort_keys=False)
    else:
        raise ConfigError(str(path), [("(file)", "expected a .toml, .yaml or .yml file")])
    write_file_durably(path, text.encode("utf-8"), drop_cache=False)


def json_schema() -> dict:
    """The config's JSON Schema (what ``sdgstudio schema`` prints)."""
    return SDGConfig.model_json_schema(by_alias=True)
