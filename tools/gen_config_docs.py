"""Write docs/config.md from the config schema's field metadata (a test checks it is current).

Usage: python tools/gen_config_docs.py [--check]
"""

from __future__ import annotations

import re
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))

from sdgstudio.core.config import Range, SDGConfig  # noqa: E402

HEADER = """# Config reference

Generated from the schema by `python tools/gen_config_docs.py`; do not edit by hand.
A config is a TOML or YAML file; `sdgstudio validate FILE` checks it and `sdgstudio schema` prints its JSON Schema.
Ranges are written `[min, max]`, `{ min = a, max = b }` or a single number (fixed). Unknown keys are errors.
Paths resolve against the config file's folder. Lengths are meters, angles degrees, masses kilograms.

## Light intensities (raster backend)

The raster backend turns UsdLux intensities into irradiance by dividing by 1000 (times `2**exposure`):
a distant light of intensity 1000 lights a surface facing it with irradiance 1; a sphere light of intensity I and
radius r gives `I * (r / d)**2 / 1000` at distance d; a dome light of intensity I adds a uniform ambient `I / 1000`.
RTX renders physically; expect to scale intensities when moving a config to the Replicator backend.
"""


def _models(annotation) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and not issubclass(annotation, Range):
        return [annotation]
    return []


def _type_name(annotation) -> str:
    text = re.sub(r"sdgstudio\.core\.config\w*\.", "", str(annotation).replace("typing.", ""))
    text = text.replace("<class '", "").replace("'>", "")
    return "range" if "Range" in text and "Vec3Range" not in text else text


def _rows(model: type[BaseModel], prefix: str, sections: list[tuple[str, type[BaseModel]]]) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        path = f"{prefix}{key}"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        default = "required" if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        nested = _models(field.annotation)
        if nested and isinstance(default, dict):
            default = "see below"
        rows.append(f"| `{path}` | {_type_name(field.annotation)} | {extra.get('unit', '')} | `{default}` | "
                    f"{field.title or ''}{': ' if field.description else ''}{field.description or ''} |")
        for sub in nested:
            sections.append((path + (".*" if typing.get_origin(field.annotation) is list else ""), sub))
    return rows


def render() -> str:
    out = [HEADER]
    sections: list[tuple[str, type[BaseModel]]] = [("", SDGConfig)]
    done = set()
    while sections:
        path, model = sections.pop(0)
        if (path, model) in done:
            continue
        done.add((path, model))
        out.append(f"\n## `{path or '(top level)'}` — {model.__doc__.strip().splitlines()[0] if model.__doc__ else model.__name__}\n")
        out.append("| key | type | unit | default | meaning |\n|---|---|---|---|---|")
        out.extend(_rows(model, f"{path.removesuffix('.*')}{'[].' if path.endswith('.*') else '.' if path else ''}", sections))
    return "\n".join(out) + "\n"


def main() -> int:
    target = REPO / "docs" / "config.md"
    text = render()
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print("docs/config.md is out of date: run python tools/gen_config_docs.py", file=sys.stderr)
            return 1
        return 0
    target.parent.mkdir(exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
