"""Shared fixtures: the built-in scene and small configs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCENES = REPO / "exts" / "sdgstudio.core" / "data" / "scenes"


@pytest.fixture(scope="session")
def tabletop_path() -> Path:
    return SCENES / "tabletop.toml"


@pytest.fixture(scope="session")
def tabletop(tabletop_path):
    from sdgstudio.core.config import load_config

    return load_config(tabletop_path)
