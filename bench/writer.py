"""Benchmark of the streaming dataset writer (not a test): prints a table.

Measures, on a 1280x720 payload that looks rendered (gradients, flat and shaded shapes, mild noise, depth with
sky = inf, ~20 objects in the masks, normals, labels for 20 objects):

(a) sustained frames/s when frames are submitted as fast as the writer accepts them (until close() returns),
    with the CPU time it took per frame and the CPU other processes used meanwhile (a shared machine);
(b) a synchronous baseline like Replicator's BasicWriter (PIL default PNG, ``np.save`` for float layers,
    instance/semantic ids as 4-channel uint8 PNG views, plain writes, one thread) and the ratio (a)/(b);
(c) the fraction of time the renderer is blocked in submit() at an offered load of 30 frames/s.

``--encoders`` first prints the per-layer encoder comparison that chose the formats (see encoders.py).

    .venv/bin/python bench/writer.py [--frames 300] [--out DIR] [--workers 2 3 4] [--encoders]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
from machine import busy_seconds  # bench/machine.py
from PIL import Image
from sdgstudio.core import encoders
from sdgstudio.core.frame import CameraData, FrameData, ObjectLabel
from sdgstudio.core.writer import DatasetWriter

H, W = 720, 1280


def make_frame(seed: int, n_objects: int = 20) -> FrameData:
    """A render-like frame: floor and sky, spheres (shaded, curved normals) and boxes (flat), mild noise."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([60 + 120 * u / W, 80 + 100 * v / H, 140 + 60 * np.sin(u / 200 + v / 300)], -1)
    horizon = H // 4
    depth = (2.0 + 8.0 * (1 - v / H) + 0.3 * (u / W)).astype(np.float32)
    depth[:horizon] = np.inf
    normals = np.zeros((H, W, 3), np.float32)
    normals[horizon:] = (0.0, 0.0, 1.0)  # world up
    instance = np.zeros((H, W), np.uint32)
    semantic = np.zeros((H, W), np.uint16)
    objects = []
    for i in range(1, n_objects + 1):
        cx, cy, r = rng.uniform(60, W - 60), rng.uniform(horizon, H - 30), rng.uniform(20, 90)
        colour, distance = rng.uniform(30, 230, 3), rng.uniform(1.5, 8.0)
        if i % 2:  # sphere
            d2 = ((u - cx) ** 2 + (v - cy) ** 2) / (r * r)
            mask = d2 < 1
            nz = np.sqrt(np.clip(1 - d2, 0, 1))
            rgb[mask] = (colour * (0.4 + 0.6 * nz)[..., None])[mask]
            normals[mask] = np.stack([(u - cx) / r, -(v - cy) / r, nz], -1)[mask]
            depth[mask] = (distance - 0.2 * nz)[mask]
        else:  # box face
            mask = (abs(u - cx) < r) & (abs(v - cy) < 0.7 * r)
            rgb[mask] = colour
            normals[mask] = (0.0, -1.0, 0.0)
            depth[mask] = distance + 0.001 * (u - cx)[mask]
        instance[mask] = i
        semantic[mask] = 1 + i % 5
        rows, cols = np.nonzero(instance == i)
        box = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)) \
            if rows.size else None
        pose = np.eye(4)
        pose[:3, 3] = (cx / W - 0.5, cy / H - 0.5, distance)
        objects.append(ObjectLabel(
            instance_id=i, prim_path=f"/World/Objects/obj_{i:02d}", class_name=f"class_{1 + i % 5}",
            class_id=1 + i % 5, pixel_count=int(rows.size), unoccluded_pixel_count=int(mask.sum()),
            visible_fraction=rows.size / max(1, int(mask.sum())), truncation=0.0, bbox_2d_tight=box,
            bbox_2d_loose=box, bbox_3d_extents=((-0.05, -0.05, -0.05), (0.05, 0.05, 0.05)), local_to_world=pose,
            pose_in_camera=pose, scale=(1.0, 1.0, 1.0), is_target=i == 1))
    rgb += rng.normal(0.0, 2.0, rgb.shape)
    K = np.array([[900.0, 0, W / 2], [0, 900.0, H / 2], [0, 0, 1]])
    return FrameData(index=0, camera=CameraData(W, H, K, np.eye(4), "/World/Camera"), objects=objects,
                     rgb=np.clip(rgb, 0, 255).astype(np.uint8), depth=depth, instance_segmentation=instance,
                     semantic_segmentation=semantic, normals=normals)


def record_for(index: int) -> dict:
    return {"frame": index, "seed": 1234, "params": {"light_intensity": 1000.0 + index, "camera_yaw_deg": 3.5}}


def timed(fn, repeat: int = 5) -> tuple[float, int]:
    """Median milliseconds of fn() over ``repeat`` runs after one warm-up, and len() of its result."""
    result = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), len(result)


def pil_bytes(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray, compressed: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, a=array) if compressed else np.save(buffer, array)
    return buffer.getvalue()


def print_encoder_table(frame: FrameData) -> None:
    """Per-layer candidates: one thread, median of 5, on this frame."""
    backend = encoders._isal_zlib
    rows = []

    def ours(label, fn):
        for name, module in (("isal", backend), ("zlib", None)):
            if name == "isal" and module is None:
                continue
            encoders._isal_zlib = module
            try:
                rows.append((f"{label} [{name}]", *timed(fn)))
            finally:
                encoders._isal_zlib = backend

    rgb, ids = frame.rgb, frame.instance_segmentation.astype(np.uint16)
    rows.append(("rgb PIL PNG default (level 6)", *timed(lambda: pil_bytes(rgb, "PNG"), 3)))
    rows.append(("rgb PIL PNG compress_level=1", *timed(lambda: pil_bytes(rgb, "PNG", compress_level=1))))
    ours("rgb PNG Up filter, level 1", lambda: encoders.encode_png(rgb))
    rows.append(("rgb PIL JPEG q95", *timed(lambda: pil_bytes(rgb, "JPEG", quality=95))))
    rows.append(("ids PIL PNG 16-bit default", *timed(lambda: pil_bytes(ids, "PNG"))))
    ours("ids PNG 16-bit Up filter, level 1", lambda: encoders.encode_png(ids))
    for name in ("depth", "normals"):
        array = getattr(frame, name)
        rows.append((f"{name} .npy", *timed(lambda a=array: npy_bytes(a))))
        rows.append((f"{name} np.savez_compressed", *timed(lambda a=array: npy_bytes(a, True))))
        ours(f"{name} TIFF predictor 2, level 1", lambda a=array: encoders.encode_tiff(a))
    rows.append(("depth PIL TIFF deflate", *timed(lambda: pil_bytes(frame.depth, "TIFF",
                                                                    compression="tiff_adobe_deflate"))))
    print(f"\n{'encoder (1 thread, 1280x720)':44} {'ms':>8} {'MB':>8}")
    for label, ms, size in rows:
        print(f"{label:44} {ms:8.1f} {size / 1e6:8.3f}")


def run_sustained(frames: list[FrameData], count: int, out: Path, workers: int | None, queue_depth: int | None,
                  rgb_format: str) -> dict:
    """(a): submit ``count`` frames as fast as accepted; the clock stops when close() returns."""
    writer = DatasetWriter(out, workers=workers, queue_depth=queue_depth, rgb_format=rgb_format)
    writer.start({"bench": "sustained"})
    cpu0, busy0, t0 = os.times(), busy_seconds(), time.perf_counter()
    for i in range(count):
        writer.submit(dataclasses.replace(frames[i % len(frames)], index=i), record_for(i))
    writer.close()
    elapsed = time.perf_counter() - t0
    cpu1, busy1 = os.times(), busy_seconds()
    own = cpu1.user - cpu0.user + cpu1.system - cpu0.system
    progress = writer.progress()
    return {"fps": count / elapsed, "blocked": progress.blocked_seconds / elapsed,
            "mb_per_frame": progress.bytes_written / count / 1e6, "workers": writer.workers,
            "queue_depth": writer.queue_depth, "cpu_ms": 1000 * own / count,
            "others": (busy1 - busy0 - own) / elapsed if busy0 is not None else float("nan")}


def run_baseline(frames: list[FrameData], count: int, out: Path) -> float:
    """(b): synchronous encode + write in the style of Replicator's BasicWriter; returns frames/s."""
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    for i in range(count):
        frame = frames[i % len(frames)]
        files = {
            f"rgb_{i:04d}.png": pil_bytes(frame.rgb, "PNG"),
            f"distance_to_image_plane_{i:04d}.npy": npy_bytes(frame.depth),
            f"instance_segmentation_{i:04d}.png": pil_bytes(frame.instance_segmentation.view(np.uint8).reshape(
                H, W, 4), "PNG"),
            f"semantic_segmentation_{i:04d}.png": pil_bytes(frame.semantic_segmentation.astype(np.uint32).view(
                np.uint8).reshape(H, W, 4), "PNG"),
            f"normals_{i:04d}.npy": npy_bytes(frame.normals),
            f"labels_{i:04d}.json": json.dumps(frame.labels_json()).encode(),
        }
        for name, data in files.items():
            (out / name).write_bytes(data)
    return count / (time.perf_counter() - t0)


def run_offered_load(frames: list[FrameData], fps: float, seconds: float, out: Path, workers: int | None,
                     queue_depth: int | None, rgb_format: str) -> dict:
    """(c): submit on a fixed ``fps`` schedule for ``seconds``; blocked fraction of the submitting period."""
    writer = DatasetWriter(out, workers=workers, queue_depth=queue_depth, rgb_format=rgb_format)
    writer.start({"bench": "offered-load"})
    count = round(fps * seconds)
    cpu0, busy0, t0 = os.times(), busy_seconds(), time.perf_counter()
    for i in range(count):
        delay = t0 + i / fps - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        writer.submit(dataclasses.replace(frames[i % len(frames)], index=i), record_for(i))
    submitting = time.perf_counter() - t0
    blocked = writer.progress().blocked_seconds
    writer.close()
    elapsed = time.perf_counter() - t0
    cpu1, busy1 = os.times(), busy_seconds()
    own = cpu1.user - cpu0.user + cpu1.system - cpu0.system
    return {"count": count, "achieved_fps": count / submitting, "blocked": blocked / submitting,
            "drain_s": elapsed - submitting,
            "others": (busy1 - busy0 - own) / elapsed if busy0 is not None else float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames for (a), per workers setting")
    parser.add_argument("--baseline-frames", type=int, default=12, help="frames for the (slow) baseline (b)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temp dir, removed)")
    parser.add_argument("--workers", type=int, nargs="*", default=[None], help="worker counts to compare")
    parser.add_argument("--queue-depth", type=int, default=None)
    parser.add_argument("--rgb-format", choices=("png", "jpg"), default="png")
    parser.add_argument("--offered-fps", type=float, default=30.0)
    parser.add_argument("--offered-seconds", type=float, default=10.0)
    parser.add_argument("--encoders", action="store_true", help="print the per-layer encoder comparison first")
    args = parser.parse_args(argv)

    print(f"date {datetime.datetime.now().isoformat(timespec='seconds')}  cpus {os.cpu_count()}  "
          f"python {platform.python_version()}  numpy {np.__version__}  pillow {PIL.__version__}  "
          f"deflate {encoders.deflate_backend()}  {platform.platform()}")
    frames = [make_frame(seed) for seed in range(8)]
    if args.encoders:
        print_encoder_table(frames[0])
    root = args.out or Path(tempfile.mkdtemp(prefix="sdgstudio-bench-"))
    try:
        print(f"\n(a) sustained, {args.frames} frames, rgb {args.rgb_format}, output {root}")
        print(f"{'workers':>8} {'queue':>6} {'frames/s':>9} {'blocked':>8} {'MB/frame':>9} {'CPU ms/frame':>13} "
              f"{'other load (cores)':>19}")
        best = 0.0
        for workers in args.workers:
            out = root / f"sustained_w{workers or 'default'}"
            r = run_sustained(frames, args.frames, out, workers, args.queue_depth, args.rgb_format)
            best = max(best, r["fps"])
            print(f"{r['workers']:>8} {r['queue_depth']:>6} {r['fps']:9.1f} {r['blocked']:8.1%} "
                  f"{r['mb_per_frame']:9.2f} {r['cpu_ms']:13.1f} {r['others']:19.2f}")
        base = run_baseline(frames, args.baseline_frames, root / "baseline")
        print(f"(b) baseline (BasicWriter-style, synchronous): {base:.2f} frames/s; ratio (a)/(b) = {best / base:.1f}x")
        r = run_offered_load(frames, args.offered_fps, args.offered_seconds, root / "offered", args.workers[0],
                             args.queue_depth, args.rgb_format)
        print(f"(c) offered {args.offered_fps:g} frames/s for {args.offered_seconds:g} s: {r['count']} frames at "
              f"{r['achieved_fps']:.1f} frames/s, blocked {r['blocked']:.2%} of the time, "
              f"close() drained in {r['drain_s'] * 1000:.0f} ms; other load {r['others']:.2f} cores")
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
