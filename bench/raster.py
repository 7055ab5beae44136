"""Raster backend benchmark: frames/s of the built-in scene, end to end (sample -> stage -> render -> write).

Prints a Markdown table (paste into bench/RESULTS.md) with the machine, the date and the command.
Usage: python bench/raster.py [--frames N] [--resolution 640x480] [--device cpu|cuda] [--scene FILE]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))

from sdgstudio.core.config import load_config  # noqa: E402
from sdgstudio.core.generate import RenderSession, generate, make_backend  # noqa: E402
from sdgstudio.core.sampler import CAMERA_PATH, sample_frame_params  # noqa: E402
from sdgstudio.core.stage import apply_frame_params  # noqa: E402


def stage_split(config, frames: int, device: str) -> dict[str, float]:
    """Mean milliseconds per frame of each pipeline stage (no writer)."""
    session = RenderSession(config, make_backend("raster", config, device))
    session.render(0)  # warm-up: kernel compile, tessellation caches
    totals = {"sample": 0.0, "apply": 0.0, "render": 0.0}
    for index in range(1, frames + 1):
        t0 = time.perf_counter()
        params = sample_frame_params(config, config.seed, index)
        t1 = time.perf_counter()
        apply_frame_params(session.stage, params)
        t2 = time.perf_counter()
        session.backend.render(session.stage, CAMERA_PATH, tuple(config.camera.resolution), session.annotators, index)
        t3 = time.perf_counter()
        totals["sample"] += t1 - t0
        totals["apply"] += t2 - t1
        totals["render"] += t3 - t2
    return {k: 1000 * v / frames for k, v in totals.items()}


def end_to_end(config, frames: int, device: str) -> float:
    """Frames/s of `generate` (writer included), after a one-frame warm-up run."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(config, Path(tmp) / "warm", [0], device=device)
        summary = generate(config, Path(tmp) / "run", range(frames), device=device)
    return summary.frames_per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--resolution", default="640x480")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scene", type=Path, default=REPO / "exts/sdgstudio.core/data/scenes/tabletop.toml")
    args = parser.parse_args()
    config = load_config(args.scene)
    config.camera.resolution = tuple(int(v) for v in args.resolution.lower().split("x"))
    split = stage_split(config, max(10, args.frames // 3), args.device)
    fps = end_to_end(config, args.frames, args.device)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    print(f"date: {datetime.date.today()}  command: python bench/raster.py {' '.join(sys.argv[1:])}")
    print(f"scene: {args.scene.name}, {args.resolution}, annotators: {', '.join(config.annotators)}, device {args.device}")
    print("| stage | ms/frame |\n|---|---|")
    for name, ms in split.items():
        print(f"| {name} | {ms:.1f} |")
    print(f"| **end to end (writer included)** | **{1000 / fps:.1f}** ({fps:.1f} frames/s) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
