"""The SDG Studio configuration: one typed schema shared by the CLI, the Kit window and the Replicator runner.

Every field carries a title, a unit (``json_schema_extra["unit"]``) and a description; the UI builds its
widgets from this metadata, and ``sdgstudio schema`` exports it as JSON Schema. Lengths are meters, angles
degrees, masses kilograms, light intensities UsdLux units (see docs/config.md for the raster mapping).
Paths (USD assets, texture folders) are resolved against the config file's folder when loaded.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .frame import ANNOTATORS

PRIMITIVES = ("cube", "sphere", "cylinder", "cone", "capsule")
USD_SUFFIXES = (".usd", ".usda", ".usdc", ".usdz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
EXPORT_FORMATS = ("coco", "yolo", "kitti", "bop")
BACKENDS = ("raster", "replicator")


class ConfigError(ValueError):
    """A config that cannot be used; ``problems`` holds one ``(field path, message)`` pair per problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))

    def lines(self) -> list[str]:
        return [f"{self.source}: {path}: {msg}" for path, msg in self.problems]


def _meta(title: str, unit: str = "", description: str = "", **extra: Any) -> dict:
    return {"title": title, "description": description, "json_schema_extra": {"unit": unit, **extra}}


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in a config must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_assignment=True)


class Range(StrictModel):
    """A closed interval sampled uniformly. Written ``[min, max]``, ``{min = a, max = b}`` or one number."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"ui": "range"})

    min: float
    max: float

    @model_validator(mode="before")
    @classmethod
    def _from_short_forms(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"min": value, "max": value}
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ValueError(f"expected [min, max], got {len(value)} values")
            return {"min": value[0], "max": value[1]}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("min and max must be finite numbers")
        if self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self

    def within(self, lo: float, hi: float, name: str = "value") -> Range:
        if self.min < lo or self.max > hi:
            raise ValueError(f"{name} range [{self.min:g}, {self.max:g}] must lie within [{lo:g}, {hi:g}]")
        return self


class IntRange(Range):
    """A closed interval of whole numbers (counts)."""

    min: int = Field(ge=0)
    max: int = Field(ge=0)


Vec3 = tuple[float, float, float]
RGB = Annotated[tuple[float, float, float], Field(description="linear RGB, each 0..1")]


class Vec3Range(StrictModel):
    """An axis-aligned box ``min``..``max`` (meters) sampled uniformly."""

    min: Vec3
    max: Vec3

    @model_validator(mode="after")
    def _ordered(self) -> Vec3Range:
        for axis, lo, hi in zip("xyz", self.min, self.max, strict=True):
            if lo > hi:
                raise ValueError(f"min.{axis} ({lo:g}) is greater than max.{axis} ({hi:g})")
        return self


def _check_rgb(value: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
    if value is not None and any(not (0.0 <= c <= 1.0) for c in value):
        raise ValueError(f"colour components must be within 0..1, got {list(value)}")
    return value


def _resolve_path(value: str, info: ValidationInfo) -> Path:
    base = Path((info.context or {}).get("base_dir", "."))
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


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


def _usd_file(value: str, info: ValidationInfo) -> Path:
    path = _resolve_path(value, info)
    if path.suffix.lower() not in USD_SUFFIXES:
        raise ValueError(f"'{value}' is neither a primitive ({', '.join(PRIMITIVES)}) nor a USD file")
    if not path.is_file():
        raise ValueError(f"USD file not found: {path}")
    return path


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


class DistantLightConfig(StrictModel):
    intensity: Range = Field(default=Range(min=1500, max=3000), **_meta("Intensity", "UsdLux"))
    color_temperature: Range = Field(default=Range(min=4500, max=7500), **_meta("Colour temperature", "K"))
    elevation: Range = Field(default=Range(min=35, max=85), **_meta("Elevation", "deg", "Sun height above the horizon."))
    azimuth: Range = Field(default=Range(min=0, max=360), **_meta("Azimuth", "deg"))

    @field_validator("elevation")
    @classmethod
    def _elevation(cls, v: Range) -> Range:
        return v.within(-90, 90, "elevation")

    @field_validator("color_temperature")
    @classmethod
    def _kelvin(cls, v: Range) -> Range:
        return v.within(1000, 40000, "colour temperature")


class SphereLightConfig(StrictModel):
    intensity: Range = Field(default=Range(min=20000, max=60000), **_meta("Intensity", "UsdLux"))
    color_temperature: Range = Field(default=Range(min=2700, max=6500), **_meta("Colour temperature", "K"))
    radius: float = Field(default=0.1, gt=0, **_meta("Radius", "m"))
    position: Vec3Range = Field(
        default=Vec3Range(min=(-1.0, -1.0, 1.8), max=(1.0, 1.0, 2.4)), **_meta("Position", "m")
    )

    @field_validator("color_temperature")
    @classmethod
    def _kelvin(cls, v: Range) -> Range:
        return v.within(1000, 40000, "colour temperature")


class LightingConfig(StrictModel):
    distant: DistantLightConfig | None = Field(default_factory=DistantLightConfig, **_meta("Sun (distant light)"))
    sphere: SphereLightConfig | None = Field(default_factory=SphereLightConfig, **_meta("Lamp (sphere light)"))
    ambient: Range = Field(default=Range(min=150, max=400), **_meta("Ambient (dome light)", "UsdLux"))

    @field_validator("ambient")
    @classmethod
    def _ambient(cls, v: Range) -> Range:
        return v.within(0, 1e7, "ambient")


class MaterialsConfig(StrictModel):
    """Base colour (HSV), roughness and metallic of every object without a fixed colour."""

    hue: Range = Field(default=Range(min=0.0, max=1.0), **_meta("Hue", "0..1"))
    saturation: Range = Field(default=Range(min=0.3, max=0.9), **_meta("Saturation", "0..1"))
    value: Range = Field(default=Range(min=0.35, max=0.95), **_meta("Value", "0..1"))
    roughness: Range = Field(default=Range(min=0.3, max=0.9), **_meta("Roughness", "0..1"))
    metallic: Range = Field(default=Range(min=0.0, max=0.2), **_meta("Metallic", "0..1"))

    @field_validator("hue", "saturation", "value", "roughness", "metallic")
    @classmethod
    def _unit_interval(cls, v: Range, info: ValidationInfo) -> Range:
        return v.within(0.0, 1.0, info.field_name)


class PoseConfig(StrictModel):
    """Where objects are scattered: in ``region`` (meters), resting on ``region.min.z``, without overlap."""

    region: Vec3Range = Field(
        default=Vec3Range(min=(-0.45, -0.3, 0.75), max=(0.45, 0.3, 0.75)), **_meta("Region", "m")
    )
    rotation: RotationConfig = Field(default_factory=RotationConfig, **_meta("Rotation"))
    min_gap: float = Field(default=0.01, ge=0, **_meta("Minimum gap", "m", "Clearance between footprints."))
    max_attempts: int = Field(default=200, ge=1, le=100000, **_meta("Placement attempts", "tries"))


class CameraConfig(StrictModel):
    """A pinhole camera orbiting ``target``."""

    resolution: tuple[int, int] = Field(default=(640, 480), **_meta("Resolution", "px", "Width, height."))
    focal_length: Range = Field(default=Range(min=18.0, max=24.0), **_meta("Focal length", "mm"))
    horizontal_aperture: float = Field(default=20.955, gt=0, **_meta("Horizontal aperture", "mm"))
    clipping_range: tuple[float, float] = Field(default=(0.01, 100.0), **_meta("Clipping range", "m"))
    target: Vec3 = Field(default=(0.0, 0.0, 0.75), **_meta("Look-at target", "m"))
    distance: Range = Field(default=Range(min=1.2, max=1.8), **_meta("Orbit distance", "m"))
    azimuth: Range = Field(default=Range(min=0, max=360), **_meta("Orbit azimuth", "deg"))
    elevation: Range = Field(default=Range(min=25, max=60), **_meta("Orbit elevation", "deg"))
    look_at_jitter: float = Field(default=0.05, ge=0, **_meta("Look-at jitter", "m"))
    mount: str | None = Field(
        default=None,
        **_meta("Mount prim", "", "Prim path the camera rides on (e.g. a robot's wrist); None = orbit the target."),
    )
    mount_offset: Vec3 = Field(default=(0.0, 0.0, 0.0), **_meta("Mount offset", "m", "Camera position in the mount's frame."))
    mount_rotation: Vec3 = Field(
        default=(0.0, 0.0, 0.0), **_meta("Mount rotation", "deg", "rotateXYZ of the camera in the mount's frame (USD camera looks down -Z).")
    )

    @field_validator("mount")
    @classmethod
    def _prim_path(cls, v: str | None) -> str | None:
        from pxr import Sdf

        if v is not None and not (Sdf.Path.IsValidPathString(v) and v.startswith("/")):
            raise ValueError(f"expected an absolute prim path like /World/Props/gripper/wrist, got '{v}'")
        return v

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: tuple[int, int]) -> tuple[int, int]:
        if any(n < 1 or n > 16384 for n in v):
            raise ValueError(f"width and height must be within 1..16384 pixels, got {list(v)}")
        return v

    @field_validator("focal_length", "distance")
    @classmethod
    def _positive(cls, v: Range, info: ValidationInfo) -> Range:
        if v.min <= 0:
            raise ValueError(f"{info.field_name} must be positive, got min {v.min:g}")
        return v

    @field_validator("elevation")
    @classmethod
    def _elevation(cls, v: Range) -> Range:
        return v.within(-89.9, 89.9, "elevation")

    @field_validator("clipping_range")
    @classmethod
    def _clipping(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not (0 < v[0] < v[1]):
            raise ValueError(f"expected 0 < near < far, got {list(v)}")
        return v


class PhysicsConfig(StrictModel):
    """Rigid-body properties written as UsdPhysics attributes (used when Isaac Sim simulates the scene)."""

    mass: Range = Field(default=Range(min=0.1, max=1.0), **_meta("Mass", "kg"))
    static_friction: Range = Field(default=Range(min=0.4, max=1.0), **_meta("Static friction", "coefficient"))
    dynamic_friction: Range = Field(default=Range(min=0.3, max=0.8), **_meta("Dynamic friction", "coefficient"))
    restitution: Range = Field(default=Range(min=0.0, max=0.3), **_meta("Restitution", "0..1"))

    @field_validator("mass")
    @classmethod
    def _mass(cls, v: Range) -> Range:
        if v.min <= 0:
            raise ValueError(f"mass must be positive, got min {v.min:g}")
        return v

    @field_validator("static_friction", "dynamic_friction")
    @classmethod
    def _friction(cls, v: Range, info: ValidationInfo) -> Range:
        return v.within(0.0, 10.0, info.field_name)

    @field_validator("restitution")
    @classmethod
    def _restitution(cls, v: Range) -> Range:
        return v.within(0.0, 1.0, "restitution")


class BackgroundConfig(StrictModel):
    """Colour or texture of the props marked ``background = true``."""

    hue: Range = Field(default=Range(min=0.0, max=1.0), **_meta("Hue", "0..1"))
    saturation: Range = Field(default=Range(min=0.0, max=0.4), **_meta("Saturation", "0..1"))
    value: Range = Field(default=Range(min=0.3, max=0.9), **_meta("Value", "0..1"))
    textures: str | None = Field(default=None, **_meta("Texture folder", "", "Images to pick from; None = colour only."))
    texture_probability: float = Field(default=0.5, ge=0, le=1, **_meta("Texture probability", "0..1"))

    @field_validator("hue", "saturation", "value")
    @classmethod
    def _unit_interval(cls, v: Range, info: ValidationInfo) -> Range:
        return v.within(0.0, 1.0, info.field_name)

    @field_validator("textures")
    @classmethod
    def _folder(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = _resolve_path(value, info)
        if not path.is_dir():
            raise ValueError(f"texture folder not found: {path}")
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            raise ValueError(f"texture folder has no images ({', '.join(IMAGE_SUFFIXES)}): {path}")
        return str(path)

    def texture_files(self) -> list[str]:
        if self.textures is None:
            return []
        return sorted(str(p) for p in Path(self.textures).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class DepthSensorConfig(StrictModel):
    """A depth-camera model applied to a copy of the exact depth (written as ``depth_sensor``; 0 = no reading)."""

    enabled: bool = Field(default=False, **_meta("Enabled"))
    min_range: float = Field(default=0.1, ge=0, **_meta("Minimum range", "m", "Closer readings are dropped."))
    max_range: float = Field(default=10.0, gt=0, **_meta("Maximum range", "m", "Farther readings are dropped."))
    noise_coefficient: float = Field(
        default=0.0, ge=0, **_meta("Noise coefficient", "1/m", "Gaussian noise sigma = coefficient x depth^2.")
    )
    dropout_angle: float = Field(
        default=90.0, gt=0, le=90, **_meta("Dropout angle", "deg", "Readings where the surface is seen at a larger incidence angle are dropped.")
    )
    quantization: float = Field(default=0.0, ge=0, **_meta("Quantization", "m", "Step of the reported depth; 0 = none."))

    @model_validator(mode="after")
    def _ranges(self) -> DepthSensorConfig:
        if self.min_range >= self.max_range:
            raise ValueError(f"min_range ({self.min_range:g}) must be below max_range ({self.max_range:g})")
        return self


class SequenceConfig(StrictModel):
    """Frames that follow each other: objects and camera move, so optical flow and velocities mean something.

    Motion is sampled once per sequence (from the seed and the sequence's first frame), so any frame still
    renders alone. ``length = 1`` gives independent frames.
    """

    length: int = Field(default=1, ge=1, le=1_000_000, **_meta("Frames per sequence", "frames"))
    frame_rate: float = Field(default=30.0, gt=0, le=10000, **_meta("Frame rate", "frames/s"))
    linear_velocity: Vec3Range = Field(
        default=Vec3Range(min=(0.0, 0.0, 0.0), max=(0.0, 0.0, 0.0)), **_meta("Object linear velocity", "m/s")
    )
    angular_velocity: Vec3Range = Field(
        default=Vec3Range(min=(0.0, 0.0, 0.0), max=(0.0, 0.0, 0.0)),
        **_meta("Object angular velocity", "deg/s", "Rates of the rotateXYZ Euler angles."),
    )
    orbit_rate: Range = Field(default=Range(min=0, max=0), **_meta("Camera orbit rate", "deg/s"))
    dolly_rate: Range = Field(default=Range(min=0, max=0), **_meta("Camera dolly rate", "m/s", "Change of orbit distance."))
    camera_jitter: float = Field(default=0.0, ge=0, **_meta("Camera jitter", "m", "Per-frame random offset of the camera."))
    backward_flow: bool = Field(default=False, **_meta("Backward flow", description="Also write flow from t to t-1."))


class OutputConfig(StrictModel):
    dir: str = Field(default="out", **_meta("Output folder"))
    frames: int = Field(default=24, ge=1, le=100_000_000, **_meta("Frames", "frames"))
    backend: Literal["raster", "replicator"] = Field(default="raster", **_meta("Backend"))
    rgb_format: Literal["png", "jpg"] = Field(default="png", **_meta("RGB format"))
    formats: list[Literal["coco", "yolo", "kitti", "bop"]] = Field(default_factory=list, **_meta("Export formats"))
    rt_subframes: int = Field(default=4, ge=1, le=256, **_meta("RT subframes", "subframes", "Replicator only."))


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
