"""NVIDIA's Multi-Process Service (MPS) for several render processes sharing one GPU.

Without MPS each process has its own CUDA context and the GPU switches between them in time slices; with 16-20
raster processes on one H100 the driver's side of that cost each process ~50% more host CPU per frame (11.7 ->
17.2 ms, `bench/raster_profile.py --background 15`). With MPS the processes' work goes through one server
context and runs side by side (bench/RESULTS.md, raster section). A process joins MPS when it creates its CUDA
context while a control daemon answers at ``CUDA_MPS_PIPE_DIRECTORY`` (default ``/tmp/nvidia-mps``); otherwise it
runs as it would without MPS.

:func:`mps_daemon` starts a private daemon (pipes and logs in a temporary folder) for the processes started
inside it, and stops it with its server afterwards. On a shared cluster node, start MPS once per node instead
(``nvidia-cuda-mps-control -d`` before ``ray start``): docs/scale-out.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

CONTROL = "nvidia-cuda-mps-control"
PIPE_ENV, LOG_ENV = "CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY"


class MPSError(RuntimeError):
    """The MPS control daemon could not be started (one line, for the CLI)."""


@contextmanager
def mps_daemon(timeout_s: float = 30.0, quit_wait_s: float = 30.0) -> Iterator[dict[str, str]]:
    """Start an MPS control daemon of our own; yields the environment variables its clients need (set them in a
    process before it first uses CUDA). On exit the daemon is asked to quit: it stops with its server once the
    last client has exited. Its folder is removed when that happened within ``quit_wait_s`` seconds; a caller
    that is itself a client (it used CUDA) passes 0, and the daemon ends after it."""
    control = shutil.which(CONTROL)
    if control is None:
        raise MPSError(f"{CONTROL} not found on PATH: MPS comes with the NVIDIA driver's utilities")
    folder = tempfile.mkdtemp(prefix="sdgstudio-mps-")
    env = {PIPE_ENV: os.path.join(folder, "pipe"), LOG_ENV: os.path.join(folder, "log")}
    for path in env.values():
        os.mkdir(path)
    daemon_env = {**os.environ, **env}
    stopped = True  # until the daemon runs
    try:
        started = subprocess.run([control, "-d"], env=daemon_env, capture_output=True, text=True, timeout=timeout_s)
        if started.returncode != 0:
            why = (started.stderr or started.stdout).strip().splitlines()
            raise MPSError(f"{CONTROL} -d failed (exit {started.returncode})" + (f": {why[-1]}" if why else ""))
        try:
            yield env
        finally:
            stopped = _ask_to_quit(control, daemon_env, quit_wait_s)
    finally:
        if stopped:
            shutil.rmtree(folder, ignore_errors=True)


def _ask_to_quit(control: str, env: dict[str, str], wait_s: float) -> bool:
    """Sends the daemon ``quit``; True when it stopped within ``wait_s`` seconds."""
    quitting = subprocess.Popen([control], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, text=True)
    quitting.stdin.write("quit\n")
    quitting.stdin.close()
    try:
        quitting.wait(wait_s)
    except subprocess.TimeoutExpired:  # clients still attached (this process): it quits after them
        return False
    return True


__all__ = ["CONTROL", "LOG_ENV", "MPSError", "PIPE_ENV", "mps_daemon"]
