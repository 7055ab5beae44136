"""TEST-ONLY stand-in for Isaac Sim's ``isaacsim`` package, generated from tests/kit/contracts/isaacsim.toml.

``SimulationApp(...)`` starts nothing (the Kit tier already runs inside Kit); like the real one it sets
``builtins.ISAAC_LAUNCHED_FROM_TERMINAL = False``, which lets Replicator's synchronous orchestrator calls run;
``close()`` restores the previous value.
"""

from contract_standin import install_standin as _install_standin

from . import _behaviour

_install_standin(globals(), "isaacsim.toml", _behaviour)
