"""Which prims of a stage form an object: the one rule the raster and Replicator backends both follow.

An object is the nearest ancestor-or-self prim labelled with ``UsdSemantics.LabelsAPI`` (taxonomy "class"); every
visible, render-purpose gprim (a Mesh or an implicit shape) under it belongs to it, so multi-mesh assets occlude
and box as a whole. Invisible subtrees, guide/proxy purposes and point instancers are skipped; instance proxies
are traversed. A gprim with no labelled ancestor is its own (unlabelled) group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pxr import Sdf, Usd, UsdGeom, UsdLux

CLASS_ATTR = "semantics:labels:class"  #: what ``UsdSemantics.LabelsAPI.Apply(prim, "class")`` authors
#: Implicit gprim types tessellated or bounded like meshes (``_1``: the UsdGeom schema's version-1 names).
IMPLICIT = ("Cube", "Sphere", "Cylinder", "Cylinder_1", "Cone", "Capsule", "Capsule_1", "Plane")


def class_of(prim: Usd.Prim) -> str | None:
    """The prim's first ``class`` label, or None."""
    attr = prim.GetAttribute(CLASS_ATTR)
    labels = attr.Get() if attr and attr.HasValue() else None
    return str(labels[0]) if labels else None


@dataclass
class GprimGroup:
    """The gprims of one object (or one unlabelled gprim) and the prim whose frame they are grouped in."""

    root: Usd.Prim
    semantic_class: str | None  #: None: no labelled ancestor
    gprims: list[Usd.Prim] = field(default_factory=list)


@dataclass
class StageObjects:
    groups: dict[str, GprimGroup]  #: by the root's path
    labelled: dict[str, str]  #: every visible labelled prim's path -> class, with or without gprims
    lights: list[Usd.Prim]  #: visible prims with ``UsdLux.LightAPI``


@dataclass
class StageLayout:
    """The grouping of every gprim with visibility not yet applied: it changes only with the stage's structure,
    while objects are shown and hidden every frame. :meth:`visible` applies the visibility values of now."""

    everything: StageObjects  #: as if nothing were invisible
    switches: dict[Sdf.Path, Usd.Attribute]  #: prims with an authored ``visibility`` -> that attribute
    _seen: dict = field(default_factory=dict, repr=False)  #: hidden prims -> what ``visible`` made of them

    def visible(self, hidden: set[Sdf.Path] | None = None) -> StageObjects:
        """The groups with the prims in ``hidden`` (default: those whose ``visibility`` is invisible now) and
        their descendants left out."""
        if hidden is None:
            hidden = {path for path, attr in self.switches.items() if attr.Get() == UsdGeom.Tokens.invisible}
        if not hidden:
            return self.everything
        key = frozenset(hidden)
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= 256:  # a run shows a few combinations of objects over and over
                self._seen.clear()
            seen = self._seen[key] = self._without(hidden)
        return seen

    def _without(self, hidden: set[Sdf.Path]) -> StageObjects:
        def shown(path: Sdf.Path) -> bool:  # visibility is inherited: hidden when any ancestor-or-self is
            return not any(p in hidden for p in path.GetPrefixes())

        out = StageObjects({}, {}, [lt for lt in self.everything.lights if shown(lt.GetPath())])
        out.labelled = {path: cls for path, cls in self.everything.labelled.items() if shown(Sdf.Path(path))}
        for path, group in self.everything.groups.items():
            gprims = [g for g in group.gprims if shown(g.GetPath())]
            if len(gprims) == len(group.gprims):
                out.groups[path] = group  # the same object as in earlier frames (readers cache by it)
            elif gprims:
                out.groups[path] = GprimGroup(group.root, group.semantic_class, gprims)
        return out


def stage_layout(stage: Usd.Stage) -> StageLayout:
    """Traverse ``stage`` once and group all its gprims by object (module docstring), visible or not."""
    owner: dict = {}  # Sdf.Path -> (object prim, class) of the nearest labelled ancestor-or-self, or None
    result = StageObjects({}, {}, [])
    switches = {}
    it = iter(Usd.PrimRange(stage.GetPseudoRoot(), Usd.TraverseInstanceProxies()))
    for prim in it:
        img = UsdGeom.Imageable(prim)
        if img and img.GetPurposeAttr().Get() in (UsdGeom.Tokens.guide, UsdGeom.Tokens.proxy) \
                or prim.IsA(UsdGeom.PointInstancer):
            it.PruneChildren()
            continue
        if img and img.GetVisibilityAttr().HasAuthoredValue():
            switches[prim.GetPath()] = img.GetVisibilityAttr()
        cls = class_of(prim)
        if cls is not None:
            result.labelled[str(prim.GetPath())] = cls
        own = (prim, cls) if cls is not None else owner.get(prim.GetPath().GetParentPath())
        owner[prim.GetPath()] = own
        if prim.HasAPI(UsdLux.LightAPI):
            result.lights.append(prim)
        if not (prim.IsA(UsdGeom.Mesh) or prim.GetTypeName() in IMPLICIT):
            continue
        root, root_class = own if own else (prim, None)
        result.groups.setdefault(str(root.GetPath()), GprimGroup(root, root_class)).gprims.append(prim)
    return StageLayout(result, switches)


def group_gprims(stage: Usd.Stage) -> StageObjects:
    """The visible gprims of ``stage`` grouped by object (module docstring)."""
    return stage_layout(stage).visible()
