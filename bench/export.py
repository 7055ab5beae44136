"""Benchmark of the dataset exports (not a test): export time against dataset size, per format.

Synthesizes datasets of N frames x 20 objects (label files, instance and depth images written directly, no
rendering: ``sdgstudio.core.export.synthetic``), then exports each to COCO, YOLO, KITTI and BOP, each export in a
fresh process (its wall time and peak RSS), and prints a table with the 10k/1k time ratio per format (linear
scaling gives ~10; the acceptance bound is < 12). BOP's full silhouettes come from the synthetic shapes here (the
raster replay that real datasets use costs one ray-cast pass per frame, like rendering, and is linear too).

    .venv/bin/python bench/export.py [--frames 1000 10000] [--objects 20] [--size 320 240] [--dir DIR]
        [--streaming 48] [--results bench/RESULTS.md]

``--streaming N`` also times ``generate`` of N rendered frames of the built-in scene with no export and with all
four formats streamed (``output.formats``), the cost of exporting while generating on this machine.
``--results`` replaces the "## Export (bench/export.py)" section of that file with the tables.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))

from machine import cpu_model  # noqa: E402  (bench/machine.py: this folder is on the path when run as a script)

FORMATS = ("coco", "yolo", "kitti", "bop")
SECTION = "## Export (bench/export.py)"


def _export_child(root: str, fmt: str, out: str) -> tuple[float, float, float, int]:
    """In a fresh process: export ``root`` to ``fmt`` into ``out``; returns (wall seconds, CPU seconds of this
    process, peak RSS MiB, objects kept)."""
    sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))
    from sdgstudio.core.export import export_dataset
    from sdgstudio.core.export.synthetic import synthetic_silhouettes

    extra = {"silhouettes": synthetic_silhouettes} if fmt == "bop" else {}
    start, cpu = time.perf_counter(), time.process_time()
    summary = export_dataset(root, fmt, out=out, split="train=0.8,val=0.1,test=0.1", **extra)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return wall, cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, summary["objects_kept"]


def _generate_child(frames: int, formats: list[str], out: str) -> float:
    """In a fresh process: ``generate`` of ``frames`` frames of the built-in scene at 320x240; returns seconds."""
    sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))
    from sdgstudio.core.config import load_config
    from sdgstudio.core.export.synthetic import TABLETOP
    from sdgstudio.core.generate import generate

    config = load_config(TABLETOP)
    config.camera.resolution = (320, 240)
    config.output.formats = formats
    generate(config, out, range(1))  # warm-up: Warp kernels, stage, caches (not timed)
    shutil.rmtree(out)
    start = time.perf_counter()
    generate(config, out, range(frames))
    return time.perf_counter() - start


def _streaming(frames: int, work: Path, context) -> list[str]:
    """Table rows: generate with no export, with all four formats streamed, and with no export again."""
    rows = []
    for label, formats in (("no export", []), ("coco, yolo, kitti, bop", list(FORMATS)), ("no export", [])):
        out = work / "stream"
        shutil.rmtree(out, ignore_errors=True)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            seconds = pool.submit(_generate_child, frames, formats, str(out)).result()
        shutil.rmtree(out, ignore_errors=True)
        print(f"generate {frames} frames, {label}: {seconds:.1f} s", file=sys.stderr)
        rows.append(f"| {label} | {frames} | {seconds:.1f} | {frames / seconds:.1f} |")
    return rows


def _du(path: Path) -> float:
    """MiB of the files under ``path`` (hard links to the dataset's RGB counted once, by the dataset)."""
    seen, total = set(), 0
    for p in path.rglob("*"):
        if p.is_file():
            st = p.stat()
            if st.st_nlink > 1 or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--size", type=int, nargs=2, default=[320, 240], metavar=("W", "H"))
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--dir", type=Path, help="work folder, kept (default: a temp folder, removed afterwards); "
                        "synthetic datasets already there with the right frame count are reused")
    parser.add_argument("--streaming", type=int, default=0, metavar="N", help="also time generate of N frames with "
                        "and without streamed exports")
    parser.add_argument("--results", type=Path, help="write the table into this markdown file's export section")
    args = parser.parse_args()

    from sdgstudio.core.export.synthetic import write_synthetic_dataset

    work = args.dir or Path(tempfile.mkdtemp(prefix="sdg-export-bench-"))
    small, large = min(args.frames), max(args.frames)
    runs: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
    context = multiprocessing.get_context("spawn")
    try:
        for n in sorted(set(args.frames)):
            root = work / f"ds_{n}"
            manifest = root / "manifest.jsonl"
            if args.dir is not None and manifest.exists() and len(manifest.read_bytes().splitlines()) == n:
                continue  # a dataset an earlier run with --dir left, same size: keep it
            shutil.rmtree(root, ignore_errors=True)
            t = time.perf_counter()
            write_synthetic_dataset(root, n, width=args.size[0], height=args.size[1], objects=args.objects)
            print(f"synthesized {n} frames in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        # Per format: small, large, small again, so a shared machine's load drifts into both sizes alike.
        for fmt in args.formats:
            for k, n in enumerate([small, large, small] if large != small else [small]):
                out = work / f"out_{fmt}_{n}_{k}"
                shutil.rmtree(out, ignore_errors=True)
                with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                    wall, cpu, rss, _ = pool.submit(_export_child, str(work / f"ds_{n}"), fmt, str(out)).result()
                size = _du(out)
                runs.setdefault((fmt, n), []).append((wall, cpu, rss, size))
                print(f"{fmt:5s} {n:6d} frames: {wall:7.1f} s wall {cpu:7.1f} s CPU {1000 * wall / n:6.2f} ms/frame "
                      f"peak RSS {rss:5.0f} MiB  {size:7.0f} MiB", file=sys.stderr)
        streaming = _streaming(args.streaming, work, context) if args.streaming else []
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)

    def mean(fmt: str, n: int, i: int) -> float:
        return sum(r[i] for r in runs[fmt, n]) / len(runs[fmt, n])

    lines = ["| format | frames | wall s | CPU s | wall ms/frame | peak RSS MiB | export MiB | wall ratio | CPU ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for fmt in args.formats:
        for n in sorted(set(args.frames)):
            wall, cpu = mean(fmt, n, 0), mean(fmt, n, 1)
            ratios = "| | |"
            if n == large and large != small:
                ratios = f"| {wall / mean(fmt, small, 0):.2f} | {cpu / mean(fmt, small, 1):.2f} |"
            lines.append(f"| {fmt} | {n} | {wall:.1f} | {cpu:.1f} | {1000 * wall / n:.2f} | {mean(fmt, n, 2):.0f} | "
                         f"{mean(fmt, n, 3):.0f} {ratios}")
    command = "python bench/export.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        SECTION, "",
        f"{datetime.date.today().isoformat()}, `{command.strip()}`; machine: {os.cpu_count()} cores (`nproc` "
        f"{len(os.sched_getaffinity(0))}), {cpu_model()}, Python {platform.python_version()}. Synthetic frames "
        f"{args.size[0]}x{args.size[1]}, {args.objects} objects each (some occluded or cut by the border; objects "
        "with no visible pixel are dropped), split train=0.8,val=0.1,test=0.1. Each export runs in a fresh process "
        f"(`export_dataset`: per-frame files + assembly; BOP includes ~3-5 s of rebuilding the scene once for its PLY "
        f"models), per format in the order {small}, {large}, {small} frames; the {small}-frame numbers are the mean "
        f"of both runs. Ratios: {large}-frame time / {small}-frame time (linear = {large / small:g}). CPU s is the "
        "export process's user + system time, which other jobs on a shared machine disturb less than wall time. "
        "Export MiB excludes the hard-linked RGB.",
        "", *lines, ""])
    if streaming:
        text += "\n".join([
            "", f"Exporting while generating: `generate` of {args.streaming} rendered frames of the built-in scene at "
            "320x240 (raster backend, CPU), each run in a fresh process after a 1-frame warm-up; the export thread "
            "shares the cores with the renderer and the writer.", "",
            "| exports | frames | seconds | frames/s |", "|---|---|---|---|", *streaming, ""])
    print(text)
    if args.results:
        old = args.results.read_text() if args.results.exists() else "# Benchmark results\n"
        if SECTION in old:
            head, _, rest = old.partition(SECTION)
            tail = rest.split("\n## ", 1)
            old = head + text + ("\n## " + tail[1] if len(tail) > 1 else "")
        else:
            old = old.rstrip("\n") + "\n\n" + text
        args.results.write_text(old)


if __name__ == "__main__":
    main()
