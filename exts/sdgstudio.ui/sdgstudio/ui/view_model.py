"""The window's state without omni.ui: a draft config (the mapping a config file holds), its validation, and what
the window enables. Pure Python, so pytest covers it.

Widgets write plain values into the draft by path (``("lighting", "ambient", "min")``); every change validates
the whole draft with the same pydantic schema the CLI uses. A valid draft yields ``config`` (Generate is
enabled); an invalid one yields ``problems``, each with the path of the value it is about, so the window shows
one message next to that field and never raises.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sdgstudio.core.config import SDGConfig, save_config

from .schema_form import FieldSpec, config_specs

KeyPath = tuple[str | int, ...]
GENERAL = ""  #: anchor of problems that belong to no field (shown beside Generate)
_UNION_TAGS = {"str", "int", "float", "bool", "none"}


def path_text(path: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in path)


def parse_path(text: str) -> KeyPath:
    return tuple(int(p) if p.isdigit() else p for p in text.split(".")) if text else ()


@dataclass(frozen=True)
class Problem:
    path: KeyPath  #: the value it is about (in the draft), () for the config as a whole
    message: str

    @property
    def text(self) -> str:
        return f"{path_text(self.path) or 'config'}: {self.message}"


def read_config_file(path: Path | str) -> dict:
    """The mapping a TOML or YAML config holds, unvalidated (so a file with mistakes still opens, marked)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        data = tomllib.loads(text)
    elif suffix in (".yaml", ".yml"):
        data = yaml.safe_load(text)
    else:
        raise ValueError(f"{path.name}: expected a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: expected a table of settings")
    return data


def canonical_draft(data: dict, base_dir: Path | str) -> dict:
    """The draft the window edits: for a valid config, every field spelled out in the long form (ranges as
    ``{min, max}``, paths absolute, None kept so "off" stays off); otherwise the file's own mapping with short
    forms expanded, so each widget still finds its value."""
    try:
        config = SDGConfig.model_validate(data, context={"base_dir": str(base_dir)})
    except (ValidationError, TypeError, ValueError):
        return expand_short_forms(copy.deepcopy(data), config_specs())
    draft = config.model_dump(mode="json", by_alias=True)
    if not data.get("classes"):
        draft["classes"] = []  # still derived from the assets, as in the file
    return draft


def expand_short_forms(data: Any, specs: tuple[FieldSpec, ...]) -> Any:
    """Ranges written ``[a, b]`` or ``a`` become ``{min, max}`` (in place, recursively); other values stay."""
    if not isinstance(data, dict):
        return data
    for spec in specs:
        value = data.get(spec.key)
        if spec.kind in ("range", "int_range"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                data[spec.key] = {"min": value, "max": value}
            elif isinstance(value, list) and len(value) == 2:
                data[spec.key] = {"min": value[0], "max": value[1]}
        elif spec.kind == "model":
            expand_short_forms(value, spec.children)
        elif spec.kind in ("model_list", "path_or_list") and isinstance(value, list):
            for item in value:
                expand_short_forms(item, spec.children)
    return data


def _keys_of(path: KeyPath) -> set[str]:
    """Keys the schema allows in the table at ``path`` of a draft."""
    from .schema_form import find_spec, schema_path

    try:
        spec = find_spec(schema_path(path)) if path else None
    except KeyError:
        return set()
    children = spec.children if spec is not None else config_specs()
    return {c.key for c in children}


def _message(error: dict) -> str:
    msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    value = error.get("input")
    if error.get("type") != "missing" and not isinstance(value, dict | list) and value is not None:
        shown = repr(value) if isinstance(value, str) else f"{value}"
        if shown not in msg and len(shown) < 60:
            msg = f"{msg} (got {shown})"
    return msg


def _branch_matches(tag: str, value: Any) -> bool:
    """Whether a union branch tag in an error location ("str", "list[LibraryItem]", "Vec3Range") fits ``value``."""
    if tag == "str":
        return isinstance(value, str)
    if tag in ("int", "float"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tag == "bool":
        return isinstance(value, bool)
    if tag == "none":
        return value is None
    if tag.startswith(("list[", "tuple[")):
        return isinstance(value, list | tuple)
    return isinstance(value, dict)  # a model's name


def normalize_location(loc: tuple, data: Any) -> tuple[KeyPath, bool]:
    """An error location as a path into ``data`` without union tags; the flag is False when the error belongs
    to a union branch that the value is not of (pydantic reports every branch that failed)."""
    out: list[str | int] = []
    node: Any = data
    matches = True
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(part, str) and part.startswith("function-"):
            continue
        elif isinstance(part, str) and ("[" in part or part in _UNION_TAGS or part[:1].isupper()):
            matches = matches and _branch_matches(part, node)
        else:
            out.append(part)  # a missing key: the problem is about that (absent) field
            node = None
    return tuple(out), matches


class ConfigViewModel:
    """A draft config, validated on every change.

    Args:
        data: the draft (JSON-like mapping, keys as in config files).
        base_dir: where relative paths inside the draft resolve (the config file's folder).
        source: the file the draft came from or was last saved to.
        output_root: where a relative ``output.dir`` resolves (the source's folder unless it is a template).
    """

    def __init__(self, data: dict, *, base_dir: Path | str = ".", source: Path | str | None = None,
                 output_root: Path | str | None = None) -> None:
        self._listeners: dict[int, Callable[[ConfigViewModel, bool], None]] = {}
        self._next_id = 0
        self.data: dict = {}
        self.base_dir = Path(base_dir)
        self.source: Path | None = None
        self.output_root = Path(output_root) if output_root is not None else Path.cwd()
        self.config: SDGConfig | None = None
        self.problems: list[Problem] = []
        self.replace(data, base_dir=base_dir, source=source, output_root=output_root)

    # ------------------------------------------------------------------ construction / files

    @classmethod
    def from_config(cls, config: SDGConfig, **kwargs: Any) -> ConfigViewModel:
        return cls(config.model_dump(mode="json", by_alias=True), **kwargs)

    @classmethod
    def from_file(cls, path: Path | str, *, template: bool = False, output_root: Path | str | None = None
                  ) -> ConfigViewModel:
        """Open a config file; ``template`` (a built-in scene) keeps outputs out of its folder."""
        path = Path(path).resolve()
        root = output_root if template else path.parent
        return cls(read_config_file(path), base_dir=path.parent, source=None if template else path, output_root=root)

    def load(self, path: Path | str, *, template: bool = False) -> None:
        """Replace the draft with a file's content (a file with mistakes opens marked; unreadable syntax raises
        ValueError / TOMLDecodeError / YAMLError). A ``template`` (built-in scene) is not the file Save writes to,
        and outputs stay out of its folder."""
        path = Path(path).resolve()
        self.replace(read_config_file(path), base_dir=path.parent, source=None if template else path,
                     output_root=None if template else path.parent)

    def save(self, path: Path | str) -> Path:
        """Write the validated config as TOML or YAML (the CLI reads it back unchanged)."""
        if self.config is None:
            raise ValueError(f"cannot save: {len(self.problems)} problem(s) to fix first ({self.problems[0].text})")
        path = Path(path).expanduser().resolve()
        save_config(self.config, path)
        self.source = path
        self._notify(False)
        return path

    def replace(self, data: dict, *, base_dir: Path | str | None = None, source: Path | str | None = None,
                output_root: Path | str | None = None) -> None:
        if base_dir is not None:
            self.base_dir = Path(base_dir)
        self.data = canonical_draft(data, self.base_dir)
        self.source = Path(source) if source is not None else None
        if output_root is not None:
            self.output_root = Path(output_root)
        self.validate()
        self._notify(True)

    # ------------------------------------------------------------------ state for persistence

    def to_state(self) -> str:
        return json.dumps({"data": self.data, "base_dir": str(self.base_dir),
                           "source": str(self.source) if self.source else None, "output_root": str(self.output_root)})

    @classmethod
    def from_state(cls, text: str) -> ConfigViewModel:
        state = json.loads(text)
        if not isinstance(state, dict) or not isinstance(state.get("data"), dict):
            raise ValueError("not a saved SDG Studio window state")
        return cls(state["data"], base_dir=state.get("base_dir") or ".", source=state.get("source"),
                   output_root=state.get("output_root"))

    # ------------------------------------------------------------------ reading and writing values

    def get(self, path: Iterable[str | int], default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return default
        return node

    def set(self, path: Iterable[str | int], value: Any) -> None:
        """Write one value (creating missing tables on the way) and revalidate; a bad value is reported in
        ``problems``, never raised. A write through a path that no longer exists (a widget of a row just
        removed) is ignored."""
        if not self._write(tuple(path), value):
            return
        self.validate()
        self._notify(False)

    def _write(self, path: KeyPath, value: Any) -> bool:
        node: Any = self.data
        try:
            for part, nxt in zip(path[:-1], path[1:], strict=True):
                if isinstance(node, dict) and node.get(part) is None:  # a table switched off or absent
                    node[part] = [] if isinstance(nxt, int) else {}
                node = node[part]
            if isinstance(node, list) and not (isinstance(path[-1], int) and 0 <= path[-1] < len(node)):
                return False
            node[path[-1]] = value
        except (IndexError, KeyError, TypeError):
            return False
        return True

    def add_item(self, list_path: Iterable[str | int], item: Any) -> int:
        """Append ``item`` to the list at ``list_path`` (created if absent); a blank ``name`` gets a unique one."""
        list_path = tuple(list_path)
        items = self.get(list_path)
        if not isinstance(items, list):
            items = []
        item = copy.deepcopy(item)
        if isinstance(item, dict) and item.get("name") == "":
            item["name"] = self.unique_name(str(list_path[-1]).rstrip("s") or "item")
        items = [*items, item]
        self._put(list_path, items)
        return len(items) - 1

    def remove_item(self, list_path: Iterable[str | int], index: int) -> None:
        list_path = tuple(list_path)
        items = list(self.get(list_path) or [])
        if 0 <= index < len(items):
            del items[index]
            self._put(list_path, items)

    def _put(self, path: KeyPath, value: Any) -> None:
        if not self._write(path, value):
            return
        self.validate()
        self._notify(True)

    def unique_name(self, stem: str) -> str:
        """A prim-name-safe name no asset or prop uses yet."""
        import re

        stem = re.sub(r"[^A-Za-z0-9_]", "_", stem) or "item"
        if not re.match(r"[A-Za-z_]", stem):
            stem = f"_{stem}"
        used = {str(x.get("name")) for key in ("assets", "props") for x in self.data.get(key) or [] if isinstance(x, dict)}
        if stem not in used:
            return stem
        n = 1
        while f"{stem}_{n}" in used:
            n += 1
        return f"{stem}_{n}"

    # ------------------------------------------------------------------ validation

    def validate(self) -> None:
        try:
            self.config = SDGConfig.model_validate(self.data, context={"base_dir": str(self.base_dir)})
            self.problems = []
        except ValidationError as exc:
            self.config = None
            located = [(normalize_location(tuple(e["loc"]), self.data), _message(e)) for e in exc.errors()]
            kept = [Problem(path, msg) for (path, fits), msg in located if fits]
            kept = kept or [Problem(path, msg) for (path, _fits), msg in located]
            self.problems = [self._refine(p) for p in kept]
        except (TypeError, ValueError, OverflowError) as exc:  # e.g. a value pydantic itself cannot take
            self.config = None
            self.problems = [Problem((), str(exc).splitlines()[0] if str(exc) else type(exc).__name__)]

    def _refine(self, problem: Problem) -> Problem:
        """A table-level problem that names exactly one of the table's keys ("'class' is required with 'source'"
        names two, "a cube prop needs 'size'" one) is about that key: show it beside that field."""
        import re

        node = self.get(problem.path)
        if not isinstance(node, dict):
            return problem
        named = list(dict.fromkeys(re.findall(r"'([A-Za-z_][A-Za-z0-9_]*)'", problem.message)))
        keys = [k for k in named if k in node or k in _keys_of(problem.path)]
        if len(keys) > 1:  # "'class' is required with 'source'": the one left empty
            keys = [k for k in keys if node.get(k) in (None, "", [])]
        return Problem((*problem.path, keys[0]), problem.message) if len(keys) == 1 else problem

    @property
    def valid(self) -> bool:
        return self.config is not None

    def messages(self, anchors: Iterable[str]) -> dict[str, str]:
        """One message per anchor (a field path the window can show text beside): each problem goes to the
        deepest anchor that contains its path; the rest to ``GENERAL``. Several problems at one anchor show the
        first and a count."""
        anchor_paths = sorted((parse_path(a) for a in set(anchors) if a), key=len, reverse=True)
        grouped: dict[str, list[str]] = {}
        for problem in self.problems:
            anchor = next((a for a in anchor_paths if problem.path[: len(a)] == a), None)
            key = path_text(anchor) if anchor is not None else GENERAL
            grouped.setdefault(key, []).append(problem.message if anchor is not None else problem.text)
        return {key: msgs[0] + (f" (+{len(msgs) - 1} more)" if len(msgs) > 1 else "") for key, msgs in grouped.items()}

    # ------------------------------------------------------------------ what the window enables

    def output_dir(self) -> Path:
        """Where Generate writes: ``output.dir``, relative to ``output_root``."""
        text = str(self.get(("output", "dir"), "out") or "out")
        path = Path(text).expanduser()
        return path if path.is_absolute() else (self.output_root / path).resolve()

    def frames(self) -> int:
        value = self.get(("output", "frames"), 0)
        return int(value) if isinstance(value, int | float) and math.isfinite(value) else 0

    def generate_blockers(self, *, busy: bool) -> list[str]:
        """Why Generate is disabled (empty: enabled)."""
        reasons = []
        if busy:
            reasons.append("a run or preview is in progress")
        if self.problems:
            reasons.append(f"{len(self.problems)} setting(s) to fix")
        return reasons

    def can_generate(self, *, busy: bool = False) -> bool:
        return not self.generate_blockers(busy=busy)

    # ------------------------------------------------------------------ change listeners

    def subscribe(self, fn: Callable[[ConfigViewModel, bool], None]) -> Callable[[], None]:
        """``fn(vm, structural)`` after each change; ``structural`` when rows were added/removed or a file loaded
        (the form must be rebuilt), False for a value edit (only messages and buttons change)."""
        self._next_id += 1
        key = self._next_id
        self._listeners[key] = fn
        return lambda: self._listeners.pop(key, None)

    def _notify(self, structural: bool) -> None:
        for fn in list(self._listeners.values()):
            fn(self, structural)
