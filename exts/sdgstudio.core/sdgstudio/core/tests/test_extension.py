"""The extension as Kit sees it: enabled, serving the package from its own folder, settings and data in place."""

from __future__ import annotations

import ast
from pathlib import Path

import omni.kit.app
import omni.kit.test
from sdgstudio.core.config import load_config
from sdgstudio.core.extension import builtin_scene, extension_path, raster_device

__all__ = ["TestCoreExtension"]

_KIT_ONLY = {"extension.py"}  # the one module of the package allowed to import omni.* / carb


class TestCoreExtension(omni.kit.test.AsyncTestCase):
    async def test_enabled_from_its_own_folder(self):
        manager = omni.kit.app.get_app().get_extension_manager()
        self.assertTrue(manager.is_extension_enabled("sdgstudio.core"))
        folder = Path(manager.get_extension_path(manager.get_enabled_extension_id("sdgstudio.core"))).resolve()
        self.assertEqual(extension_path().resolve(), folder)
        self.assertTrue((folder / "config" / "extension.toml").is_file())

    async def test_package_is_the_extension_folder_copy(self):
        import sdgstudio.core

        package_file = Path(sdgstudio.core.__file__).resolve()
        self.assertTrue(package_file.is_relative_to(extension_path().resolve()),
                        f"sdgstudio.core imported from {package_file}: a second copy shadows the extension's")

    async def test_builtin_scene_and_settings(self):
        config = load_config(builtin_scene())
        self.assertEqual(config.name, "tabletop")
        self.assertIn("mug", config.classes)
        self.assertEqual(raster_device(), "cpu")

    async def test_core_modules_import_no_kit_ui_or_replicator(self):
        package = extension_path() / "sdgstudio" / "core"
        offenders = []
        for path in sorted(package.rglob("*.py")):
            if path.name in _KIT_ONLY or "tests" in path.relative_to(package).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                offenders += [f"{path.name}: {n}" for n in names if n == "carb" or n.split(".")[0] in ("omni", "carb")]
        self.assertEqual(offenders, [], "sdgstudio.core must run without Kit (CLI, pytest)")
