"""Benchmark of ``sdgstudio report`` on a 5,000-frame dataset (not a test): prints a Markdown section.

Rendering 5k frames takes ~30 min on 2 cores, so the dataset is synthesized: a few frames are rendered for
real (rgb, instance masks and labels, 640x480, the built-in scene), then 5k frames are written whose label
files are copies of those (frame number changed, same JSON layout and size as the writer's), whose manifest
lines carry the sampler's real parameters for that frame (so coverage sees 5k real draws), and whose rgb and
instance files are hard links to the rendered ones. The report reads exactly what it reads in a real dataset.

Times, median of ``--repeat`` runs: the CLI end to end in a fresh process (imports included: what a user
waits for), and in-process the parts of ``build_report`` (read, numbers, page, write).

    .venv/bin/python bench/report.py [--frames 5000] [--rendered 8] [--repeat 3] [--results bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))

from sdgstudio.core.config import load_config  # noqa: E402
from sdgstudio.core.encoders import encode_labels, encode_manifest_line  # noqa: E402
from sdgstudio.core.generate import dataset_info, generate  # noqa: E402
from sdgstudio.core.manifest import write_dataset_info  # noqa: E402
from sdgstudio.core.sampler import sample_frame_params  # noqa: E402

SCENE = REPO / "exts" / "sdgstudio.core" / "data" / "scenes" / "tabletop.toml"
SECTION = "## Report (bench/report.py)"


def synthesize(out: Path, frames: int, rendered: int) -> None:
    """A ``frames``-frame dataset in ``out`` built from ``rendered`` real frames (see the module docstring)."""
    config = load_config(SCENE)
    config.annotators = ["rgb", "instance_segmentation", "bounding_box_2d_tight", "bounding_box_2d_loose",
                         "bounding_box_3d", "pose_6d"]
    real = out.parent / "rendered"
    generate(config, real, range(rendered))
    labels = [json.loads((real / f"labels_{k:06d}.json").read_text()) for k in range(rendered)]
    out.mkdir()
    write_dataset_info(out, dataset_info(config, "raster"))
    lines = []
    for i in range(frames):
        k = i % rendered
        files = {"rgb": f"rgb_{i:06d}.png", "instance_segmentation": f"instance_{i:06d}.png",
                 "labels": f"labels_{i:06d}.json"}
        os.link(real / f"rgb_{k:06d}.png", out / files["rgb"])
        os.link(real / f"instance_{k:06d}.png", out / files["instance_segmentation"])
        (out / files["labels"]).write_bytes(encode_labels({**labels[k], "frame": i}))
        params = sample_frame_params(config, config.seed, i).to_json()
        lines.append(encode_manifest_line({"frame": i, "seed": config.seed, "params": params, "files": files,
                                           "sha256": {}}))
    (out / "manifest.jsonl").write_bytes(b"".join(lines))


def time_cli(dataset: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO / "exts" / "sdgstudio.core")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sdgstudio.core.cli", "report", str(dataset)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_parts(dataset: Path) -> dict[str, float]:
    from sdgstudio.core.report import build as build_module
    from sdgstudio.core.report.load import read_dataset
    from sdgstudio.core.report.sections import render_page

    t0 = time.perf_counter()
    contents = read_dataset(dataset)
    t1 = time.perf_counter()
    data = build_module.report_data(contents)
    t2 = time.perf_counter()
    render_page(data, contents)
    t3 = time.perf_counter()
    return {"read labels + manifest": t1 - t0, "numbers + coverage": t2 - t1, "plots + page": t3 - t2}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores (nproc), {cpu}, Python {platform.python_version()}, {platform.system()}; "
            f"load average when done {load} (a shared VM: other jobs were running)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--rendered", type=int, default=8, help="frames rendered for real")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, help="replace (or append) this benchmark's section in this file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sdgstudio-bench-report-"))
    try:
        dataset = work / "dataset"
        t = time.perf_counter()
        synthesize(dataset, args.frames, args.rendered)
        setup = time.perf_counter() - t
        cli = [time_cli(dataset) for _ in range(args.repeat)]
        parts = [time_parts(dataset) for _ in range(args.repeat)]
        report = json.loads((dataset / "report" / "report.json").read_text())
        page_mb = (dataset / "report" / "index.html").stat().st_size / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)

    median = statistics.median(cli)
    counts = report["counts"]
    rows = "\n".join(f"| {name} | {statistics.median(p[name] for p in parts):.2f} s |" for name in parts[0])
    text = f"""{SECTION}

`sdgstudio report` on a synthesized {args.frames:,}-frame dataset of the built-in scene ({counts['objects']:,}
visible objects, {len(report['coverage']['parameters'])} randomized parameters, 640x480 sample tiles; how it
is synthesized: bench/report.py's docstring). Budget: under 60 s.

| measure | time |
|---|---|
| CLI end to end, fresh process (median of {args.repeat}: {', '.join(f'{c:.2f}' for c in cli)} s) | **{median:.2f} s** |
{rows}

Page: {page_mb:.1f} MB, self-contained. Setup (render {args.rendered} frames, write {args.frames:,}): {setup:.0f} s.

- machine: {machine()}
- date: {datetime.date.today().isoformat()}
- command: `.venv/bin/python bench/report.py --frames {args.frames} --rendered {args.rendered} --repeat {args.repeat}`
"""
    print(text)
    if args.results is not None:
        old = args.results.read_text() if args.results.exists() else "# Benchmark results\n"
        if SECTION in old:
            head, rest = old.split(SECTION, 1)
            tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
            new = head + text + tail.lstrip("\n") if not tail else head + text + "\n" + tail.lstrip("\n")
        else:
            new = old.rstrip("\n") + "\n\n" + text
        args.results.write_text(new)
    return 0 if median < 60 else 1


if __name__ == "__main__":
    sys.exit(main())
