"""What the benchmarks say about the machine they ran on: the CPU model, and how busy all of it was (to tell
other processes' load from ours); and a benchmark run under a private MPS daemon."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def busy_seconds() -> float | None:
    """CPU seconds all processes used since boot (Linux /proc/stat; None elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@contextmanager
def under_mps(enabled: bool) -> Iterator[None]:
    """With ``enabled``, the block runs under a private NVIDIA MPS daemon (``sdgstudio.core.mps``): its pipe folder
    is set in this process's environment, which its worker processes inherit, before anything first uses CUDA.
    This process is a client too, so the daemon quits after it exits."""
    if not enabled:
        yield
        return
    from sdgstudio.core.mps import mps_daemon

    with mps_daemon(quit_wait_s=0) as env:
        os.environ.update(env)
        yield
