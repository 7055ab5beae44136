"""The scene part of the config: assets (single sources or libraries picked k of n), props, rotations."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from .config_fields import (
    PRIMITIVES,
    RGB,
    USD_SUFFIXES,
    IntRange,
    Range,
    StrictModel,
    Vec3,
    Vec3Range,
    _check_rgb,
    _meta,
    _resolve_path,
    _usd_file,
)


class RotationConfig(StrictModel):
    """Euler angles applied as USD ``rotateXYZ`` (degrees)."""

    roll: Range = Field(default=Range(min=0, max=0), **_meta("Roll (about X)", "deg"))
    pitch: Range = Field(default=Range(min=0, max=0), **_meta("Pitch (about Y)", "deg"))
    yaw: Range = Field(default=Range(min=0, max=360), **_meta("Yaw (about Z)", "deg"))


class LibraryItem(StrictModel):
    """One USD file of an asset library, with its class and how often it is picked."""

    file: str = Field(**_meta("File", description="USD file."))
    semantic_class: str = Field(alias="class", min_length=1, **_meta("Class"))
    weight: float = Field(default=1.0, gt=0, **_meta("Weight", "", "Relative chance of being picked."))

    @field_validator("file")
    @classmethod
    def _exists(cls, value: str, info: ValidationInfo) -> str:
        return str(_usd_file(value, info))


class AssetItem(BaseModel):
    """What one object slot shows: resolved from an asset (a source, or one file of a library)."""

    name: str  #: prim name of the slot, unique in the scene
    source: str  #: a primitive name or an absolute USD path
    semantic_class: str
    weight: float = 1.0

    @property
    def is_primitive(self) -> bool:
        return self.source in PRIMITIVES


class AssetConfig(StrictModel):
    """A kind of object scattered on the table each frame: one source, or a library that k of n are picked from."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", **_meta("Name", description="Prim name stem."))
    source: str | None = Field(
        default=None, **_meta("Source", description="A primitive (cube, sphere, cylinder, cone, capsule) or a USD file.")
    )
    semantic_class: str | None = Field(
        default=None, alias="class", **_meta("Class", description="Semantic class (library: default for its files).")
    )
    library: list[LibraryItem] | str | None = Field(
        default=None,
        **_meta("Library", description="USD files to pick from each frame: a list of {file, class, weight} or a folder."),
    )
    library_classes: str | None = Field(
        default=None, **_meta("Library classes", description="TOML file mapping a folder's file stems to classes.")
    )
    count: IntRange = Field(default=IntRange(min=1, max=1), **_meta("Count", "objects", "How many per frame (library: k of n)."))
    size: float | None = Field(
        default=None,
        gt=0,
        **_meta("Size", "m", "Primitive: edge or diameter (default 0.1). USD file: largest extent, None = native."),
    )
    scale: Range = Field(default=Range(min=1.0, max=1.0), **_meta("Scale", "x", "Uniform scale multiplier."))
    color: RGB | None = Field(default=None, **_meta("Colour", "", "Fixed base colour; None = randomized."))
    target: bool = Field(default=False, **_meta("Target", description="One visible object of these becomes the frame's target."))

    _check_color = field_validator("color")(classmethod(lambda cls, v: _check_rgb(v)))

    @field_validator("source")
    @classmethod
    def _source_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value in PRIMITIVES:
            return value
        return str(_usd_file(value, info))

    @field_validator("library_classes")
    @classmethod
    def _classes_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = _resolve_path(value, info)
        if not path.is_file():
            raise ValueError(f"class mapping file not found: {path}")
        return str(path)

    @field_validator("library")
    @classmethod
    def _library(cls, value: list[LibraryItem] | str | None, info: ValidationInfo) -> list[LibraryItem] | str | None:
        if not isinstance(value, str):
            return value
        folder = _resolve_path(value, info)
        if not folder.is_dir():
            raise ValueError(f"library folder not found: {folder}")
        if not any(p.suffix.lower() in USD_SUFFIXES for p in folder.iterdir()):
            raise ValueError(f"library folder has no USD files: {folder}")
        return str(folder)

    @field_validator("scale")
    @classmethod
    def _positive_scale(cls, value: Range) -> Range:
        if value.min <= 0:
            raise ValueError(f"scale must be positive, got min {value.min:g}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> AssetConfig:
        if (self.source is None) == (self.library is None):
            raise ValueError("give exactly one of 'source' or 'library'")
        if self.source is not None and not self.semantic_class:
            raise ValueError("'class' is required with 'source'")
        items = self.items()  # raises on unmapped library files
        if self.library is not None and self.count.max > len(items):
            raise ValueError(f"count max {self.count.max} exceeds the library's {len(items)} files")
        return self

    def items(self) -> list[AssetItem]:
        """The slots' contents: one item per library file, or the single source (shown ``count`` times)."""
        if self.source is not None:
            return [AssetItem(name=self.name, source=self.source, semantic_class=self.semantic_class or "")]
        if isinstance(self.library, list):
            entries = [(Path(i.file), i.semantic_class, i.weight) for i in self.library]
        else:
            mapping = tomllib.loads(Path(self.library_classes).read_text()) if self.library_classes else {}
            entries = []
            for path in sorted(p for p in Path(self.library).iterdir() if p.suffix.lower() in USD_SUFFIXES):
                cls_name = mapping.get(path.stem, self.semantic_class)
                if not cls_name:
                    raise ValueError(f"library file '{path.name}' has no class: add it to library_classes or set 'class'")
                entries.append((path, str(cls_name), 1.0))
        return [AssetItem(name=f"{self.name}_{path.stem}", source=str(path), semantic_class=c, weight=w)
                for path, c, w in entries]

    @property
    def is_library(self) -> bool:
        return self.library is not None

    @property
    def is_primitive(self) -> bool:
        return self.source in PRIMITIVES


class PropConfig(StrictModel):
    """Scenery (table, floor, walls, a gripper): a box of ``size`` or a USD file, optionally labelled and moved."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", **_meta("Name"))
    source: str = Field(default="cube", **_meta("Source", description="'cube' (a box of 'size') or a USD file."))
    position: Vec3 = Field(**_meta("Position", "m", "Centre of the box, or the USD file's origin."))
    rotation: Vec3 = Field(default=(0.0, 0.0, 0.0), **_meta("Rotation", "deg", "rotateXYZ Euler angles."))
    size: Vec3 | None = Field(default=None, **_meta("Size", "m", "Box edge lengths along x, y, z (cube only)."))
    color: RGB = Field(default=(0.6, 0.6, 0.6), **_meta("Colour"))
    semantic_class: str | None = Field(default=None, alias="class", **_meta("Class", description="None = unlabelled."))
    background: bool = Field(default=False, **_meta("Background", description="Recoloured/retextured by the background randomizer."))
    position_range: Vec3Range | None = Field(default=None, **_meta("Position range", "m", "Randomized position (overrides position)."))
    rotation_range: RotationConfig | None = Field(default=None, **_meta("Rotation range", "deg", "Randomized rotation (overrides rotation)."))

    _check_color = field_validator("color")(classmethod(lambda cls, v: _check_rgb(v)))

    @field_validator("source")
    @classmethod
    def _source(cls, value: str, info: ValidationInfo) -> str:
        return value if value == "cube" else str(_usd_file(value, info))

    @field_validator("size")
    @classmethod
    def _positive_size(cls, value: Vec3 | None) -> Vec3 | None:
        if value is not None and any(s <= 0 for s in value):
            raise ValueError(f"every edge must be positive, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _cube_has_size(self) -> PropConfig:
        if self.source == "cube" and self.size is None:
            raise ValueError("a cube prop needs 'size'")
        return self

    @property
    def is_randomized(self) -> bool:
        return self.position_range is not None or self.rotation_range is not None
