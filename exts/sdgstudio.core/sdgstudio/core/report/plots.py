"""The report's plots, drawn with matplotlib (object-oriented API, Agg/SVG, no pyplot global state).

Every plot comes in two colour themes, as standalone SVG (glyphs as paths, so no font is needed to
show it): the page shows the one matching the reader's ``prefers-color-scheme``. Input is the numbers of
``stats.py``; nothing here reads files.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg", force=False)
from matplotlib import rc_context  # noqa: E402 - after choosing the backend
from matplotlib.figure import Figure  # noqa: E402

#: Colours per theme: text/axes, grid lines, bars, flagged items (empty bins, unseen classes).
THEMES: dict[str, dict[str, str]] = {
    "light": {"fg": "#1f2328", "grid": "#d0d7de", "bar": "#2f6fdf", "flag": "#d1242f"},
    "dark": {"fg": "#e6edf3", "grid": "#3d444d", "bar": "#6ea8fe", "flag": "#ff6b6b"},
}

Draw = Callable[[Figure, dict[str, str]], None]


def _rc(colors: dict[str, str]) -> dict:
    return {
        "text.color": colors["fg"], "axes.labelcolor": colors["fg"], "axes.edgecolor": colors["grid"],
        "xtick.color": colors["fg"], "ytick.color": colors["fg"], "grid.color": colors["grid"],
        "axes.grid": True, "axes.axisbelow": True, "grid.linewidth": 0.6, "font.size": 9,
        "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "sdgstudio-report",
        "svg.fonttype": "path",
    }


def render(draw: Draw, size: tuple[float, float], *, margins: dict[str, float] | None = None) -> dict[str, bytes]:
    """SVG bytes of one plot per theme; ``size`` is (width, height) in inches at 96 px per inch.

    The plot is drawn once, in the light theme; the dark one is the same SVG with each light colour replaced by
    its dark counterpart (the theme colours appear in the SVG only as ``#rrggbb`` fill/stroke values), which
    halves the drawing time. ``margins`` (``subplots_adjust`` fractions) replace the constrained layout, which
    costs about half of a small plot's time.
    """
    light = THEMES["light"]
    with rc_context(_rc(light)):
        fig = Figure(figsize=size, dpi=96, layout=None if margins else "constrained")
        if margins:
            fig.subplots_adjust(**margins)
        draw(fig, light)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", transparent=True, metadata={"Date": None})
    svg = buffer.getvalue().decode("utf-8")
    dark = svg
    for key, color in light.items():
        dark = dark.replace(color, THEMES["dark"][key])
    return {"light": svg.encode("utf-8"), "dark": dark.encode("utf-8")}


def class_balance(balance: dict[str, dict]) -> dict[str, bytes]:
    """Visible objects per class; classes never seen are named in the flag colour."""
    names = list(balance)[::-1]

    def draw(fig: Figure, c: dict[str, str]) -> None:
        ax = fig.subplots()
        counts = [balance[n]["objects"] for n in names]
        ax.barh(names, counts, color=c["bar"])
        for label, n in zip(ax.get_yticklabels(), counts, strict=True):
            if n == 0:
                label.set_color(c["flag"])
        ax.set_xlabel("visible objects")
        ax.grid(axis="y", visible=False)

    return render(draw, (6.4, 0.5 + 0.28 * max(len(names), 2)))


def bars(counts: list[int], labels: list[str], xlabel: str, ylabel: str) -> dict[str, bytes]:
    """A plain histogram of already-binned counts with one label per bin."""

    def draw(fig: Figure, c: dict[str, str]) -> None:
        ax = fig.subplots()
        ax.bar(range(len(counts)), counts, color=c["bar"], width=0.85)
        ax.set_xticks(range(len(counts)), labels, rotation=0 if len(counts) <= 14 else 90)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(axis="x", visible=False)

    return render(draw, (6.4, 2.6))


def edge_histograms(panels: list[tuple[list[float], list[int], str, bool]], ylabel: str) -> dict[str, bytes]:
    """Side-by-side histograms given by bin ``edges`` and ``counts``; ``log2`` panels use a base-2 x axis.

    ``panels``: (edges, counts, x label, log2) per panel.
    """

    def draw(fig: Figure, c: dict[str, str]) -> None:
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (edges, counts, xlabel, log2) in zip(axes, panels, strict=True):
            widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
            ax.bar(edges[:-1], counts, width=widths, align="edge", color=c["bar"], edgecolor=c["fg"], linewidth=0.3)
            if log2:
                ax.set_xscale("log", base=2)
            ax.set_xlabel(xlabel)
            ax.grid(axis="x", visible=False)
        axes[0].set_ylabel(ylabel)

    return render(draw, (max(3.3 * len(panels), 5.0), 2.5))


def coverage(name: str, cov: dict) -> dict[str, bytes]:
    """Sampled values per bin across the configured range; empty bins shaded in the flag colour."""
    lo, hi = cov["configured"]
    bins = cov["bins"]
    width = (hi - lo) / bins

    def draw(fig: Figure, c: dict[str, str]) -> None:
        ax = fig.subplots()
        for k in cov["empty_bins"]:
            ax.axvspan(lo + k * width, lo + (k + 1) * width, color=c["flag"], alpha=0.35, linewidth=0)
        ax.bar([lo + k * width for k in range(bins)], cov["counts"], width=width, align="edge",
               color=c["bar"], edgecolor=c["fg"], linewidth=0.3)
        ax.set_xlim(lo, hi)
        ax.tick_params(labelsize=7, length=2)
        ax.locator_params(axis="y", nbins=3)
        ax.locator_params(axis="x", nbins=5)
        ax.grid(axis="x", visible=False)
        ax.set_title(name, fontsize=8, loc="left")

    return render(draw, (3.4, 1.35), margins={"left": 0.13, "right": 0.93, "bottom": 0.2, "top": 0.84})
