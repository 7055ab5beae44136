"""Benchmark of ``sdgstudio launch`` on a local Ray cluster (not a test): frames/s for 1, 2 and 4 workers.

One local cluster with ``max(cores, 4)`` logical CPUs is started once and warmed up (a small launch with every
worker, so Ray's worker processes exist and have imported the renderer). Then, round robin ``--repeats`` times
(so that on a shared machine every setting sees the same load swings), a launch of ``--frames`` frames of the
built-in scene per worker count is timed from the first task submitted to the merge done (per task: stage build
and backend set-up; rendering; writing; then the merge), next to a single process without Ray (``generate``).
The fastest run of each setting is reported (the least disturbed), every run is listed.

Efficiency = frames/s with N workers / (N x frames/s with 1 worker). "cores used" is the CPU time of the shard
tasks (``run_shard``'s ``cpu_seconds``) per second: scaling stops once it reaches the cores available. "other
load" is the CPU the rest of the machine used meanwhile (/proc/stat minus ours: Ray itself, the driver, other
users); on a shared machine it takes cores away from the run.

With ``--results`` the table replaces the "## Scale-out (bench/scale.py)" section of bench/RESULTS.md (other
sections are left alone; the file is created if missing).

    .venv/bin/python bench/scale.py [--frames 96] [--resolution 320 240] [--workers 1 2 4] [--repeats 3] [--results]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))  # this checkout's code, as the workers get it

from machine import busy_seconds, cpu_model  # noqa: E402  (bench/machine.py)
from sdgstudio.core.config import load_config  # noqa: E402
from sdgstudio.core.generate import generate  # noqa: E402
from sdgstudio.core.launch import launch, start_ray  # noqa: E402

SECTION = "## Scale-out (bench/scale.py)"
RESULTS = REPO / "bench" / "RESULTS.md"


def timed(run) -> dict:
    """Run ``run()`` -> (counted seconds or None for wall time, our CPU seconds); adds the machine's other load."""
    busy0, t0 = busy_seconds(), time.perf_counter()
    seconds, cpu = run()
    wall = time.perf_counter() - t0
    busy1 = busy_seconds()
    others = max(0.0, (busy1 - busy0 - cpu) / wall) if busy0 is not None and busy1 is not None else None
    return {"seconds": seconds or wall, "cpu": cpu, "others": others}


def run_single(config, out: Path, frames: int) -> tuple[None, float]:
    before = os.times()
    generate(config, out, range(frames))
    after = os.times()
    return None, after.user + after.system - before.user - before.system


def run_launch(config, out: Path, frames: int, workers: int) -> tuple[float, float]:
    summary = launch(config, out, frames, workers)
    return summary.seconds, sum(r["cpu_seconds"] for r in summary.results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--resolution", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting; the fastest is reported")
    parser.add_argument("--results", action="store_true", help="write the table into bench/RESULTS.md")
    args = parser.parse_args(argv)

    config = load_config(REPO / "exts/sdgstudio.core/data/scenes/tabletop.toml")
    config.camera.resolution = tuple(args.resolution)
    cores = os.cpu_count() or 1
    started = start_ray(num_cpus=max(cores, max(args.workers)))
    settings = [("1 process, no Ray", 1, lambda out: run_single(config, out, args.frames))]
    settings += [(f"launch --workers {n}", n, lambda out, n=n: run_launch(config, out, args.frames, n))
                 for n in args.workers]
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in settings}
    with tempfile.TemporaryDirectory(prefix="sdgstudio-scale-") as tmp:
        root = Path(tmp)
        launch(config, root / "warmup", max(args.workers) * 2, max(args.workers))  # start and warm every worker
        for r in range(args.repeats):  # round robin: on a shared machine every setting sees the same load swings
            for label, _, run in settings:
                runs[label].append(timed(lambda run=run, r=r, label=label: run(root / f"{label.split()[-1]}-{r}")))
    rows = [(label, n, runs[label]) for label, n, _ in settings]
    if started:
        import ray

        ray.shutdown()

    base = None
    lines = ["| run | workers | frames/s | efficiency | cores used by the run | CPU ms/frame | other load (cores) "
             "| seconds (each run) |", "|---|---|---|---|---|---|---|---|"]
    for label, n, runs in rows:
        best = min(runs, key=lambda r: r["seconds"])  # the run least disturbed by other load (a shared machine)
        fps = args.frames / best["seconds"]
        if label.startswith("launch") and n == 1:
            base = fps
        efficiency = f"{fps / (n * base):.0%}" if base and label.startswith("launch") else "-"
        cores_used = best["cpu"] / best["seconds"]
        cpu_ms = 1000 * statistics.median(r["cpu"] for r in runs) / args.frames
        others_text = f"{best['others']:.2f}" if best["others"] is not None else "-"
        each = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        lines.append(f"| {label} | {n} | **{fps:.1f}** | {efficiency} | {cores_used:.2f} | {cpu_ms:.0f} | "
                     f"{others_text} | {each} |")
    cpu_ms = [1000 * statistics.median(r["cpu"] for r in runs) / args.frames for _, _, runs in rows]
    others = [min(runs, key=lambda r: r["seconds"])["others"] for _, _, runs in rows]
    others = [o for o in others if o is not None]
    notes = [
        f"- CPU per frame: {min(cpu_ms):.0f}-{max(cpu_ms):.0f} ms across all rows, so Ray and sharding add no "
        f"per-frame work; the CPU-bound ceiling of this machine is {cores} cores / {statistics.median(cpu_ms):.0f} ms "
        f"= {cores * 1000 / statistics.median(cpu_ms):.1f} frames/s.",
    ]
    if others and max(others) > 0.25 * cores:
        notes.append(f"- Other processes used up to {max(others):.1f} of the {cores} cores during the reported runs (a "
                     "shared machine): those rows show what was left, not what the machine can do.")
    command = ".venv/bin/python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        SECTION,
        "",
        f"`sdgstudio launch` on a local Ray cluster: {args.frames} frames of the built-in scene at "
        f"{args.resolution[0]}x{args.resolution[1]}, raster backend on CPU, every annotator, PNG/TIFF; fastest of "
        f"{args.repeats} runs (all listed) after a warm-up launch (worker processes started). Time: first task "
        "submitted to merge done. Efficiency: frames/s / (workers x frames/s of 1 worker). Cores used: CPU time of "
        "the shard tasks / wall time. Other load: CPU time of everything else meanwhile (Ray itself, the driver, other "
        "users), in cores.",
        "",
        *lines,
        "",
        *notes,
        f"- machine: {cores} cores (nproc), {cpu_model()}, Python {platform.python_version()}, {platform.system()}",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{command.strip()}`",
        "",
    ])
    print(text)
    if args.results:
        write_section(text)
    return 0


def write_section(text: str) -> None:
    """Replace (or append) this benchmark's section of bench/RESULTS.md, keeping every other section."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    head, found, rest = old.partition(SECTION)
    if found:
        after = rest.find("\n## ")
        tail = rest[after + 1:] if after >= 0 else ""
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
