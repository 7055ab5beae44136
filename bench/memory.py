"""Benchmark of memory over a long run (not a test): resident size every N frames of ``generate``.

Runs the whole pipeline (sampler, stage, raster backend, streaming writer, manifest) in this process on the
built-in tabletop scene at a tiny resolution, so 5000 frames take a few minutes, and reads the resident set
size (VmRSS, /proc/self/status) after every ``--every`` frames. The claim checked: RSS after 5000 frames is
within 50 MB of RSS after 500 (nothing grows per frame: not the writer's queue, reorder buffer or rate window,
not the manifest, not the run's warnings).

    .venv/bin/python bench/memory.py [--frames 5000] [--every 500] [--resolution 64 48] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))  # this checkout's code, even from another venv

from machine import cpu_model  # noqa: E402  (bench/machine.py)
from sdgstudio.core.config import load_config  # noqa: E402
from sdgstudio.core.generate import generate  # noqa: E402

LIMIT_MB = 50.0


def rss_mb() -> float:
    """Current resident set size in MB (VmRSS); peak RSS (ru_maxrss) where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--every", type=int, default=500, help="read RSS after every this many frames")
    parser.add_argument("--resolution", type=int, nargs=2, default=(64, 48), metavar=("W", "H"))
    parser.add_argument("--out", type=Path, default=None, help="dataset folder (default: a temp dir, removed)")
    args = parser.parse_args(argv)

    config = load_config(REPO / "exts" / "sdgstudio.core" / "data" / "scenes" / "tabletop.toml")
    config.camera.resolution = tuple(args.resolution)
    root = args.out or Path(tempfile.mkdtemp(prefix="sdgstudio-memory-"))
    out = root / "run" if args.out is None else root
    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}  cpus {os.cpu_count()} ({cpu_model()})  "
          f"python {platform.python_version()}  {platform.platform()}")
    print(f"generate {args.frames} frames of the tabletop scene at {args.resolution[0]}x{args.resolution[1]} "
          f"into {out}, RSS after every {args.every}")
    print(f"{'frames':>7} {'RSS MB':>8} {'vs first':>9} {'frames/s':>9}   (frames/s: rendered, over the last interval)")
    samples: list[tuple[int, float]] = []
    count, last = 0, time.perf_counter()

    def sample(index: int, frame) -> None:
        nonlocal count, last
        count += 1
        if count % args.every == 0:
            rss, now = rss_mb(), time.perf_counter()
            samples.append((count, rss))
            print(f"{count:7d} {rss:8.1f} {rss - samples[0][1]:+9.1f} {args.every / (now - last):9.1f}", flush=True)
            last = now

    try:
        summary = generate(config, out, range(args.frames), on_frame=sample)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    growth = samples[-1][1] - samples[0][1] if len(samples) > 1 else 0.0
    verdict = "PASS" if abs(growth) <= LIMIT_MB else "FAIL"
    print(f"RSS after {samples[-1][0]} frames - after {samples[0][0]}: {growth:+.1f} MB (limit {LIMIT_MB:g} MB): "
          f"{verdict}; {summary.frames_written} frames in {summary.seconds:.0f} s, "
          f"renderer blocked {summary.blocked_seconds:.1f} s")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
