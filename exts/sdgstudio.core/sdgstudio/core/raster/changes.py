"""What changed on a USD stage between two renders, from ``Usd.Notice.ObjectsChanged``, so the scene reader
re-reads only that.

A frame of a typical run edits a few dozen attribute values (poses, material inputs, lights, camera) and adds or
removes no prim; re-traversing the stage, re-hashing every mesh and re-resolving every material binding each frame
would cost more than the edits. The notices say exactly which properties changed: a prim resync (a prim added,
removed, re-typed, re-referenced, activated) makes the next read a full one; property edits are sorted into the
few kinds the reader caches by (see :meth:`StageChanges.take`). A property *spec* created or removed is reported
as a resync of the property path; it is sorted like an edit of that property.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pxr import Sdf, Tf, Usd

from ..scene_objects import CLASS_ATTR

#: Properties whose edits can change which gprims form which object (``scene_objects.stage_layout``); visibility
#: only does where it was not authored before (``StageLayout.switches`` reads the others every frame).
GROUPING = ("purpose", CLASS_ATTR)


@dataclass
class Changes:
    """The edits since the last read, sorted by what they invalidate."""

    full: bool = True  #: prims were added / removed / re-typed (or a new stage): re-read everything
    regroup: bool = False  #: purpose, class labels or prim metadata changed: re-group the gprims
    visibility: set[Sdf.Path] = field(default_factory=set)  #: prims whose ``visibility`` was edited
    rebind: bool = False  #: a ``material:binding*`` or ``collection:*`` property changed: re-resolve bindings
    prims: set[Sdf.Path] = field(default_factory=set)  #: prims with other edited properties (xform ops excluded)
    shading: set[Sdf.Path] = field(default_factory=set)  #: prims whose shading network may have changed (an input's
    #: connection or spec, an output, an ``info:`` property such as the shader id)
    input_values: set[Sdf.Path] = field(default_factory=set)  #: ``inputs:`` properties whose value alone changed
    moved: set[Sdf.Path] = field(default_factory=set)  #: prims whose xform ops were edited (read every frame anyway)


class StageChanges:
    """Listens to one stage at a time; ``take(stage)`` returns the :class:`Changes` since the previous take."""

    def __init__(self) -> None:
        self._stage: Usd.Stage | None = None
        self._listener = None
        self._pending = Changes()

    def take(self, stage: Usd.Stage) -> Changes:
        if self._stage is None or stage != self._stage:
            self.close()
            self._stage = stage
            self._listener = Tf.Notice.Register(Usd.Notice.ObjectsChanged, self._on_change, stage)
            self._pending = Changes()
        out, self._pending = self._pending, Changes(full=False)
        return out

    def close(self) -> None:
        if self._listener is not None:
            self._listener.Revoke()
        self._stage, self._listener = None, None

    def _on_change(self, notice: Usd.Notice.ObjectsChanged, _sender) -> None:
        pending = self._pending
        for path in notice.GetResyncedPaths():
            if not path.IsPropertyPath() or _in_prototype(path):
                pending.full = True
                return
            self._property(pending, path, None)
        for path in notice.GetChangedInfoOnlyPaths():
            if _in_prototype(path):  # instances share it; the reader knows them by their proxies' paths
                pending.full = True
                return
            self._property(pending, path, notice)

    @staticmethod
    def _property(pending: Changes, path: Sdf.Path, notice) -> None:
        """Sorts one edited property path; ``notice`` None: its spec was added or removed (a resync)."""
        if not path.IsPropertyPath():  # prim metadata (kind, instanceable, ...): be safe
            pending.regroup = True
            return
        name = path.name
        if name.startswith("xformOp") or name == "xformOpOrder":
            pending.moved.add(path.GetPrimPath())  # world transforms are read every frame; shapes below it are not
            return
        if name == "visibility":
            pending.visibility.add(path.GetPrimPath())
        elif name in GROUPING:
            pending.regroup = True
        elif name.startswith(("material:binding", "collection:")):  # direct or collection-based bindings
            pending.rebind = True
        else:
            prim = path.GetPrimPath()
            pending.prims.add(prim)
            if name.startswith("inputs:"):
                if notice is not None and list(notice.GetChangedFields(path)) == ["default"]:
                    pending.input_values.add(path)  # a new value; the network is the same
                else:
                    pending.shading.add(prim)
            elif name.startswith(("outputs:", "info:")):
                pending.shading.add(prim)


def _in_prototype(path: Sdf.Path) -> bool:
    return path.pathString.startswith("/__Prototype")  # USD names instance prototypes /__Prototype_<n>

