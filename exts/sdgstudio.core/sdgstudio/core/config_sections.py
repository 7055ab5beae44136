"""The randomizer and output sections of the config: lighting, materials, pose, camera, physics, background,
depth sensor, sequences, output. Lengths are meters, angles degrees, masses kilograms, light intensities UsdLux.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .config_fields import IMAGE_SUFFIXES, Range, StrictModel, Vec3, Vec3Range, _meta, _resolve_path
from .config_scene import RotationConfig


class DistantLightConfig(StrictModel):
    """The sun: a distant light aimed by elevation and azimuth. ``enabled = false`` switches it off."""

    enabled: bool = Field(
        default=True, **_meta("Enabled", description="Untick to switch the sun off (its settings are kept).")
    )
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
    """The lamp: a sphere light placed in ``position``. ``enabled = false`` switches it off."""

    enabled: bool = Field(
        default=True, **_meta("Enabled", description="Untick to switch the lamp off (its settings are kept).")
    )
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
    """The sun, the lamp and the ambient dome. A light switched off adds no light and draws no random numbers."""

    distant: DistantLightConfig = Field(default_factory=DistantLightConfig, **_meta("Sun (distant light)"))
    sphere: SphereLightConfig = Field(default_factory=SphereLightConfig, **_meta("Lamp (sphere light)"))
    ambient: Range = Field(default=Range(min=150, max=400), **_meta("Ambient (dome light)", "UsdLux"))

    @field_validator("distant", "sphere", mode="before")
    @classmethod
    def _none_is_off(cls, v: object) -> object:
        """``None`` (how older code and window states switched a light off) is the light with ``enabled = false``:
        one spelling of "off", the one TOML and YAML can write."""
        return {"enabled": False} if v is None else v

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


class ExportOptions(StrictModel):
    """Label filters and splits of the dataset exports (``output.formats`` and ``sdgstudio export``)."""

    split: dict[str, float] = Field(
        default_factory=lambda: {"train": 1.0},
        **_meta("Split", "fraction", "Fraction of frames per split (train, val, test), summing to 1; a frame's split "
                "comes from a hash of (seed, frame)."),
    )
    min_visible: float = Field(default=0.0, ge=0, le=1, **_meta("Minimum visible fraction", "0..1",
                                                               "Drop objects less visible than this."))
    min_pixels: int = Field(default=1, ge=1, **_meta("Minimum pixels", "px", "Drop objects with fewer visible pixels."))
    max_truncation: float = Field(default=1.0, ge=0, le=1, **_meta("Maximum truncation", "0..1",
                                                                  "Drop objects cut by the image border more than this."))

    @field_validator("split")
    @classmethod
    def _split(cls, value: dict[str, float]) -> dict[str, float]:
        from .export.common import Split

        return Split.parse(value).to_json()


class OutputConfig(StrictModel):
    dir: str = Field(default="out", **_meta("Output folder"))
    frames: int = Field(default=24, ge=1, le=100_000_000, **_meta("Frames", "frames"))
    backend: Literal["raster", "replicator"] = Field(default="raster", **_meta("Backend"))
    rgb_format: Literal["png", "jpg"] = Field(default="png", **_meta("RGB format"))
    formats: list[Literal["coco", "yolo", "kitti", "bop"]] = Field(default_factory=list, **_meta("Export formats"))
    rt_subframes: int = Field(default=4, ge=1, le=256, **_meta("RT subframes", "subframes", "Replicator only."))
    export: ExportOptions = Field(default_factory=ExportOptions, **_meta("Export options"))
