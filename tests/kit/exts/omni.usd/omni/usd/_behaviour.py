"""omni.usd stand-in state: one context per name, whose stage is a real in-memory ``pxr.Usd.Stage``."""

from __future__ import annotations

import sys

from contract_standin.standin import new_instance, next_update

_contexts: dict = {}


def _usd():
    return sys.modules["omni.usd"]


def get_context(name=""):
    ctx = _contexts.get(name)
    if ctx is None:
        ctx = _contexts[name] = new_instance(_usd().UsdContext)
        ctx._name = name
    return ctx


class UsdContext:
    def _standin_setup(self):
        self._stage = None
        self._selection = None
        self._name = ""

    def get_stage(self):
        if self._stage is None:
            self.new_stage()
        return self._stage

    def new_stage(self):
        from pxr import Usd, UsdGeom

        self._stage = Usd.Stage.CreateInMemory()
        UsdGeom.SetStageUpAxis(self._stage, UsdGeom.Tokens.z)  # Isaac Sim's default stage is Z-up, meters
        UsdGeom.SetStageMetersPerUnit(self._stage, 1.0)
        return True

    async def new_stage_async(self):
        await next_update()
        self.new_stage()
        return True, ""

    def get_selection(self):
        if self._selection is None:
            self._selection = new_instance(_usd().Selection)
        return self._selection

    def stage_event_name(self, event_type):
        return f"omni.usd.stand-in:{self._name}:{event_type.name}"


class Selection:
    def _standin_setup(self):
        self._paths = []

    def get_selected_prim_paths(self):
        return list(self._paths)

    def set_selected_prim_paths(self, paths, expandInStage=True):
        self._paths = [str(p) for p in paths]


CLASSES = {"UsdContext": UsdContext, "Selection": Selection}
FUNCTIONS = {"get_context": get_context}
