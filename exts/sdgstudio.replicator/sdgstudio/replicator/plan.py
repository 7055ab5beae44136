"""Which Replicator annotators an SDG Studio run attaches, and how writer payloads are split per render product.

Pure (no Kit, no pxr). Annotator names and payload layouts: ../shared/API_FACTS.md A1/A2, checked against the
omni.replicator.core 1.12 source (annotators.py, the default-annotator registrations, writers.py).

Every frame writes ``labels_<frame>.json`` (as the raster backend does), so three annotators are attached whatever
the config enables - the *label core*:

* ``camera_params``: the frame's ``CameraData`` (K, pose, clipping range);
* ``instance_segmentation``: which object every pixel shows (pixel counts, tight boxes, visibility);
* ``bounding_box_2d_loose``: the loose box, truncation and occlusion ratio of every object in view.

The others follow the config's annotators one to one (``ANNOTATOR_MAP``). Segmentation and box annotators are
initialised with ``semanticTypes=["class"]``: Replicator then builds a filter for that annotator alone (it never
touches the global semantic filter, unlike BasicWriter) and only ``class`` labels make an entity, exactly the labels
the raster backend and ``stage.add_semantic_class`` use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: Our annotator name -> the Replicator annotators it needs.
ANNOTATOR_MAP: dict[str, tuple[str, ...]] = {
    "rgb": ("rgb",),
    "depth": ("distance_to_image_plane",),
    "instance_segmentation": ("instance_segmentation",),
    "semantic_segmentation": ("semantic_segmentation",),
    "normals": ("normals",),
    "bounding_box_2d_tight": ("bounding_box_2d_tight",),
    "bounding_box_2d_loose": ("bounding_box_2d_loose",),
    "bounding_box_3d": ("bounding_box_3d",),
    "pose_6d": ("bounding_box_3d",),  # the object's local-to-world transform
    "optical_flow": ("motion_vectors",),
}

#: Attached for every run: the frame's labels need them (see the module docstring).
LABEL_CORE: tuple[str, ...] = ("camera_params", "instance_segmentation", "bounding_box_2d_loose")

_CLASS_ONLY = {"semanticTypes": ["class"]}
#: Initialization parameters per Replicator annotator (RC annotators.py ``Annotator.initialize``).
INIT_PARAMS: dict[str, dict] = {
    "instance_segmentation": {**_CLASS_ONLY, "colorize": False},
    "semantic_segmentation": {**_CLASS_ONLY, "colorize": False},
    "bounding_box_2d_tight": _CLASS_ONLY,
    "bounding_box_2d_loose": _CLASS_ONLY,
    "bounding_box_3d": _CLASS_ONLY,
}


class PlanError(ValueError):
    """An annotator name SDG Studio does not know, or a writer payload that names no annotator we attached."""


@dataclass(frozen=True)
class AnnotatorSpec:
    """One Replicator annotator to attach: its registry name and its initialization parameters."""

    name: str
    init_params: dict = field(default_factory=dict, compare=False, hash=False)


def replicator_annotators(annotators: Iterable[str]) -> list[AnnotatorSpec]:
    """The Replicator annotators for our ``annotators``: the label core first, then the layers, each once."""
    names: list[str] = list(LABEL_CORE)
    for ours in annotators:
        if ours not in ANNOTATOR_MAP:
            raise PlanError(f"annotator '{ours}' has no Replicator counterpart; known: {sorted(ANNOTATOR_MAP)}")
        names += ANNOTATOR_MAP[ours]
    return [AnnotatorSpec(n, dict(INIT_PARAMS.get(n, {}))) for n in dict.fromkeys(names)]


def split_render_products(data: Mapping, annotator_names: Iterable[str]) -> dict[str, dict]:
    """A legacy writer payload's annotator data grouped per render product.

    With one render product Replicator keys the data by annotator name (``"rgb"``), with several by
    ``"<annotator>-<render product name>"`` (RC writers.py; Isaac's own writers parse ``key.split("-")[-1]``).
    Returns ``{render product name or "": {annotator: payload}}``; keys that are no annotator of ours
    (``reference_time``, ``trigger_outputs``, render-product info) are skipped.
    """
    names = sorted(set(annotator_names), key=len, reverse=True)  # longest first: "rgb" must not eat "rgb_x-..."
    out: dict[str, dict] = {}
    for key, value in data.items():
        if key in names:
            out.setdefault("", {})[key] = value
            continue
        for name in names:
            if key.startswith(name + "-") and len(key) > len(name) + 1:
                out.setdefault(key[len(name) + 1:], {})[name] = value
                break
    if "" in out and len(out) > 1:
        raise PlanError(f"writer payload mixes plain and per-render-product keys: {sorted(map(str, data))}")
    if not out:
        raise PlanError(f"writer payload holds none of the annotators {sorted(names)}; keys: {sorted(map(str, data))}")
    return out
