"""Helpers of the run tests: fast configs (saved or not), the manifest's frames and digests, waiting on a loop."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sdgstudio.core.config import SDGConfig, config_from_dict, config_to_dict, load_config, save_config


def saved_tabletop(tmp_path_factory, tabletop_path: Path, resolution: tuple[int, int], name: str) -> Path:
    """The built-in scene at ``resolution``, saved as ``name``.toml in a fresh temporary folder."""
    config = load_config(tabletop_path)
    config.camera.resolution = resolution
    path = tmp_path_factory.mktemp("cfg") / f"{name}.toml"
    save_config(config, path)
    return path


def small_config(tabletop: SDGConfig, frames: int) -> SDGConfig:
    """The built-in scene with one prop at 64x48 pixels, ``frames`` frames: a frame renders in milliseconds."""
    data = config_to_dict(tabletop)
    data["props"] = data["props"][:1]
    data["camera"]["resolution"] = [64, 48]
    data["output"]["frames"] = frames
    return config_from_dict(data)


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def digests(folder: Path) -> list[str]:
    return [e["sha256"] for e in manifest(folder)]


async def until(predicate, timeout: float = 60.0) -> None:
    """Await loop turns until ``predicate()`` holds; fails after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.005)
