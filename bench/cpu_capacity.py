"""How many single-threaded Python workers a machine really runs at once (not a test).

N processes run the same fixed loop of Python and small numpy work (what a raster worker's host side is made of),
started together behind a barrier. The table gives each process's CPU time and the machine's throughput relative
to one process alone: on a machine with N free cores the throughput grows N-fold, on a VM whose cores share
physical cores, or whose clock drops under load, it grows less. The raster benchmark's processes sharing one GPU
can go no faster than this (bench/RESULTS.md, raster, fifth session).

    python bench/cpu_capacity.py [--processes 1 4 8 16 20] [--iterations 6000000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import numpy as np
from machine import cpu_model  # bench/machine.py


def _work(iterations: int, barrier, results) -> None:
    barrier.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    total, a = 0, np.arange(16.0)
    for i in range(iterations):
        total += (i * 7) % 13
        if i % 10 == 0:
            a = a * 1.0000001 + 0.5
    results.put((time.perf_counter() - wall, time.process_time() - cpu))


def measure(processes: int, iterations: int) -> tuple[float, float]:
    """(wall seconds until the last process finished, mean CPU seconds per process)."""
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_work, args=(iterations, barrier, results)) for _ in range(processes)]
    for w in workers:
        w.start()
    got = [results.get() for _ in workers]
    for w in workers:
        w.join()
    return max(wall for wall, _ in got), sum(cpu for _, cpu in got) / processes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="*", default=[1, 4, 8, 16, 20])
    parser.add_argument("--iterations", type=int, default=6_000_000, help="loop length (~1.3 s on one core)")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPU cores\n")
    print("| processes | wall s | CPU s per process | throughput vs one process |")
    print("|---|---|---|---|")
    measure(1, args.iterations)  # warm-up: the first run on a fresh VM was up to 2x slower than the next
    base = None
    for n in args.processes:
        wall, cpu = measure(n, args.iterations)
        rate = n / wall
        base = base or rate / n
        print(f"| {n} | {wall:.2f} | {cpu:.2f} | {rate / base:.1f}x |")


if __name__ == "__main__":
    main()
