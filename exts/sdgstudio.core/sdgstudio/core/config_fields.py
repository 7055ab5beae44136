"""Building blocks of the config schema: strict models, ranges, field metadata and path checks.

Every field carries a title, a unit (``json_schema_extra["unit"]``) and a description (``_meta``); the Kit
window and docs/config.md are generated from them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

PRIMITIVES = ("cube", "sphere", "cylinder", "cone", "capsule")
USD_SUFFIXES = (".usd", ".usda", ".usdc", ".usdz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
EXPORT_FORMATS = ("coco", "yolo", "kitti", "bop")
BACKENDS = ("raster", "replicator")


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


def _usd_file(value: str, info: ValidationInfo) -> Path:
    path = _resolve_path(value, info)
    if path.suffix.lower() not in USD_SUFFIXES:
        raise ValueError(f"'{value}' is neither a primitive ({', '.join(PRIMITIVES)}) nor a USD file")
    if not path.is_file():
        raise ValueError(f"USD file not found: {path}")
    return path
