"""The inner HTML of each report section, from ``report.json``'s numbers (plus images for the sample grid)."""

from __future__ import annotations

import io
from html import escape

from ..overlay import draw_overlay
from . import plots
from .load import DatasetContents
from .page import cards, data_uri, fmt, page, plot_html, summary_table, table
from .stats import ASPECT_EDGES

#: Sample-grid tile width, pixels (shown at up to this size; JPEG quality 85 keeps the page small).
TILE_WIDTH = 400


def _summary(data: dict) -> str:
    c, d = data["counts"], data["dataset"]
    width, height = d.get("resolution") or ("?", "?")
    flagged = len(data["coverage"].get("flagged", []))
    items = [("frames", fmt(c["frames"])), ("visible objects", fmt(c["objects"])),
             ("objects in view", fmt(c["objects_in_view"])),
             ("classes seen", f'{c["classes_seen"]} / {c["classes_configured"]}'),
             ("warnings", fmt(len(data["warnings"]))), ("coverage flags", fmt(flagged))]
    about = table(["dataset", "resolution", "seed", "backend", "written by"], [[
        escape(str(d.get("name"))), f"{width} × {height} px", escape(str(d.get("seed"))),
        escape(str(d.get("backend"))), f"sdgstudio {escape(str(d.get('tool_version')))}"]])
    return cards(items) + about


def _warnings(data: dict) -> str:
    if not data["warnings"]:
        return '<p class="ok">No warnings.</p>'
    items = []
    for w in data["warnings"]:
        frames = w.get("frames", [])
        shown = ", ".join(str(f) for f in frames[:30]) + (" …" if len(frames) > 30 else "")
        extra = f' <span class="muted">frames: {shown}</span>' if frames else ""
        items.append(f'<li><code class="flag">{escape(w["kind"])}</code> {escape(w["message"])}{extra}</li>')
    return f'<ul class="warnings">{"".join(items)}</ul>'


def _classes(data: dict) -> str:
    balance = data["class_balance"]
    rows = [[escape(name), fmt(b["objects"]), fmt(b["frames"]), f'{b["share"]:.1%}'] for name, b in balance.items()]
    unseen = {k for k, (name, b) in enumerate(balance.items()) if b["objects"] == 0}
    return plot_html(plots.class_balance(balance), "visible objects per class") + table(
        ["class", "visible objects", "frames", "share"], rows, numeric={1, 2, 3},
        row_class=lambda k: "flagged" if k in unseen else "")


def _objects_per_frame(data: dict) -> str:
    opf = data["objects_per_frame"]
    hist = opf["histogram"]
    return (plot_html(plots.bars(hist, [str(k) for k in range(len(hist))], "visible objects in the frame", "frames"),
                      "frames by number of visible objects") + summary_table(opf))


def _boxes(data: dict) -> str:
    b = data["boxes"]
    size, aspect = b["size"], b["aspect"]
    svgs = plots.edge_histograms([(size["edges"], size["counts"], "box size √(w·h), pixels", True),
                                  (ASPECT_EDGES, aspect["counts"], "aspect w / h (ends clipped)", True)], "boxes")
    rows = [[name, *(fmt(b[key][k]) for k in ("min", "median", "mean", "max"))]
            for name, key in (("width, px", "width"), ("height, px", "height"), ("size √(w·h), px", "size"),
                              ("aspect w / h", "aspect"))]
    return (plot_html(svgs, "histograms of tight box size and aspect ratio")
            + table(["tight boxes of visible objects", "min", "median", "mean", "max"], rows, numeric={1, 2, 3, 4}))


def _visibility(data: dict) -> str:
    edges = [k / 10 for k in range(11)]
    vf, tr = data["visible_fraction"], data["truncation"]
    svgs = plots.edge_histograms([(edges, vf["counts"], "visible fraction", False),
                                  (edges, tr["counts"], "truncation", False)], "objects in view")
    rows = [[name, *(fmt(s[k]) for k in ("min", "median", "mean", "max"))]
            for name, s in (("visible fraction", vf), ("truncation", tr))]
    return (plot_html(svgs, "histograms of visible fraction and truncation")
            + table(["objects in view (0 = fully occluded or outside)", "min", "median", "mean", "max"], rows,
                    numeric={1, 2, 3, 4}))


def _depth(data: dict) -> str:
    d = data["depth"]
    if not d["counts"]:
        return '<p class="flag">No visible objects, so no depth range.</p>'
    svgs = plots.edge_histograms([(d["edges"], d["counts"], "object depth (camera-frame z of its origin), m",
                                   False)], "visible objects")
    return plot_html(svgs, "histogram of object depth") + summary_table(d, " m")


def _motion(data: dict) -> str:
    f = data["optical_flow"]
    if not f["frames"]:
        return ('<p class="muted">No optical flow in this dataset: add the <code>optical_flow</code> annotator and '
                'set <code>sequence.length</code> above 1 (docs/sequences.md).</p>')
    svgs = plots.edge_histograms([(f["mean_px"]["edges"][:-1] + [f["mean_px"]["edges"][-2] * 2], f["mean_px"]["counts"],
                                   "mean flow magnitude per frame, px", False)], "frames")
    rows = [[label] + [fmt(f[key][k]) for k in ("min", "median", "mean", "max")]
            for label, key in (("mean magnitude, px", "mean_px"), ("95th percentile, px", "p95_px"),
                               ("valid fraction", "valid_fraction"), ("object speed, m/s", "object_speed_m_per_s"))]
    return (plot_html(svgs, "histogram of per-frame mean optical-flow magnitude")
            + f'<p class="muted">{f["frames"]} frames with forward flow.</p>'
            + table(["per frame", "min", "median", "mean", "max"], rows, numeric={1, 2, 3, 4}))


def _coverage(data: dict) -> str:
    cov = data["coverage"]
    if not cov["available"]:
        return f'<p class="flag">Coverage not computed: {escape(cov["error"])}</p>'
    params = cov["parameters"]
    intro = (f"<p>{len(params)} randomized parameters; <b class=\"{'flag' if cov['flagged'] else 'ok'}\">"
             f"{len(cov['flagged'])} flagged</b>. Each configured range is split into as many bins (up to 20) as "
             "the samples can fill by chance with probability ≥ 1 − 10⁻⁴; an empty bin or a value outside the "
             "range flags the parameter. Object parameters pool every visible object.</p>")
    rows = []
    for name, c in params.items():
        lo, hi = c["configured"]
        sampled = "–" if c["sampled"] is None else f'{fmt(c["sampled"][0], 4)} … {fmt(c["sampled"][1], 4)}'
        if c["flagged"]:
            status = f'<span class="flag">{escape(c["reason"])}</span>'
        else:
            status = '<span class="ok">covered</span>' if c["judged"] else '<span class="muted">too few samples</span>'
        rows.append([f"<code>{escape(name)}</code>", f"{fmt(lo, 4)} … {fmt(hi, 4)}", sampled, fmt(c["samples"]),
                     fmt(c["bins"]), status, plot_html(plots.coverage(name, c), f"{name} samples per bin")])
    names = list(params)
    fixed = ", ".join(f"<code>{escape(k)}</code> = {fmt(v, 4)}" for k, v in cov["fixed"].items())
    return intro + table(["parameter", "configured", "sampled", "samples", "bins", "status", "samples per bin"], rows,
                         numeric={3, 4}, row_class=lambda k: "flagged" if params[names[k]]["flagged"] else "") + (
        f'<p class="muted">Not randomized (fixed): {fixed}</p>' if fixed else "")


def _tile(contents: DatasetContents, position: int) -> str:
    from ..encoders import read_layer

    entry, labels = contents.entries[position], contents.labels[position]
    rgb_path = contents.file_of(entry, "rgb")
    visible = sum(1 for o in labels["objects"] if o["pixel_count"] > 0)
    caption = f'frame {labels["frame"]} · {visible} visible objects'
    if rgb_path is None:
        return f'<figure><p class="muted">no rgb image</p><figcaption>{escape(caption)}</figcaption></figure>'
    inst_path = contents.file_of(entry, "instance_segmentation")
    image = draw_overlay(read_layer(rgb_path), read_layer(inst_path) if inst_path else None, labels["objects"],
                         width=min(TILE_WIDTH, int(labels["camera"]["width"])))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return (f'<figure><img src="{data_uri(buffer.getvalue(), "image/jpeg")}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _samples(data: dict, contents: DatasetContents) -> str:
    if not data["samples"]:
        return '<p class="flag">No frames.</p>'
    by_frame = {int(lab["frame"]): k for k, lab in enumerate(contents.labels)}
    tiles = "".join(_tile(contents, by_frame[s["frame"]]) for s in data["samples"])
    return ('<p class="muted">Masks tinted and tight boxes outlined in each class\'s colour, with its name.</p>'
            f'<div class="grid">{tiles}</div>')


def render_page(data: dict, contents: DatasetContents) -> str:
    """The report page for ``data`` (``report_data``'s result) of the dataset read into ``contents``."""
    sections = {
        "summary": _summary(data), "warnings": _warnings(data), "classes": _classes(data),
        "objects-per-frame": _objects_per_frame(data), "boxes": _boxes(data), "visibility": _visibility(data),
        "depth": _depth(data), "motion": _motion(data), "coverage": _coverage(data), "samples": _samples(data, contents),
    }
    d = data["dataset"]
    subtitle = (f'{escape(d["path"])} · report by sdgstudio {escape(data["report"]["tool_version"])}, '
                f'{escape(data["report"]["generated_at"])}')
    return page(f"Dataset report: {d.get('name') or 'dataset'}", subtitle, sections)
