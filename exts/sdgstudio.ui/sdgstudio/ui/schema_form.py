"""The window's form, described from the config schema: one ``FieldSpec`` per pydantic field, no omni.ui here.

Every field of ``SDGConfig`` (recursively) becomes a spec carrying what its widget needs: title, unit,
description (the tooltip), bounds (``ge``/``gt``/``le``/``lt``), choices, default, and a ``kind`` that picks the
widget. Adding a field to the schema therefore adds its widget with no UI code. The only hand-written knowledge
is ``SECTIONS`` (which top-level fields share a collapsable section, in which order) and ``OVERRIDES`` (choices
the type does not carry, e.g. the annotator names).

Kinds: ``bool``, ``int``, ``float``, ``str``, ``choice`` (a Literal), ``multi_choice`` (a list of Literals),
``string_list`` (comma-separated), ``range`` / ``int_range`` (a min/max pair), ``vec`` (a fixed-length tuple),
``model`` (nested fields), ``model_list`` (a list of models: add/remove rows), ``path_or_list`` (a folder path or a
list of models, e.g. an asset library).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from sdgstudio.core.config import IntRange, Range, SDGConfig
from sdgstudio.core.frame import ANNOTATORS

#: Collapsable sections of the window: (title, top-level keys). Keys not listed land in "More settings".
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Assets", ("assets",)),
    ("Annotators", ("annotators",)),
    ("Lighting", ("lighting",)),
    ("Materials & textures", ("materials",)),
    ("Object pose & scale", ("pose",)),
    ("Camera", ("camera",)),
    ("Physics", ("physics",)),
    ("Background", ("background",)),
    ("Depth sensor", ("depth_sensor",)),
    ("Sequences & motion", ("sequence",)),
    ("Scene & props", ("name", "classes", "props")),
    ("Output", ("output", "seed")),
)
OTHER_SECTION = "More settings"

#: Knowledge the type annotations do not carry, by schema path.
OVERRIDES: dict[str, dict[str, Any]] = {
    "annotators": {"kind": "multi_choice", "options": tuple(ANNOTATORS),
                   "option_descriptions": tuple(ANNOTATORS.values())},
}


@dataclass(frozen=True)
class FieldSpec:
    key: str  #: key in the config mapping: the alias where there is one ("class")
    path: str  #: schema path, list items as ``[]``: "assets[].count"
    title: str
    kind: str
    unit: str = ""
    description: str = ""
    optional: bool = False  #: None is allowed (a checkbox switches the value on and off)
    required: bool = False  #: no default: a new item must be given one
    default: Any = None  #: JSON form (as in a config file)
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    options: tuple[str, ...] = ()
    option_descriptions: tuple[str, ...] = ()
    item_type: str = "float"  #: element type of ``vec`` ("int" or "float")
    size: int = 0  #: length of ``vec``
    children: tuple[FieldSpec, ...] = ()  #: fields of a ``model`` or of one item of a list

    @property
    def label(self) -> str:
        return f"{self.title} ({self.unit})" if self.unit else self.title

    @property
    def bounds_text(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f">= {self.minimum:g}")
        if self.exclusive_minimum is not None:
            parts.append(f"> {self.exclusive_minimum:g}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum:g}")
        if self.exclusive_maximum is not None:
            parts.append(f"< {self.exclusive_maximum:g}")
        return ", ".join(parts)

    @property
    def tooltip(self) -> str:
        lines = [self.description] if self.description else []
        if self.bounds_text:
            lines.append(f"Allowed: {self.bounds_text}" + (f" {self.unit}" if self.unit else ""))
        if self.kind in ("range", "int_range"):
            lines.append("A range sampled uniformly per frame: min must not exceed max.")
        if self.optional:
            lines.append("Optional: untick to leave it unset.")
        return "\n".join(lines) or self.title

    def child(self, key: str) -> FieldSpec:
        return next(c for c in self.children if c.key == key)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, list):
        return [_json_default(v) for v in value]
    return value


def _strip_optional(annotation: Any) -> tuple[bool, list[Any]]:
    """(None allowed, the other union members)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(members) < len(typing.get_args(annotation)), members
    return False, [annotation]


def _unwrap_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _kind_of(annotation: Any) -> dict[str, Any]:
    """Widget kind (and its extra spec fields) for one non-optional annotation."""
    annotation = _unwrap_annotated(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return {"kind": "bool"}
    if annotation is int:
        return {"kind": "int"}
    if annotation is float:
        return {"kind": "float"}
    if annotation is str:
        return {"kind": "str"}
    if origin is Literal:
        return {"kind": "choice", "options": tuple(str(a) for a in args)}
    if _is_model(annotation) and issubclass(annotation, IntRange):
        return {"kind": "int_range"}
    if _is_model(annotation) and issubclass(annotation, Range):
        return {"kind": "range"}
    if _is_model(annotation):
        return {"kind": "model", "model": annotation}
    if origin is tuple:
        elements = [_unwrap_annotated(a) for a in args]
        return {"kind": "vec", "size": len(elements), "item_type": "int" if elements[0] is int else "float"}
    if origin is list:
        item = _unwrap_annotated(args[0])
        if typing.get_origin(item) is Literal:
            return {"kind": "multi_choice", "options": tuple(str(a) for a in typing.get_args(item))}
        if _is_model(item):
            return {"kind": "model_list", "model": item}
        return {"kind": "string_list"}
    raise TypeError(f"no widget for the annotation {annotation!r}")


def describe_field(key: str, info: Any, parent_path: str = "") -> FieldSpec:
    """The spec of one pydantic ``FieldInfo``."""
    path = f"{parent_path}.{key}" if parent_path else key
    optional, members = _strip_optional(info.annotation)
    kinds = [_kind_of(m) for m in members]
    if len(kinds) == 1:
        spec = dict(kinds[0])
    elif {k["kind"] for k in kinds} == {"model_list", "str"}:
        spec = {"kind": "path_or_list", "model": next(k["model"] for k in kinds if k["kind"] == "model_list")}
    else:
        raise TypeError(f"{path}: no widget for the union {info.annotation!r}")
    spec.update(OVERRIDES.get(path, {}))
    model = spec.pop("model", None)
    children: tuple[FieldSpec, ...] = ()
    if model is not None:
        child_path = path if spec["kind"] == "model" else f"{path}[]"
        children = describe_model(model, child_path)
    bounds: dict[str, float] = {}
    for meta in info.metadata:
        for attr, name in (("ge", "minimum"), ("gt", "exclusive_minimum"), ("le", "maximum"), ("lt", "exclusive_maximum")):
            if getattr(meta, attr, None) is not None:
                bounds[name] = float(getattr(meta, attr))
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    default = info.get_default(call_default_factory=True)
    required = default is PydanticUndefined
    return FieldSpec(
        key=key, path=path, title=info.title or key.replace("_", " ").capitalize(), unit=str(extra.get("unit", "")),
        description=info.description or "", optional=optional, required=required,
        default=None if required else _json_default(default), children=children, **bounds, **spec,
    )


def describe_model(model: type[BaseModel], parent_path: str = "") -> tuple[FieldSpec, ...]:
    """Specs of every field of ``model``, in declaration order (keys are the aliases config files use)."""
    return tuple(describe_field(info.alias or name, info, parent_path) for name, info in model.model_fields.items())


def config_specs() -> tuple[FieldSpec, ...]:
    return describe_model(SDGConfig)


def sections(specs: tuple[FieldSpec, ...] | None = None) -> list[tuple[str, list[FieldSpec]]]:
    """The window's sections in order: (title, top-level specs); every top-level field appears exactly once."""
    specs = specs if specs is not None else config_specs()
    by_key = {s.key: s for s in specs}
    out, placed = [], set()
    for title, keys in SECTIONS:
        chosen = [by_key[k] for k in keys if k in by_key]
        placed.update(s.key for s in chosen)
        if chosen:
            out.append((title, chosen))
    rest = [s for s in specs if s.key not in placed]
    if rest:
        out.append((OTHER_SECTION, rest))
    return out


def leaf_paths(specs: tuple[FieldSpec, ...] | None = None) -> list[str]:
    """Schema paths the window shows a value widget for (models and lists are containers, not leaves)."""
    specs = specs if specs is not None else config_specs()
    out: list[str] = []
    for spec in specs:
        if spec.kind in ("model", "model_list"):
            out += leaf_paths(spec.children)
        elif spec.kind == "path_or_list":
            out.append(spec.path)
            out += leaf_paths(spec.children)
        else:
            out.append(spec.path)
    return out


def template(spec: FieldSpec) -> Any:
    """A value to start from when an optional field is switched on or a list item is added."""
    if spec.default is not None:
        return spec.default
    kind = spec.kind
    if kind == "model":
        return {c.key: template(c) for c in spec.children if c.required or c.default is not None}
    if kind in ("range", "int_range"):
        low = spec.minimum if spec.minimum is not None else 0
        return {"min": low, "max": low}
    if kind == "vec":
        return [0] * spec.size if spec.item_type == "int" else [0.0] * spec.size
    if kind in ("model_list", "multi_choice", "string_list", "path_or_list"):
        return []
    if kind == "choice":
        return spec.options[0]
    if kind == "bool":
        return False
    if kind in ("int", "float"):
        cast = int if kind == "int" else float
        if spec.minimum is not None:
            return cast(spec.minimum)
        if spec.exclusive_minimum is not None:
            return cast(spec.exclusive_minimum + 1)
        return cast(0)
    return ""


def item_template(list_spec: FieldSpec) -> dict:
    """A new item of a ``model_list`` / ``path_or_list``: required fields plus those with defaults."""
    return {c.key: template(c) for c in list_spec.children if c.required or c.default is not None}


def find_spec(path: str, specs: tuple[FieldSpec, ...] | None = None) -> FieldSpec:
    """The spec at a schema path ("assets[].count")."""
    specs = specs if specs is not None else config_specs()
    for spec in specs:
        if spec.path == path:
            return spec
        if path.startswith(spec.path + ".") or path.startswith(spec.path + "[]."):
            return find_spec(path, spec.children)
    raise KeyError(path)


def schema_path(path: tuple) -> str:
    """("assets", 0, "count") -> "assets[].count"."""
    out = ""
    for part in path:
        out += "[]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out

