"""The objects of a frame as SDG Studio defines them, and how Replicator's entity paths fold into them (pure).

``scene.read_scene`` fills a :class:`Scene` from a USD stage; ``normalize`` maps Replicator ids and prim paths onto
its objects. No Kit, no pxr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SceneObject:
    """A labelled object of the stage, as the raster backend defines objects (see ``scene.read_scene``)."""

    prim_path: str
    class_name: str
    class_id: int  #: 1-based index into the class list
    local_to_world: np.ndarray  #: (4, 4) column-vector, stage units, includes scale
    extents: tuple[tuple[float, float, float], tuple[float, float, float]]  #: local (min, max)
    is_target: bool = False


@dataclass
class Scene:
    """The stage's objects (sorted by path: instance id = index + 1) and every class-labelled prim."""

    objects: list[SceneObject]
    labelled: dict[str, str] = field(default_factory=dict)  #: prim path -> its class (known or not)
    unknown_classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index = {o.prim_path: k for k, o in enumerate(self.objects)}
        for o in self.objects:
            self.labelled.setdefault(o.prim_path, o.class_name)

    def owner(self, path: str) -> str | None:
        """The nearest class-labelled ancestor-or-self of ``path`` (None when there is none)."""
        p = str(path).rstrip("/")
        while p:
            if p in self.labelled:
                return p
            p = p.rpartition("/")[0]
        return None

    def object_index(self, path: str) -> int:
        """0-based index of the object ``path`` belongs to, or -1 (unlabelled, unknown class, not a path)."""
        if not isinstance(path, str) or not path.startswith("/"):
            return -1
        owner = self.owner(path)
        return self._index.get(owner, -1) if owner is not None else -1
