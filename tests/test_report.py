"""``sdgstudio report``: report.json's numbers, randomization coverage, files written, the CLI.

The page itself is checked in a real browser in test_report_browser.py; the preview sheet in test_preview.py.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from sdgstudio.core.cli import main
from sdgstudio.core.config import config_to_dict, load_config
from sdgstudio.core.generate import generate
from sdgstudio.core.report import build_report, read_dataset, report_data
from sdgstudio.core.report.stats import coverage_bins, coverage_of


def _generate(tabletop_path: Path, out: Path, frames: int, edit=None) -> Path:
    config = load_config(tabletop_path)
    config.camera.resolution = (160, 120)
    if edit is not None:
        edit(config)
    generate(config, out, range(frames))
    return out


@pytest.fixture(scope="module")
def tabletop_run(tmp_path_factory, tabletop_path) -> Path:
    """The built-in scene, small images: every class seen, some boxes under 10 pixels at this resolution."""
    return _generate(tabletop_path, tmp_path_factory.mktemp("report") / "tabletop", 16)


@pytest.fixture(scope="module")
def sparse_run(tmp_path_factory, tabletop_path) -> Path:
    """Only balls and cans, each possibly absent, plus a class no asset uses: frames without objects and a
    class never seen (seed 0 gives both, checked below)."""

    def sparse(config):
        config.assets = [a for a in config.assets if a.name in ("ball", "can")]
        for asset in config.assets:
            asset.count.min = 0
        config.classes = [*config.classes, "plate"]

    return _generate(tabletop_path, tmp_path_factory.mktemp("report") / "sparse", 24, sparse)


def _labels(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("labels_*.json"))]


def _expected(folder: Path, min_box: int = 10) -> dict:
    """report.json's numbers, recomputed from the label files alone with plain loops."""
    frames = _labels(folder)
    classes = [c["name"] for c in json.loads((folder / "dataset.json").read_text())["classes"]]
    visible = [(f["frame"], o) for f in frames for o in f["objects"] if o["pixel_count"] > 0]
    in_view = [o for f in frames for o in f["objects"] if o["unoccluded_pixel_count"] > 0]
    per_frame = [sum(1 for o in f["objects"] if o["pixel_count"] > 0) for f in frames]
    widths = [o["bbox_2d_tight"][2] - o["bbox_2d_tight"][0] for _, o in visible]
    heights = [o["bbox_2d_tight"][3] - o["bbox_2d_tight"][1] for _, o in visible]
    sizes = [math.sqrt(w * h) for w, h in zip(widths, heights, strict=True)]
    aspect_edges = [0.125 * math.sqrt(2) ** k for k in range(13)]

    def bin_by_edges(value: float, edges: list[float]) -> int:
        k = 0
        while k + 1 < len(edges) - 1 and value >= edges[k + 1] * (1 - 1e-12):
            k += 1
        return k

    def tenths(values: list[float]) -> list[int]:
        counts = [0] * 10
        for v in values:
            counts[min(int(v * 10), 9)] += 1
        return counts

    size_edges = [2.0**k for k in range(int(math.log2(max(sizes))) + 2)]
    size_counts = [0] * (len(size_edges) - 1)
    for s in sizes:
        size_counts[bin_by_edges(s, size_edges)] += 1
    aspect_counts = [0] * 12
    for w, h in zip(widths, heights, strict=True):
        aspect_counts[bin_by_edges(w / h, aspect_edges)] += 1
    depths = [o["pose_in_camera"]["t"][2] for _, o in visible]
    return {
        "counts": {"frames": len(frames), "objects": len(visible), "objects_in_view": len(in_view),
                   "classes_configured": len(classes), "classes_seen": len({o["class"] for _, o in visible})},
        "balance": {c: sum(1 for _, o in visible if o["class"] == c) for c in classes},
        "class_frames": {c: len({f for f, o in visible if o["class"] == c}) for c in classes},
        "per_frame": [per_frame.count(n) for n in range(max(per_frame) + 1)],
        "mean_per_frame": statistics.mean(per_frame),
        "size_counts": size_counts,
        "aspect_counts": aspect_counts,
        "median_width": statistics.median(widths),
        "visible_fraction": tenths([o["visible_fraction"] for o in in_view]),
        "truncation": tenths([o["truncation"] for o in in_view]),
        "depth": (min(depths), max(depths), statistics.mean(depths)),
        "empty_frames": [f["frame"] for f, n in zip(frames, per_frame, strict=True) if n == 0],
        "unlabeled_frames": [f["frame"] for f in frames if f["unlabeled_pixel_count"] > 0],
        "small_boxes": sum(1 for w, h in zip(widths, heights, strict=True) if min(w, h) < min_box),
        "never_seen": [c for c in classes if not any(o["class"] == c for _, o in visible)],
    }


@pytest.mark.parametrize("run", ["tabletop_run", "sparse_run"])
def test_report_json_numbers_equal_a_recount_of_the_label_files(run, request):
    folder = request.getfixturevalue(run)
    build_report(folder)
    report = json.loads((folder / "report" / "report.json").read_text())
    want = _expected(folder)
    assert report["counts"] == want["counts"]
    assert {c: b["objects"] for c, b in report["class_balance"].items()} == want["balance"]
    assert {c: b["frames"] for c, b in report["class_balance"].items()} == want["class_frames"]
    assert report["objects_per_frame"]["histogram"] == want["per_frame"]
    assert report["objects_per_frame"]["mean"] == pytest.approx(want["mean_per_frame"])
    assert report["boxes"]["size"]["counts"] == want["size_counts"]
    assert report["boxes"]["aspect"]["counts"] == want["aspect_counts"]
    assert report["boxes"]["width"]["median"] == want["median_width"]
    assert report["visible_fraction"]["counts"] == want["visible_fraction"]
    assert report["truncation"]["counts"] == want["truncation"]
    depth = report["depth"]
    assert (depth["min"], depth["max"], depth["mean"]) == pytest.approx(want["depth"])
    assert sum(depth["counts"]) == want["counts"]["objects"]
    warnings = {w["kind"]: w for w in report["warnings"]}
    assert warnings.get("frames_without_objects", {}).get("frames", []) == want["empty_frames"]
    assert warnings.get("unlabeled_pixels", {}).get("frames", []) == want["unlabeled_frames"]
    assert warnings.get("small_boxes", {}).get("count", 0) == want["small_boxes"]
    assert warnings.get("classes_never_seen", {}).get("classes", []) == want["never_seen"]


def test_the_recount_exercises_every_label_warning(tabletop_run, sparse_run):
    """Guards the test above: its datasets really contain empty frames, unseen classes and small boxes."""
    sparse, tabletop = _expected(sparse_run), _expected(tabletop_run)
    assert sparse["empty_frames"] and sparse["never_seen"] == ["box", "mug", "bottle", "bowl", "plate"]
    assert tabletop["small_boxes"] > 0 and not tabletop["never_seen"] and tabletop["unlabeled_frames"]


def test_coverage_flags_exactly_the_parameter_sampled_from_a_narrow_range(tmp_path, tabletop_path):
    """A dataset whose camera azimuths were drawn from 200..220 degrees while its config asks for 200..340.

    That is what a randomizer that ignores part of its range produces (a clamp, a wrong unit, a miswired
    field) and what the coverage section exists to catch. We render with the narrow range, then restore the
    declared range in dataset.json. Deterministic: the seed is fixed, and with 30 frames each camera range is
    split in 3 bins (coverage_bins(30) == 3), so 200..220 fills only the first bin of 200..340 while uniform
    draws miss a bin with probability < 1e-4. The same dataset with its true (narrow) config flags nothing,
    so the flag comes from the narrow sampling, not from chance.
    """

    def narrow(config):
        config.camera.azimuth.max = 220.0
        config.camera.resolution = (64, 48)  # coverage reads the manifest only: the smallest useful images

    folder = _generate(tabletop_path, tmp_path / "narrow", 30, narrow)
    honest = report_data(read_dataset(folder))["coverage"]  # the numbers only; the page is built below
    assert honest["available"] and honest["flagged"] == []

    info = json.loads((folder / "dataset.json").read_text())
    info["config"]["camera"]["azimuth"] = {"min": 200.0, "max": 340.0}
    (folder / "dataset.json").write_text(json.dumps(info))
    page = build_report(folder)
    report = json.loads((folder / "report" / "report.json").read_text())
    coverage = report["coverage"]
    assert coverage["flagged"] == ["camera.azimuth"]
    azimuth = coverage["parameters"]["camera.azimuth"]
    assert azimuth["bins"] == 3 and azimuth["empty_bins"] == [1, 2] and azimuth["samples"] == 30
    assert azimuth["configured"] == [200.0, 340.0] and 200.0 <= azimuth["sampled"][0] <= azimuth["sampled"][1] <= 220
    assert [w["parameters"] for w in report["warnings"] if w["kind"] == "coverage"] == [["camera.azimuth"]]
    html = page.read_text()
    assert html.count('<tr class="flagged"><td><code>') == 1
    assert '<tr class="flagged"><td><code>camera.azimuth</code>' in html

    info["config"]["camera"]["azimuth"] = {"min": 205.0, "max": 215.0}  # narrower than what was drawn
    (folder / "dataset.json").write_text(json.dumps(info))
    outside = report_data(read_dataset(folder))["coverage"]
    assert outside["flagged"] == ["camera.azimuth"]
    assert outside["parameters"]["camera.azimuth"]["outside"] > 0


def test_coverage_bins_keep_chance_flags_rare():
    assert [coverage_bins(n) for n in (0, 1, 16, 30, 100, 237, 238, 5000)] == [1, 1, 2, 3, 9, 19, 20, 20]
    for n in (1, 5, 16, 50, 400):
        spread = [10.0 + 5.0 * (k + 0.5) / n for k in range(n)]  # evenly over 10..15
        assert not coverage_of(spread, 10.0, 15.0)["flagged"], n
        low_half = [10.0 + 2.5 * (k + 0.5) / n for k in range(n)]
        assert coverage_of(low_half, 10.0, 15.0)["flagged"] == (n >= 16), n
    assert coverage_of([], 0.0, 1.0)["reason"] == "never sampled"


def test_report_cli_writes_page_and_json_atomically(tabletop_run, capsys):
    assert main(["report", str(tabletop_run), "--min-box", "4", "--samples", "3"]) == 0
    out = tabletop_run / "report"
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "report.json"]  # no temp files left
    report = json.loads((out / "report.json").read_text())
    assert report["report"]["min_box_pixels"] == 4 and [s["frame"] for s in report["samples"]] == [0, 8, 15]
    assert report["dataset"]["name"] == "tabletop" and report["report"]["format"] == "sdgstudio-report/1"
    html = (out / "index.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "http://" not in html and "https://" not in html
    assert str(out / "index.html") in capsys.readouterr().out


def test_report_of_a_folder_that_is_not_a_dataset_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no dataset.json" in err[0]
    assert not (tmp_path / "report").exists()


def test_report_of_a_dataset_with_no_frames_yet(tabletop_run, tmp_path):
    """A run that has written dataset.json but no frame: a report that says so, not a crash."""
    (tmp_path / "manifest.jsonl").touch()
    (tmp_path / "dataset.json").write_bytes((tabletop_run / "dataset.json").read_bytes())
    page = build_report(tmp_path)
    report = json.loads(page.with_name("report.json").read_text())
    assert report["counts"]["frames"] == report["counts"]["objects"] == 0 and report["samples"] == []
    assert {w["kind"] for w in report["warnings"]} == {"classes_never_seen", "coverage"}
    assert all(c["reason"] == "never sampled" for c in report["coverage"]["parameters"].values())


def test_coverage_unavailable_when_the_config_cannot_be_rebuilt(tabletop_run, tmp_path):
    """A dataset moved away from its asset files still gets a report; coverage says why it is missing."""
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(tabletop_run, moved, ignore=shutil.ignore_patterns("report"))
    info = json.loads((moved / "dataset.json").read_text())
    info["config"]["assets"][3]["source"] = "/nonexistent/mug.usda"
    (moved / "dataset.json").write_text(json.dumps(info))
    build_report(moved)
    report = json.loads((moved / "report" / "report.json").read_text())
    assert not report["coverage"]["available"] and "mug.usda" in report["coverage"]["error"]
    assert "coverage_unavailable" in {w["kind"] for w in report["warnings"]}
    assert report["counts"]["frames"] == 16


def test_config_round_trip_keeps_every_randomized_range(tabletop):
    """Coverage rebuilds the config from dataset.json; the ranges it reads must be the ones generate used."""
    from sdgstudio.core.config import config_from_dict
    from sdgstudio.core.sampler import parameter_ranges

    assert parameter_ranges(config_from_dict(config_to_dict(tabletop))) == parameter_ranges(tabletop)
