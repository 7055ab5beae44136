"""Where a raster frame's time goes (not a test): host functions (cProfile) and device work per kernel / copy.

Renders the built-in tabletop at 640x480 with every annotator the way a run does (``RenderSession.frames``), then
prints the host functions with the most time of their own and, on CUDA, the device time of each kernel and copy
per frame (``wp.timing_begin``). For the tables in bench/RESULTS.md. ``--background N`` renders the same scene
in N other processes meanwhile, as when many workers share one GPU: what grows then is what contention costs.

    python bench/raster_profile.py [--device cpu|cuda] [--frames 100] [--top 25] [--background 15] [--mps]
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing as mp
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))

import warp as wp  # noqa: E402
from machine import under_mps  # noqa: E402  (bench/machine.py)
from sdgstudio.core.config import load_config  # noqa: E402
from sdgstudio.core.raster import RasterBackend, RasterSettings  # noqa: E402
from sdgstudio.core.session import RenderSession  # noqa: E402

TABLETOP = REPO / "exts/sdgstudio.core/data/scenes/tabletop.toml"


def tabletop_session(device: str) -> RenderSession:
    config = load_config(TABLETOP)
    config.camera.resolution = (640, 480)
    return RenderSession(config, RasterBackend(list(config.classes), RasterSettings(device=device)))


def render_until(device: str, ready, stop, offset: int) -> None:
    """A background process: renders the tabletop until ``stop`` is set."""
    wp.config.quiet = True
    session = tabletop_session(device)
    for _ in session.frames(range(3)):
        pass
    ready.release()
    k = offset
    while not stop.is_set():
        for _ in session.frames(range(k, k + 10)):
            pass
        k += 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--background", type=int, default=0, help="other processes rendering meanwhile")
    parser.add_argument("--mps", action="store_true", help="under a private NVIDIA MPS daemon")
    args = parser.parse_args()
    with under_mps(args.mps):
        return profile(args)


def profile(args: argparse.Namespace) -> int:
    wp.config.quiet = True
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Semaphore(0), ctx.Event()
    others = [ctx.Process(target=render_until, args=(args.device, ready, stop, 100_000 * (p + 1)), daemon=True)
              for p in range(args.background)]
    for p in others:
        p.start()
    for _ in others:
        ready.acquire()
    session = tabletop_session(args.device)
    for _ in session.frames(range(3)):
        pass
    n = args.frames
    t, cpu = time.perf_counter(), time.process_time()
    for _ in session.frames(range(100, 100 + n)):
        pass
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(f"{n / wall:.1f} frames/s, {1000 * cpu / n:.2f} CPU ms/frame (unprofiled)")
    profile = cProfile.Profile()
    profile.enable()
    for _ in session.frames(range(1000, 1000 + n)):
        pass
    profile.disable()
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(args.top)
    if wp.get_device(args.device).is_cuda:
        per = defaultdict(float)
        wp.timing_begin(cuda_filter=wp.TIMING_ALL)
        for _ in session.frames(range(5000, 5000 + 20)):
            pass
        for r in wp.timing_end():
            per[r.name] += r.elapsed / 20
        print("device ms per frame (kernels, copies, fills):")
        for name, ms in sorted(per.items(), key=lambda kv: -kv[1]):
            print(f"  {ms:8.4f}  {name}")
        print(f"  {sum(per.values()):8.4f}  total")
    stop.set()
    for p in others:
        p.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
