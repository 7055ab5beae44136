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
        self._kinds: dict[Sdf.Path, int] = {}  #: edited path -> its kind (``_kind``), for this stage

    def take(self, stage: Usd.Stage) -> Changes:
        if self._stage is None or stage != self._stage:
            self.close()
            self._stage = stage
            self._listener = Tf.Notice.Register(Usd.Notice.ObjectsChanged, self._on_change, stage)
            self._pending, self._kinds = Changes(), {}
        out, self._pending = self._pending, Changes(full=False)
        return out

    def quiet(self, stage: Usd.Stage) -> bool:
        """This stage was taken last and nothing on it changed since."""
        return self._stage is not None and stage == self._stage and self._pending == Changes(full=False)

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
            _sort(pending, path, _kind(path), None)
        kinds = self._kinds
        for path in notice.GetChangedInfoOnlyPaths():  # the same few dozen paths frame after frame: sorted once
            kind = kinds.get(path)
            if kind is None:
                kind = kinds[path] = _kind(path)
            if kind is _FULL:  # instances share a prototype; the reader knows them by their proxies' paths
                pending.full = True
                return
            _sort(pending, path, kind, notice)


_FULL, _REGROUP, _MOVED, _VISIBILITY, _REBIND, _INPUT, _NETWORK, _OTHER = range(8)  #: what an edited path invalidates


def _kind(path: Sdf.Path) -> int:
    if _in_prototype(path):
        return _FULL
    if not path.IsPropertyPath():  # prim metadata (kind, instanceable, ...): be safe
        return _REGROUP
    name = path.name
    if name.startswith("xformOp") or name == "xformOpOrder":
        return _MOVED  # world transforms are read every frame; shapes below the prim are not
    if name == "visibility":
        return _VISIBILITY
    if name in GROUPING:
        return _REGROUP
    if name.startswith(("material:binding", "collection:")):  # direct or collection-based bindings
        return _REBIND
    if name.startswith("inputs:"):
        return _INPUT
    if name.startswith(("outputs:", "info:")):
        return _NETWORK
    return _OTHER


def _sort(pending: Changes, path: Sdf.Path, kind: int, notice) -> None:
    """Records one edited path of kind ``kind``; ``notice`` None: its spec was added or removed (a resync)."""
    if kind == _MOVED:
        pending.moved.add(path.GetPrimPath())
    elif kind == _REGROUP:
        pending.regroup = True
    elif kind == _VISIBILITY:
        pending.visibility.add(path.GetPrimPath())
    elif kind == _REBIND:
        pending.rebind = True
    else:
        prim = path.GetPrimPath()
        pending.prims.add(prim)
        if kind == _INPUT and notice is not None and notice.GetChangedFields(path) == ["default"]:
            pending.input_values.add(path)  # a new value; the network is the same
        elif kind in (_INPUT, _NETWORK):
            pending.shading.add(prim)


def _in_prototype(path: Sdf.Path) -> bool:
    return path.pathString.startswith("/__Prototype")  # USD names instance prototypes /__Prototype_<n>
