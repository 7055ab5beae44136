"""The report's numbers, computed purely from a dataset's ``dataset.json``, manifest entries and label files.

Populations (documented for users in docs/report.md):

* a *visible object* has ``pixel_count > 0`` (what ``generate`` counts); counts, class balance, objects per
  frame, box sizes, aspect ratios, depth and small boxes use visible objects;
* an object *in view* has ``unoccluded_pixel_count > 0`` (it would cover pixels with every occluder removed):
  the visible-fraction and truncation histograms use these, so fully occluded objects show up in bin 0.

Histogram bins are explicit so that anyone can recompute them: a value ``v`` of a ``[0, 1]`` quantity with
``B`` bins lands in bin ``min(floor(v * B), B - 1)``; box sizes (``sqrt(width * height)``, pixels) in bin
``k`` of edges ``2**k``; aspect ratios (``width / height``) in half-octave bins with edges ``2**(k / 2)``,
``k = -6 .. 6``, values beyond the ends clipped into the end bins.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter

from ..sampler import flatten_params, parameter_ranges

#: Bins of the visible-fraction and truncation histograms over [0, 1].
UNIT_BINS = 10
#: Aspect-ratio bin edges: half octaves from 1/8 to 8.
ASPECT_EDGES = [2.0 ** (k / 2) for k in range(-6, 7)]
#: Bins of the object-depth histogram between the nearest and farthest object.
DEPTH_BINS = 12
#: Coverage: at most this many bins per parameter, and the chance that uniform sampling leaves one empty by
#: luck must stay under ``COVERAGE_FALSE_ALARM`` (union bound), so a flag means the range was not sampled.
COVERAGE_MAX_BINS = 20
COVERAGE_FALSE_ALARM = 1.0e-4
#: Relative tolerance on a range's ends before a sampled value counts as outside it (float round-off).
RANGE_TOLERANCE = 1.0e-9


def unit_bin(value: float, bins: int = UNIT_BINS) -> int:
    """Bin of a value in [0, 1] among ``bins`` equal bins (1.0 goes in the last)."""
    return min(max(math.floor(value * bins), 0), bins - 1)


def size_bin(size: float) -> int:
    """Bin ``k`` with ``2**k <= size < 2**(k + 1)`` (sizes under one pixel go in bin 0)."""
    return max(math.floor(math.log2(size)), 0) if size > 0 else 0


def aspect_bin(aspect: float) -> int:
    """Half-octave bin of ``width / height`` between ``ASPECT_EDGES[0]`` and ``ASPECT_EDGES[-1]``, clipped."""
    return min(max(math.floor(2.0 * math.log2(aspect)) + 6, 0), len(ASPECT_EDGES) - 2)


def coverage_bins(samples: int, max_bins: int = COVERAGE_MAX_BINS, false_alarm: float = COVERAGE_FALSE_ALARM) -> int:
    """Most bins a range can be split into so that ``samples`` uniform draws leave none empty by luck.

    ``B * (1 - 1/B) ** n`` bounds the chance that ``n`` uniform draws miss one of ``B`` bins; it grows with B,
    so the answer is the largest B (up to ``max_bins``) with a bound under ``false_alarm``. One bin means too
    few samples to judge coverage (16 samples give 2 bins, 100 give 9, 238 or more give 20).
    """
    best = 1
    for b in range(2, max_bins + 1):
        if b * (1.0 - 1.0 / b) ** samples > false_alarm:
            break
        best = b
    return best


def _summary(values: list[float]) -> dict:
    """min / median / mean / max of a list (all None when empty)."""
    if not values:
        return {"min": None, "median": None, "mean": None, "max": None}
    s = sorted(values)
    n = len(s)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0
    return {"min": s[0], "median": median, "mean": sum(s) / n, "max": s[-1]}


def _histogram(bin_of, values: list[float], bins: int) -> list[int]:
    counts = [0] * bins
    for v in values:
        counts[bin_of(v)] += 1
    return counts


def coverage_of(values: list[float], lo: float, hi: float) -> dict:
    """How ``values`` sampled for one parameter cover its configured range ``[lo, hi]`` (``lo < hi``)."""
    tol = RANGE_TOLERANCE * max(abs(lo), abs(hi), hi - lo)
    inside = [v for v in values if lo - tol <= v <= hi + tol]
    bins = coverage_bins(len(values))
    counts = [0] * bins
    for v in inside:
        counts[min(max(math.floor((v - lo) / (hi - lo) * bins), 0), bins - 1)] += 1
    empty = [i for i, c in enumerate(counts) if c == 0]
    outside = len(values) - len(inside)
    reasons = []
    if not values:
        reasons.append("never sampled")
    elif empty:
        reasons.append(f"{len(empty)} of {bins} bins empty")
    if outside:
        reasons.append(f"{outside} values outside the configured range")
    return {
        "configured": [lo, hi],
        "samples": len(values),
        "sampled": [min(values), max(values)] if values else None,
        "bins": bins,
        "counts": counts,
        "empty_bins": empty,
        "outside": outside,
        "judged": bins > 1,
        "flagged": bool(reasons),
        "reason": "; ".join(reasons),
    }


def randomization_coverage(config, entries: list[dict]) -> dict:
    """Coverage of every randomized parameter (configured ``min < max``) by the manifest's sampled values.

    Returns ``{"parameters": {name: coverage_of(...)}, "fixed": {name: value}, "flagged": [names]}``.
    """
    ranges = parameter_ranges(config)
    pooled: dict[str, list[float]] = {name: [] for name in ranges}
    for entry in entries:
        for name, values in flatten_params(entry["params"]).items():
            pooled.setdefault(name, []).extend(float(v) for v in values)
    parameters, fixed = {}, {}
    for name, (lo, hi) in ranges.items():
        if hi > lo:
            parameters[name] = coverage_of(pooled[name], lo, hi)
        else:
            fixed[name] = lo
    flagged = [name for name, c in parameters.items() if c["flagged"]]
    return {"false_alarm": COVERAGE_FALSE_ALARM, "parameters": parameters, "fixed": fixed, "flagged": flagged}


def _box_dims(obj: dict) -> tuple[float, float]:
    x0, y0, x1, y1 = obj["bbox_2d_tight"]
    return x1 - x0, y1 - y0


#: Bin edges (pixels) of the per-frame mean optical-flow magnitude histogram.
FLOW_EDGES = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, math.inf]


def flow_stats(labels: list[dict]) -> dict:
    """Optical-flow magnitudes (per-frame summaries the generator stores in ``extra.optical_flow``) and object speeds."""
    flows = [lab["extra"]["optical_flow"] for lab in labels if "optical_flow" in lab.get("extra", {})]
    means = [f["mean_px"] for f in flows if f["mean_px"] is not None]
    speeds = [math.hypot(*o["motion"]["linear_velocity"]) for lab in labels for o in lab["objects"]
              if "motion" in o and o["pixel_count"] > 0]
    return {
        "frames": len(flows),
        "mean_px": {**_summary(means), "edges": FLOW_EDGES,
                    "counts": _histogram(lambda v: min(bisect.bisect_right(FLOW_EDGES, v) - 1, len(FLOW_EDGES) - 2),
                                         means, len(FLOW_EDGES) - 1)},
        "p95_px": _summary([f["p95_px"] for f in flows if f["p95_px"] is not None]),
        "valid_fraction": _summary([f["valid_fraction"] for f in flows]),
        "object_speed_m_per_s": _summary(speeds),
    }


def compute_stats(info: dict, labels: list[dict], *, min_box_pixels: int = 10) -> dict:
    """Counts, balance and distributions of a dataset's labels (one dict per frame, as in ``labels_*.json``).

    ``info`` is ``dataset.json`` (class list, resolution). ``min_box_pixels``: a visible object whose tight box
    is narrower or shorter than this many pixels counts as a small box.
    """
    configured = [c["name"] for c in sorted(info.get("classes", []), key=lambda c: c["id"])]
    width, height = info.get("resolution", [0, 0])
    per_frame: list[int] = []
    class_objects: Counter = Counter()
    class_frames: Counter = Counter()
    empty_frames, unlabeled_frames, small = [], [], []
    unlabeled_pixels = 0
    unknown: set[str] = set()
    widths, heights, sizes, aspects, depths, vis, trunc = [], [], [], [], [], [], []
    for frame in labels:
        visible = [o for o in frame["objects"] if o["pixel_count"] > 0]
        per_frame.append(len(visible))
        if not visible:
            empty_frames.append(frame["frame"])
        if frame.get("unlabeled_pixel_count", 0) > 0:
            unlabeled_frames.append(frame["frame"])
            unlabeled_pixels += frame["unlabeled_pixel_count"]
        unknown.update(frame.get("extra", {}).get("unknown_classes", []))
        class_frames.update({o["class"] for o in visible})
        for o in frame["objects"]:
            if o["unoccluded_pixel_count"] > 0:
                vis.append(o["visible_fraction"])
                trunc.append(o["truncation"])
        for o in visible:
            class_objects[o["class"]] += 1
            w, h = _box_dims(o)
            widths.append(w)
            heights.append(h)
            sizes.append(math.sqrt(w * h))
            aspects.append(w / h)
            depths.append(o["pose_in_camera"]["t"][2])
            if min(w, h) < min_box_pixels:
                small.append({"frame": frame["frame"], "instance_id": o["instance_id"], "class": o["class"],
                              "width": w, "height": h})
    total = sum(per_frame)
    classes = configured + sorted(set(class_objects) - set(configured))
    balance = {name: {"objects": class_objects[name], "frames": class_frames[name],
                      "share": class_objects[name] / total if total else 0.0} for name in classes}
    size_edges = [2.0**k for k in range(max(size_bin(max(sizes, default=1.0)) + 2, 2))]
    depth_summary = _summary(depths)
    depth_hist = {"edges": [], "counts": []}
    if depths:
        lo, hi = depth_summary["min"], depth_summary["max"]
        span = hi - lo if hi > lo else 1.0
        depth_hist = {"edges": [lo + span * k / DEPTH_BINS for k in range(DEPTH_BINS + 1)],
                      "counts": _histogram(lambda d: unit_bin((d - lo) / span, DEPTH_BINS), depths, DEPTH_BINS)}
    hist_per_frame = Counter(per_frame)
    return {
        "counts": {
            "frames": len(labels),
            "objects": total,
            "objects_in_view": len(vis),
            "classes_configured": len(configured),
            "classes_seen": sum(1 for name in classes if class_objects[name] > 0),
        },
        "class_balance": balance,
        "objects_per_frame": {
            **_summary([float(n) for n in per_frame]),
            "histogram": [hist_per_frame[n] for n in range(max(per_frame, default=0) + 1)],
        },
        "boxes": {
            "count": len(sizes),
            "width": _summary(widths),
            "height": _summary(heights),
            "size": {**_summary(sizes), "edges": size_edges,
                     "counts": _histogram(size_bin, sizes, len(size_edges) - 1)},
            "aspect": {**_summary(aspects), "edges": ASPECT_EDGES,
                       "counts": _histogram(aspect_bin, aspects, len(ASPECT_EDGES) - 1)},
        },
        "visible_fraction": {**_summary(vis), "counts": _histogram(unit_bin, vis, UNIT_BINS)},
        "truncation": {**_summary(trunc), "counts": _histogram(unit_bin, trunc, UNIT_BINS)},
        "depth": {**depth_summary, **depth_hist},
        "optical_flow": flow_stats(labels),
        "warnings": label_warnings(
            frames=len(labels), empty_frames=empty_frames, unlabeled_frames=unlabeled_frames,
            unlabeled_pixels=unlabeled_pixels, image_pixels=int(width) * int(height), small=small,
            min_box_pixels=min_box_pixels, never_seen=[name for name in configured if class_objects[name] == 0],
            unknown=sorted(unknown),
        ),
    }


#: Small boxes listed by example in report.json (the count is always exact).
SMALL_BOX_EXAMPLES = 100


def warning(kind: str, message: str, count: int, **details) -> dict:
    """One entry of report.json's ``warnings``: a stable ``kind`` to gate on, a sentence, a count, details."""
    return {"kind": kind, "message": message, "count": count, **details}


def label_warnings(*, frames: int, empty_frames: list[int], unlabeled_frames: list[int], unlabeled_pixels: int,
                   image_pixels: int, small: list[dict], min_box_pixels: int, never_seen: list[str],
                   unknown: list[str]) -> list[dict]:
    """The warnings that the label files alone reveal; only kinds with something to report are listed."""
    found = []
    if empty_frames:
        found.append(warning("frames_without_objects", f"{len(empty_frames)} of {frames} frames have no visible "
                             "labeled object", len(empty_frames), frames=empty_frames))
    if unlabeled_frames:
        share = unlabeled_pixels / (len(unlabeled_frames) * image_pixels) if image_pixels else 0.0
        found.append(warning(
            "unlabeled_pixels", f"{len(unlabeled_frames)} of {frames} frames have pixels on geometry without a "
            f"semantic class ({share:.0%} of their pixels on average; scenery props without a class count here)",
            len(unlabeled_frames), frames=unlabeled_frames, pixels=unlabeled_pixels))
    if small:
        found.append(warning("small_boxes", f"{len(small)} visible objects have a tight box under {min_box_pixels} "
                             "pixels wide or high", len(small), min_box_pixels=min_box_pixels,
                             examples=small[:SMALL_BOX_EXAMPLES]))
    if never_seen:
        found.append(warning("classes_never_seen", f"configured classes never visible: {', '.join(never_seen)}",
                             len(never_seen), classes=never_seen))
    if unknown:
        found.append(warning("unknown_classes", f"labeled prims with classes missing from the config: "
                             f"{', '.join(unknown)}", len(unknown), classes=unknown))
    return found
