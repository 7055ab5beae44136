"""``sdgstudio launch``: the shards of one run as Ray tasks, a progress bar over all of them, then the merge.

Ray schedules, places and retries; we add only what is ours. Shard ``i`` of ``N`` (``shards.shard_frames``) is
one task asking for ``num_cpus``/``num_gpus``, writing ``OUT.shards/<i>-of-<N>/``. A task whose worker dies
(killed, out of memory, node lost) or that raises is retried by Ray (``max_retries``); the retry finds the
shard's ``dataset.json`` and resumes from its manifest: listed frames are kept, the files of unlisted ones are
deleted and re-rendered, so nothing is lost or duplicated. The driver polls the shard manifests for the
progress bar (new bytes only), and once every shard is done merges them into ``OUT`` (hard links) and removes
``OUT.shards``. Running the same command again after a failure resumes every shard.

Every node must see ``OUT`` (and the config's assets) at the same path: a shared file system on a cluster.
Workers import the ``sdgstudio`` package the driver imported (its folder is put first on their PYTHONPATH), so
a checkout, a worktree or an installed copy all run their own code; nodes of a real cluster need it at the
same path or installed.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from .config import SDGConfig, config_from_dict, config_to_dict
from .generate import check_resumable
from .manifest import DATASET_INFO_NAME, MANIFEST_NAME, listed_frames
from .mps import mps_daemon
from .session import RunError
from .shards import MergeSummary, generate_shard, merge_shards, read_shard_info, shard_frames


class LaunchError(RuntimeError):
    """A shard failed on every attempt; the message is one line. Finished shards are kept for a rerun."""


def shards_root(out: Path | str) -> Path:
    """Where ``launch`` keeps the shard folders of ``out`` until they are merged: ``OUT.shards``."""
    out = Path(out)
    return out.with_name(out.name + ".shards")


def shard_dir(out: Path | str, index: int, count: int) -> Path:
    return shards_root(out) / f"{index:04d}-of-{count:04d}"


def code_root() -> Path:
    """The folder holding the ``sdgstudio`` package this process runs (``exts/sdgstudio.core`` in a checkout)."""
    return Path(__file__).resolve().parents[2]


def runtime_env(env: dict[str, str] | None = None) -> dict:
    """Ray runtime env that makes workers import this process's ``sdgstudio`` first (Ray expands ``${...}``),
    with ``env`` (e.g. an MPS daemon's pipe folder) set too."""
    return {"env_vars": {"PYTHONPATH": f"{code_root()}{os.pathsep}${{PYTHONPATH}}", **(env or {})}}


def start_ray(address: str | None = None, num_cpus: int | None = None, env: dict[str, str] | None = None) -> bool:
    """Connect to the Ray cluster at ``address``, or start a local one (``None``); returns False when Ray was
    already initialized in this process (then it is used as is, and the caller must not shut it down). ``env``:
    environment variables of the workers."""
    try:
        import ray
    except ImportError:
        raise RunError("launch needs Ray: pip install 'sdgstudio[scale]' (or pip install ray)") from None
    if ray.is_initialized():
        return False
    common = {"runtime_env": runtime_env(env), "log_to_driver": False, "logging_level": "WARNING"}
    if address in (None, "local"):
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **common)
    else:
        ray.init(address=address, **common)
    return True


def run_shard(config_data: dict, folder: str, total: int, index: int, count: int, backend: str, device: str) -> dict:
    """Body of one shard task (runs on a Ray worker): render the shard's missing frames into ``folder``."""
    cpu = os.times()
    config = config_from_dict(config_data)
    out = Path(folder)
    resume = (out / DATASET_INFO_NAME).is_file()  # an earlier attempt (or launch) started it: keep its frames
    kept = len(listed_frames(out)) if resume else 0
    summary = generate_shard(config, out, total, index, count, resume=resume, backend=backend, device=device)
    used = os.times()
    return {"shard": index, "rendered": summary.frames_written, "kept": kept, "resumed": resume,
            "seconds": summary.seconds, "cpu_seconds": used.user + used.system - cpu.user - cpu.system,
            "host": socket.gethostname(), "pid": os.getpid(), "code": str(code_root())}


class ManifestProgress:
    """Frames listed so far in each shard folder, read incrementally (only bytes appended since the last poll).

    Only complete lines count; a torn last line is never counted and is the only thing a resumed writer cuts, so
    the counts never go down.
    """

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self.counts = [0] * len(folders)
        self._offsets = [0] * len(folders)

    def poll(self) -> list[int]:
        for i, folder in enumerate(self.folders):
            try:
                with open(folder / MANIFEST_NAME, "rb") as f:
                    f.seek(self._offsets[i])
                    data = f.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1
            self.counts[i] += data.count(b"\n", 0, end)
            self._offsets[i] += end
        return list(self.counts)


@dataclass
class LaunchSummary:
    out_dir: Path
    frames: int
    shards: int
    seconds: float  #: from the first task submitted to the merge done (excludes starting Ray)
    results: list[dict] = field(default_factory=list)  #: run_shard's return value per shard, in shard order
    merge: MergeSummary | None = None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _check_existing_shards(folders: list[Path], config: SDGConfig, backend: str, total: int, count: int) -> None:
    """Refuse, before starting anything, shard folders left by a launch with other settings (a rerun resumes)."""
    for index, folder in enumerate(folders):
        if (folder / DATASET_INFO_NAME).is_file():
            check_resumable(folder, config, backend)
        info = read_shard_info(folder)
        if info is not None and (info["total"], info["count"], info["shard"]) != (total, count, index):
            raise RunError(f"{folder} holds shard {info['shard']}/{info['count']} of {info['total']} frames, "
                           f"not {index}/{count} of {total}; remove it or choose another --out")


def _failure_line(index: int, count: int, exc: BaseException, attempts: int) -> str:
    cause = getattr(exc, "cause", None) or exc  # RayTaskError wraps the task's own exception
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return f"shard {index}/{count} failed after {attempts} attempts: {type(cause).__name__}: {text}"


def launch(
    config: SDGConfig,
    out_dir: Path | str,
    total: int,
    workers: int,
    *,
    address: str | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    backend: str = "raster",
    device: str | None = None,
    max_retries: int = 3,
    keep_shards: bool = False,
    mps: bool = False,
    on_progress: Callable[[list[int]], None] | None = None,
    poll_seconds: float = 0.5,
) -> LaunchSummary:
    """Render ``total`` frames of ``config`` as ``workers`` shards on Ray and merge them into ``out_dir``.

    ``address``: an existing cluster (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``), or None for a local
    one with ``max(cores, workers x cpus_per_worker)`` CPUs, so every shard runs at once. ``device`` defaults to
    ``cuda`` when ``gpus_per_worker`` > 0 (Ray sets CUDA_VISIBLE_DEVICES per task). ``on_progress`` gets the
    frames listed per shard after every poll. ``mps``: a private MPS daemon serves the local cluster's workers
    while they render (several workers per GPU: ``mps.py``). Raises ``RunError`` (bad request) or ``LaunchError``
    (a shard failed on all ``1 + max_retries`` attempts; the other shards finish first and are kept).
    """
    out = Path(out_dir).absolute()  # tasks may run in another working directory, or on another machine
    if (out / MANIFEST_NAME).exists():
        raise RunError(f"{out_dir} already holds a dataset; choose an empty folder")
    if workers < 1 or total < 1:
        raise RunError(f"expected workers >= 1 and frames >= 1, got {workers} and {total}")
    count = min(workers, total)
    folders = [shard_dir(out, i, count) for i in range(count)]
    _check_existing_shards(folders, config, backend, total, count)
    device = device or ("cuda" if gpus_per_worker > 0 else "cpu")
    if mps and address not in (None, "local"):
        raise RunError("--mps starts MPS for a local cluster; on an existing cluster start it on each GPU node "
                       "before `ray start` (docs/scale-out.md)")
    if mps and not device.startswith("cuda"):
        raise RunError(f"--mps is for workers sharing a GPU; the device is {device}")
    with ExitStack() as stack:
        env = stack.enter_context(mps_daemon()) if mps else {}
        started = start_ray(address, num_cpus=max(os.cpu_count() or 1, math.ceil(count * cpus_per_worker)), env=env)
        if started:
            stack.callback(_shutdown_ray)  # before the MPS daemon stops
        elif mps:
            raise RunError("--mps needs the Ray cluster this launch starts (Ray is already running here)")
        return _render_and_merge(config, out, Path(out_dir), total, folders, ShardTasks(
            cpus_per_worker, gpus_per_worker, backend, device, max_retries), keep_shards, on_progress, poll_seconds)


def _shutdown_ray() -> None:
    import ray

    ray.shutdown()


@dataclass
class ShardTasks:
    """How each shard task runs: its Ray resources, backend and device, and retries."""

    cpus: float
    gpus: float
    backend: str
    device: str
    max_retries: int


def _render_and_merge(config: SDGConfig, out: Path, out_dir: Path, total: int, folders: list[Path], tasks: ShardTasks,
                      keep_shards: bool, on_progress: Callable[[list[int]], None] | None, poll_seconds: float
                      ) -> LaunchSummary:
    """``launch`` once Ray is up: one task per shard folder, the progress polls, the merge."""
    import ray

    count = len(folders)

    refs: dict = {}
    pending: list = []  # refs not yet finished
    try:
        resources = ray.cluster_resources()
        for name, need in (("CPU", tasks.cpus), ("GPU", tasks.gpus)):
            if need > resources.get(name, 0):
                raise RunError(f"the Ray cluster has {resources.get(name, 0):g} {name}s; each worker asks for {need:g}")
        task = ray.remote(run_shard)
        data = config_to_dict(config)
        start = time.perf_counter()
        for i, folder in enumerate(folders):
            ref = task.options(
                name=f"sdgstudio-shard-{i}-of-{count}", num_cpus=tasks.cpus, num_gpus=tasks.gpus,
                max_retries=tasks.max_retries, retry_exceptions=True,
            ).remote(data, str(folder), total, i, count, tasks.backend, tasks.device)
            refs[ref] = i
            pending.append(ref)
        progress = ManifestProgress(folders)
        results, failures = {}, {}
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_seconds)
            for ref in done:
                try:
                    results[refs[ref]] = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...: reported below
                    failures[refs[ref]] = exc
            counts = progress.poll()
            if on_progress is not None:
                on_progress(counts)
        if failures:
            index = min(failures)
            more = f" (and {len(failures) - 1} more shards)" if len(failures) > 1 else ""
            raise LaunchError(f"{_failure_line(index, count, failures[index], 1 + tasks.max_retries)}{more}; finished shards "
                              f"are kept in {shards_root(out)}: run the same command again to resume")
        merged = merge_shards(out, folders)
        seconds = time.perf_counter() - start
    except BaseException:
        # Ctrl-C or an error: stop what still runs (its frames so far are kept). Only unfinished tasks: cancelling
        # one that has finished, before its reply reached this driver, aborts the driver (Ray 2.60.0 CHECK failure
        # "Tried to complete task that was not pending", seen here once in ~6 CI runs).
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    if not keep_shards:  # the merged folder holds hard links (or copies): the shard folders are no longer needed
        for folder in folders:
            shutil.rmtree(folder)
        if not any(shards_root(out).iterdir()):
            shards_root(out).rmdir()
    return LaunchSummary(out_dir=out_dir, frames=total, shards=count, seconds=seconds,
                         results=[results[i] for i in range(count)], merge=merged)


__all__ = ["LaunchError", "LaunchSummary", "ManifestProgress", "launch", "run_shard", "shard_dir", "shard_frames",
           "shards_root", "start_ray"]
