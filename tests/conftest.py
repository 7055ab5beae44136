"""Shared fixtures: the built-in scene and small configs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# This checkout's code first, even when the venv's editable install points at another checkout (git worktrees).
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))
# sdgstudio.ui's pure modules (view-models, schema form, stage tools) import without Kit.
sys.path.insert(1, str(REPO / "exts" / "sdgstudio.ui"))
# The Replicator extension's pure modules (plan, normalize, scene) are tested here too; its Kit modules are not imported.
sys.path.insert(2, str(REPO / "exts" / "sdgstudio.replicator"))
SCENES = REPO / "exts" / "sdgstudio.core" / "data" / "scenes"


@pytest.fixture(scope="session")
def tabletop_path() -> Path:
    return SCENES / "tabletop.toml"


@pytest.fixture(scope="session")
def tabletop(tabletop_path):
    from sdgstudio.core.config import load_config

    return load_config(tabletop_path)


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory, tabletop_path) -> Path:
    """The built-in scene at 64x48, saved as a config file: a frame renders and writes in a few tens of ms."""
    from runs import saved_tabletop

    return saved_tabletop(tmp_path_factory, tabletop_path, (64, 48), "tiny")
