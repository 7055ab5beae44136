"""sdgstudio.ui's Kit tests (omni.kit.test style): run by tests/kit/run.py in the Kit kernel against the contract
stand-ins and, unchanged, by omni.kit.test in Isaac Sim (stand-in-only tests skip themselves there)."""

from .test_generate import *  # noqa: F401,F403
from .test_window import *  # noqa: F401,F403
