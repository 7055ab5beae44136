"""The extension as Kit sees it: the writer registered while enabled, the pure modules free of Kit imports."""

from __future__ import annotations

import ast
from pathlib import Path

import omni.kit.app
import omni.kit.test
import omni.replicator.core as rep

__all__ = ["TestReplicatorExtension"]

_PURE = ("__init__.py", "plan.py", "objects.py", "normalize.py", "scene.py", "synthesize.py", "run.py")


class TestReplicatorExtension(omni.kit.test.AsyncTestCase):
    async def test_writer_is_registered_while_enabled(self):
        manager = omni.kit.app.get_app().get_extension_manager()
        self.assertTrue(manager.is_extension_enabled("sdgstudio.replicator"))
        self.assertIn("SDGStudioWriter", rep.WriterRegistry.get_writers())

    async def test_pure_modules_import_no_kit(self):
        """python -m sdgstudio.replicator.run must start SimulationApp before omni/pxr load; pytest imports these."""
        package = Path(__file__).resolve().parents[1]
        offenders = []
        for name in _PURE:
            tree = ast.parse((package / name).read_text(), name)
            for node in tree.body:  # module level only: run.py imports isaacsim inside main()
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                offenders += [f"{name}: {n}" for n in names if n.split(".")[0] in ("omni", "carb", "isaacsim")]
        self.assertEqual(offenders, [])
