"""Self-tests of the stand-ins, run by the Kit tier's api-contracts job (they need Kit and the stand-in exts)."""

from .test_standins import *  # noqa: F401,F403
