"""The report page: one self-contained HTML file (plots and images as data URIs, no script, no network).

A Content-Security-Policy that allows only inline styles and ``data:`` images makes the "no network" promise
checkable: a browser refuses, and logs, any other load. Light and dark colours follow ``prefers-color-scheme``;
each plot comes in both themes inside a ``<picture>``, so the browser shows the matching one.
"""

from __future__ import annotations

import base64
from html import escape

#: Section ids, in page order, with their headings (tests and the Kit window rely on these ids).
SECTIONS: dict[str, str] = {
    "summary": "Summary",
    "warnings": "Warnings",
    "classes": "Class balance",
    "objects-per-frame": "Objects per frame",
    "boxes": "2D boxes: size and aspect",
    "visibility": "Visible fraction and truncation",
    "depth": "Depth range",
    "motion": "Optical flow and motion",
    "coverage": "Randomization coverage",
    "samples": "Sample frames",
}

STYLE = """
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --card: #f6f8fa;
  --line: #d0d7de; --flag: #d1242f; --flag-bg: #ffebe9; --ok: #1a7f37; }
@media (prefers-color-scheme: dark) { :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --card: #161b22;
  --line: #3d444d; --flag: #ff7b72; --flag-bg: #3c1618; --ok: #3fb950; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2rem 1.5rem 3rem; }
header h1 { margin: 0.2rem 0; font-size: 1.6rem; } header p { margin: 0; color: var(--muted); }
nav { margin: 0.8rem 0 0; display: flex; flex-wrap: wrap; gap: 0.3rem 1rem; font-size: 0.9rem; }
a { color: inherit; }
section { margin-top: 1.6rem; padding: 1rem 1.2rem; background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; }
section h2 { margin: 0 0 0.6rem; font-size: 1.2rem; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.4rem 0; }
th, td { padding: 0.25rem 0.7rem 0.25rem 0; text-align: left; border-bottom: 1px solid var(--line);
  vertical-align: middle; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; }
.card { padding: 0.5rem 0.9rem; border: 1px solid var(--line); border-radius: 6px; min-width: 8rem; }
.card b { display: block; font-size: 1.5rem; }
.muted { color: var(--muted); }
.flag { color: var(--flag); font-weight: 600; } .ok { color: var(--ok); }
tr.flagged td { background: var(--flag-bg); }
ul.warnings li { margin: 0.25rem 0; } code { font-size: 0.85em; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 0.8rem; }
figure { margin: 0; } figcaption { font-size: 0.85rem; color: var(--muted); margin-top: 0.2rem; }
.scroll { overflow-x: auto; }
"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def plot_html(svgs: dict[str, bytes], alt: str) -> str:
    """A plot in both themes; the browser picks the one matching the colour scheme."""
    dark = data_uri(svgs["dark"], "image/svg+xml")
    light = data_uri(svgs["light"], "image/svg+xml")
    return (f'<picture><source media="(prefers-color-scheme: dark)" srcset="{dark}">'
            f'<img src="{light}" alt="{escape(alt)}"></picture>')


def fmt(value: float | int | None, digits: int = 3) -> str:
    """A number for a table cell: integers as is, floats to ``digits`` significant digits, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), row_class=None) -> str:
    """An HTML table; cells are already-escaped HTML, ``numeric`` column indices are right-aligned."""
    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(header))
    body = []
    for k, row in enumerate(rows):
        tr = f' class="{row_class(k)}"' if row_class and row_class(k) else ""
        body.append(f"<tr{tr}>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row)) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def summary_table(stats: dict, unit: str = "") -> str:
    """min / median / mean / max of a ``stats._summary`` dict as one table row."""
    return table(["min", "median", "mean", "max"], [[fmt(stats[k]) + unit for k in ("min", "median", "mean", "max")]],
                 numeric={0, 1, 2, 3})


def cards(items: list[tuple[str, str]]) -> str:
    inner = "".join(f'<div class="card"><b>{v}</b>{escape(k)}</div>' for k, v in items)
    return f'<div class="cards">{inner}</div>'


def page(title: str, subtitle: str, sections: dict[str, str]) -> str:
    """The whole document; ``sections`` maps each id of ``SECTIONS`` to its inner HTML."""
    nav = "".join(f'<a href="#{sid}">{escape(SECTIONS[sid])}</a>' for sid in SECTIONS)
    body = "".join(f'<section id="{sid}"><h2>{escape(SECTIONS[sid])}</h2>{sections[sid]}</section>' for sid in SECTIONS)
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<header><h1>{escape(title)}</h1><p>{subtitle}</p><nav>{nav}</nav></header>{body}"
        "</main></body></html>\n"
    )
