"""The thread pool that runs CPU kernels as bands of image rows in parallel (Warp releases the GIL while a CPU
kernel runs, so the bands use every core)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def band_pool(threads: int) -> ThreadPoolExecutor | None:
    """The process-wide pool that runs row bands of CPU kernels (Warp releases the GIL while a kernel runs); one
    per thread count, shared by every backend."""
    if threads <= 1:
        return None
    with _POOLS_LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="raster-band")
        return _POOLS[threads]
