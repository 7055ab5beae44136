"""The labelled objects of a USD stage (pxr only: no Kit), and binding class labels to prims a user picked.

``read_scene`` applies the object rule of ``sdgstudio.core.scene_objects`` (the raster backend's too), so both backends label
the same objects with the same instance ids: traverse with instance proxies, skip invisible prims, guide/proxy
purposes and point instancers; a gprim (mesh or implicit shape) belongs to its nearest ancestor-or-self with a
non-empty ``semantics:labels:class`` (``UsdSemantics.LabelsAPI``, taxonomy "class"); such a prim whose first label
is in the class list is an object; objects are sorted by path. An object's bounds are the axis-aligned box, in
its own frame, of its gprims' bounds (``UsdGeom.BBoxCache.ComputeRelativeBound``, default and render purposes):
the raster backend's vertex box for gprims that are not rotated against the object, a box around it otherwise.
Transforms are local-to-world at the default time.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pxr import Usd, UsdGeom, UsdSemantics, Vt
from sdgstudio.core.scene_objects import class_of, group_gprims  # noqa: F401  (class_of: re-exported)
from sdgstudio.core.stage import TARGET_ATTR

from .objects import Scene, SceneObject


def read_scene(stage: Usd.Stage, class_names: list[str]) -> Scene:
    """The stage's objects now (see the module docstring)."""
    class_ids = {n: i + 1 for i, n in enumerate(class_names)}
    found = group_gprims(stage)
    labelled = found.labelled
    gprims = {path: g.gprims for path, g in found.groups.items() if g.semantic_class is not None}
    xfc = UsdGeom.XformCache(Usd.TimeCode.Default())
    bbc = UsdGeom.BBoxCache(Usd.TimeCode.Default(), [UsdGeom.Tokens.default_, UsdGeom.Tokens.render])
    objects = []
    for path in sorted(p for p in gprims if labelled[p] in class_ids):
        prim = stage.GetPrimAtPath(path)
        lo, hi = _bounds(bbc, prim, gprims[path])
        target = prim.GetAttribute(TARGET_ATTR)
        objects.append(SceneObject(
            prim_path=path, class_name=labelled[path], class_id=class_ids[labelled[path]],
            local_to_world=np.array(xfc.GetLocalToWorldTransform(prim), dtype=np.float64).T,
            extents=(lo, hi),
            is_target=bool(target and target.Get())))
    unknown = sorted({labelled[p] for p in gprims if labelled[p] not in class_ids})
    return Scene(objects, labelled, unknown)


def _bounds(bbc: UsdGeom.BBoxCache, root: Usd.Prim, gprims: list[Usd.Prim]) -> tuple[tuple, tuple]:
    """Axis-aligned box of the gprims' bounds in ``root``'s frame (zeros when they have none)."""
    corners = []
    for g in gprims:
        box = bbc.ComputeRelativeBound(g, root) if g != root else bbc.ComputeUntransformedBound(g)
        rng = box.GetRange()
        if rng.IsEmpty():
            continue
        m = np.array(box.GetMatrix(), dtype=np.float64)  # row-vector
        lo, hi = np.array(rng.GetMin()), np.array(rng.GetMax())
        c = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        corners.append((c @ m)[:, :3])
    if not corners:
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    pts = np.concatenate(corners)
    return tuple(float(x) for x in pts.min(0)), tuple(float(x) for x in pts.max(0))


def bind_prims(stage: Usd.Stage, labels: Mapping[str, str]) -> list[str]:
    """Give each picked prim (path -> class) a ``class`` label, so Replicator and ``read_scene`` see it as an
    object; prims that already carry that label are left as they are. Returns the paths it labelled.

    Raises:
        ValueError: a path that is no prim of the stage, or an empty class name.
    """
    changed = []
    for path, cls in labels.items():
        prim = stage.GetPrimAtPath(path)
        if not prim:
            raise ValueError(f"bind: no prim at {path}")
        if not cls:
            raise ValueError(f"bind: empty class name for {path}")
        if class_of(prim) == cls:
            continue
        UsdSemantics.LabelsAPI.Apply(prim, "class").CreateLabelsAttr().Set(Vt.TokenArray([cls]))
        changed.append(str(path))
    return changed
