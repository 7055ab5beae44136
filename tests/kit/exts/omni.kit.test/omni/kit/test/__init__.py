"""TEST-ONLY stand-in for omni.kit.test: what our extensions' tests use (tests/kit/contracts/omni_kit_test.toml).

Tests are written as for the real omni.kit.test: subclass :class:`AsyncTestCase`, write ``async def test_*`` (sync
also works), optional async ``setUp``/``tearDown``. Discovery imports ``<python.module>.tests`` and, when that package
sets ``scan_for_test_modules = True``, each ``test*.py`` module in it. The harness (tests/kit/harness.py) runs the
tests one at a time on Kit's own event loop, so ``await omni.kit.app.get_app().next_update_async()`` advances Kit.
"""

from __future__ import annotations

import unittest

import omni.kit.app

from ._runner import discover_tests as _discover_tests  # noqa: F401  (harness API, not omni.kit.test's)
from ._runner import run_test as _run_test  # noqa: F401

__all__ = ["AsyncTestCase", "AsyncTestCaseFailOnLogError"]


class AsyncTestCase(unittest.TestCase):
    """A unittest.TestCase whose setUp, tearDown and test methods may be coroutines awaited on Kit's loop."""

    async def wait_n_updates(self, n_frames: int = 3, /) -> None:
        """Let Kit run ``n_frames`` updates."""
        app = omni.kit.app.get_app()
        for _ in range(n_frames):
            await app.next_update_async()


class AsyncTestCaseFailOnLogError(AsyncTestCase):
    """Fails a test that logs an error. The Kit tier fails every test that does, so this adds nothing here."""

    fail_on_log_error = True
