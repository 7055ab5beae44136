"""isaacsim stand-in state: SimulationApp flips ``builtins.ISAAC_LAUNCHED_FROM_TERMINAL`` while it is open."""

from __future__ import annotations

import builtins

_UNSET = object()


class SimulationApp:
    def _standin_setup(self):
        self._previous = _UNSET
        self._closed = False

    def _standin_init(self, bound):
        self._previous = getattr(builtins, "ISAAC_LAUNCHED_FROM_TERMINAL", _UNSET)
        builtins.ISAAC_LAUNCHED_FROM_TERMINAL = False  # as SimulationApp.__init__ (simulation_app.py)

    def close(self, wait_for_replicator=True):
        if self._closed:
            return
        self._closed = True
        if self._previous is _UNSET:
            del builtins.ISAAC_LAUNCHED_FROM_TERMINAL
        else:
            builtins.ISAAC_LAUNCHED_FROM_TERMINAL = self._previous

    def update(self):
        pass

    def is_running(self):
        return not self._closed


CLASSES = {"SimulationApp": SimulationApp}
