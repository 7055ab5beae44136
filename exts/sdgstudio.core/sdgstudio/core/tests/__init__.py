"""sdgstudio.core's Kit tests (omni.kit.test style): run by tests/kit/run.py in the Kit kernel and, unchanged, by
omni.kit.test in Isaac Sim. Not collected by pytest (they need Kit's event loop)."""

from .test_extension import *  # noqa: F401,F403
from .test_generate_in_kit import *  # noqa: F401,F403
