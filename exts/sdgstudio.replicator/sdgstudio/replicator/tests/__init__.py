"""sdgstudio.replicator's Kit tests (omni.kit.test style): run by tests/kit/run.py against the contract stand-ins and,
unchanged, by omni.kit.test in Isaac Sim against the real Replicator (docs/isaac-sim.md). Not collected by pytest."""

from .test_extension import *  # noqa: F401,F403
from .test_generate import *  # noqa: F401,F403
from .test_run import *  # noqa: F401,F403
from .test_writer import *  # noqa: F401,F403
