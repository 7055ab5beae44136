"""``build_report``: read a dataset, compute its numbers, draw the page, write ``report/`` atomically.

``report.json`` holds every number the page shows (and the page shows nothing else), so a pipeline's CI can
gate on it (``warnings[].kind``, ``coverage.flagged``). Its layout is documented in docs/report.md.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from .. import __version__
from ..manifest import fsync_dir, write_file_durably
from .load import DatasetContents, ReportError, read_dataset
from .stats import compute_stats, randomization_coverage, warning

REPORT_DIR = "report"
REPORT_FORMAT = "sdgstudio-report/1"
#: Frames in the sample grid, spread evenly over the dataset.
DEFAULT_SAMPLES = 12
#: A visible object whose tight box is narrower or shorter than this (pixels) is reported as a small box.
DEFAULT_MIN_BOX_PIXELS = 10


def sample_frames(contents: DatasetContents, count: int) -> list[int]:
    """Positions (into ``contents.entries``) of up to ``count`` frames spread evenly, first and last included."""
    n = len(contents.entries)
    if n == 0 or count <= 0:
        return []
    if n <= count:
        return list(range(n))
    return sorted({round(k * (n - 1) / (count - 1)) for k in range(count)}) if count > 1 else [0]


def _coverage(contents: DatasetContents) -> dict:
    from ..config import ConfigError, config_from_dict

    try:
        config = config_from_dict(contents.info["config"], source="dataset.json config")
    except (ConfigError, KeyError) as exc:
        text = "; ".join(exc.lines()) if isinstance(exc, ConfigError) else "dataset.json has no config"
        return {"available": False, "error": text, "parameters": {}, "fixed": {}, "flagged": []}
    return {"available": True, **randomization_coverage(config, contents.entries)}


def _manifest_warnings(contents: DatasetContents, coverage: dict) -> list[dict]:
    found = []
    if contents.missing:
        found.append(warning("missing_labels", f"{len(contents.missing)} listed frames have no label file; "
                             "they are left out of every number", len(contents.missing), frames=contents.missing))
    unplaced = [(int(e["frame"]), w) for e in contents.entries for w in e.get("params", {}).get("warnings", [])]
    if unplaced:
        frames = sorted({f for f, _ in unplaced})
        found.append(warning("placement", f"{len(unplaced)} objects found no free spot and were hidden, in "
                             f"{len(frames)} frames", len(unplaced), frames=frames,
                             examples=[w for _, w in unplaced[:20]]))
    if not coverage["available"]:
        found.append(warning("coverage_unavailable", f"randomization coverage not computed: {coverage['error']}", 1))
    elif coverage["flagged"]:
        found.append(warning("coverage", "randomized parameters whose sampled values leave part of the configured "
                             f"range empty: {', '.join(coverage['flagged'])}", len(coverage["flagged"]),
                             parameters=coverage["flagged"]))
    return found


def report_data(contents: DatasetContents, *, min_box_pixels: int = DEFAULT_MIN_BOX_PIXELS,
                samples: int = DEFAULT_SAMPLES) -> dict:
    """Everything ``report.json`` holds, computed from what ``read_dataset`` returned."""
    info = contents.info
    stats = compute_stats(info, contents.labels, min_box_pixels=min_box_pixels)
    coverage = _coverage(contents)
    label_warnings = stats.pop("warnings")
    picked = sample_frames(contents, samples)
    return {
        "report": {"format": REPORT_FORMAT, "tool_version": __version__, "min_box_pixels": min_box_pixels,
                   "generated_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")},
        "dataset": {"path": str(contents.root.resolve()), "name": info.get("name"), "seed": info.get("seed"),
                    "backend": info.get("backend"), "resolution": info.get("resolution"),
                    "tool_version": info.get("version"), "format_version": info.get("format_version"),
                    "classes": info.get("classes", [])},
        **stats,
        "coverage": coverage,
        "samples": [{"frame": int(contents.labels[i]["frame"]),
                     "objects": sum(1 for o in contents.labels[i]["objects"] if o["pixel_count"] > 0)}
                    for i in picked],
        "warnings": label_warnings + _manifest_warnings(contents, coverage),
    }


def build_report(dataset_dir: Path | str, *, min_box_pixels: int = DEFAULT_MIN_BOX_PIXELS,
                 samples: int = DEFAULT_SAMPLES) -> Path:
    """Write ``<dataset_dir>/report/index.html`` and ``report.json``; returns the page's path.

    This is what ``sdgstudio report`` and the Kit window's "Open report" call. Both files are replaced
    atomically, so a browser or CI job never reads half a report. Blocking (about a second per thousand frames
    on two cores): call it off the UI thread.

    Raises:
        ReportError: ``dataset_dir`` is not a dataset folder or holds unreadable JSON.
    """
    from .sections import render_page

    contents = read_dataset(dataset_dir)
    data = report_data(contents, min_box_pixels=min_box_pixels, samples=samples)
    html = render_page(data, contents)
    out = contents.root / REPORT_DIR
    out.mkdir(exist_ok=True)
    write_file_durably(out / "report.json", (json.dumps(data, indent=1) + "\n").encode(), drop_cache=False)
    write_file_durably(out / "index.html", html.encode("utf-8"), drop_cache=False)
    fsync_dir(out)
    return out / "index.html"


def open_report(dataset_dir: Path | str, **options) -> Path:
    """Build the report and show it in the default web browser (the Kit window's "Open report")."""
    import webbrowser

    page = build_report(dataset_dir, **options)
    webbrowser.open(page.resolve().as_uri())
    return page


__all__ = ["ReportError", "build_report", "open_report", "report_data", "sample_frames"]
