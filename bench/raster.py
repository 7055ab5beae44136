"""Raster backend benchmark (not a test): frames/s, time per stage, scaling with pixels and triangles.

Scenes: the built-in tabletop (every annotator) and a generated 200-object scene (spheres and capsules on a floor,
two lights and a dome) whose triangle count is set by the tessellation ``segments``: 80 gives ~1.2M triangles,
25 about a tenth of that. Each measured frame first moves the scene (tabletop: the next sampled frame; 200 objects:
new random poses), so caches hold only what a real run could reuse.

Measured (means over ``--frames`` frames after warm-up; wall clock and this process's CPU time):

* render + labels: ``RasterBackend.render`` alone, with the split by stage (``last_timings``);
* as a run: ``RenderSession.frames`` (what ``generate`` renders with: frame k+1 is posed and read while frame k's
  passes run), writer excluded, in one or several processes sharing the device (``--processes 1 4 8``);
* end to end: ``generate`` with the writer (tabletop only), frames/s over the whole run;
* scaling: time ratios for 2x pixels (640x480 -> 906x678) and ~10x triangles (segments 25 -> 80); the two sides
  of each pair render alternately (a, b, a, b, ...) so that both see the same load on a shared machine.

"Other load" is the CPU time other processes used during a measurement, in cores (a shared machine slows us).

    python bench/raster.py [--device cpu|cuda] [--frames 40] [--quick] [--json results.json] [--only NAME ...]
                           [--processes 1 4 8] [--in-flight 0 1] [--mps]

``--mps`` runs the benchmark under a private NVIDIA MPS daemon (``sdgstudio.core.mps``): processes sharing one
GPU then share one server context instead of time-slicing their own.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "exts" / "sdgstudio.core"))

import warp as wp  # noqa: E402
from machine import busy_seconds, under_mps  # noqa: E402  (bench/machine.py)
from pxr import Gf, Usd, UsdGeom, UsdLux, UsdSemantics  # noqa: E402
from sdgstudio.core.config import load_config  # noqa: E402
from sdgstudio.core.generate import generate  # noqa: E402
from sdgstudio.core.raster import RasterBackend, RasterSettings  # noqa: E402
from sdgstudio.core.session import RenderSession  # noqa: E402

TABLETOP = REPO / "exts/sdgstudio.core/data/scenes/tabletop.toml"
ALL = ["rgb", "depth", "instance_segmentation", "semantic_segmentation", "normals", "bounding_box_2d_tight",
       "bounding_box_2d_loose", "bounding_box_3d", "pose_6d"]
BIG_CLASSES = ["ball", "capsule", "box"]


class CpuMeter:
    """Wall time, this process's CPU time and other processes' CPU time (cores) over a with-block."""

    def __enter__(self):
        self.t, self.c, self.total = time.perf_counter(), time.process_time(), busy_seconds()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.cpu = time.process_time() - self.c
        now = busy_seconds()
        busy = now - self.total if now is not None and self.total is not None else None
        self.others = max(0.0, (busy - self.cpu) / self.wall) if busy is not None and self.wall > 0 else float("nan")


def big_scene(n_objects: int = 200, seed: int = 0) -> Usd.Stage:
    """Floor, back wall, ``n_objects`` labelled spheres / capsules (and a few cubes), camera, sun, bulb, dome."""
    rng = np.random.default_rng(seed)
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    floor = UsdGeom.Cube.Define(stage, "/World/floor")
    floor.AddTranslateOp().Set(Gf.Vec3d(0, 0, -0.01))
    floor.AddScaleOp().Set(Gf.Vec3f(4.0, 4.0, 0.01))
    wall = UsdGeom.Cube.Define(stage, "/World/wall")
    wall.AddTranslateOp().Set(Gf.Vec3d(0, 2.0, 1.0))
    wall.AddScaleOp().Set(Gf.Vec3f(4.0, 0.02, 1.0))
    for k in range(n_objects):
        kind = k % 10
        if kind == 9:
            prim = UsdGeom.Cube.Define(stage, f"/World/Objects/obj_{k:03d}")
            prim.CreateSizeAttr(0.08)
            cls = "box"
        elif kind % 2:
            prim = UsdGeom.Capsule.Define(stage, f"/World/Objects/obj_{k:03d}")
            prim.CreateRadiusAttr(0.03), prim.CreateHeightAttr(0.06)
            cls = "capsule"
        else:
            prim = UsdGeom.Sphere.Define(stage, f"/World/Objects/obj_{k:03d}")
            prim.CreateRadiusAttr(0.045)
            cls = "ball"
        prim.AddTranslateOp().Set(Gf.Vec3d(0.0, 0.0, 0.05))
        prim.AddRotateXYZOp().Set(Gf.Vec3f(0.0, 0.0, 0.0))
        prim.CreateDisplayColorAttr([tuple(float(c) for c in rng.uniform(0.15, 0.9, 3))])
        UsdSemantics.LabelsAPI.Apply(prim.GetPrim(), "class").CreateLabelsAttr([cls])
    cam = UsdGeom.Camera.Define(stage, "/World/Camera")
    cam.CreateFocalLengthAttr(18.0)
    cam.CreateClippingRangeAttr(Gf.Vec2f(0.01, 50.0))
    cam.AddTranslateOp().Set(Gf.Vec3d(0.0, -2.3, 1.6))
    cam.AddRotateXYZOp().Set(Gf.Vec3f(55.0, 0.0, 0.0))
    sun = UsdLux.DistantLight.Define(stage, "/World/sun")
    sun.CreateIntensityAttr(1500.0)
    sun.AddRotateXYZOp().Set(Gf.Vec3f(35.0, 20.0, 0.0))
    bulb = UsdLux.SphereLight.Define(stage, "/World/bulb")
    bulb.CreateIntensityAttr(40000.0), bulb.CreateRadiusAttr(0.1)
    bulb.AddTranslateOp().Set(Gf.Vec3d(-0.6, -0.4, 1.8))
    UsdLux.DomeLight.Define(stage, "/World/sky").CreateIntensityAttr(150.0)
    move_big_scene(stage, n_objects, 0)
    return stage


def move_big_scene(stage: Usd.Stage, n_objects: int, frame: int) -> None:
    """New random positions (a 2.4 x 1.6 m area, no two closer than a grid cell) and rotations."""
    rng = np.random.default_rng(1000 + frame)
    cells = rng.permutation(20 * 12)[:n_objects]
    for k, c in enumerate(cells):
        prim = stage.GetPrimAtPath(f"/World/Objects/obj_{k:03d}")
        ops = UsdGeom.Xformable(prim).GetOrderedXformOps()
        x, y = -1.2 + 0.12 * (c % 20 + 0.5), -0.8 + 0.1333 * (c // 20 + 0.5)
        ops[0].Set(Gf.Vec3d(x + rng.uniform(-0.02, 0.02), y + rng.uniform(-0.02, 0.02), 0.05))
        ops[1].Set(Gf.Vec3f(*(float(a) for a in rng.uniform(0, 360, 3))))


class Runner:
    """One backend on one scene at one resolution; ``frame(k)`` moves the scene to state k and renders it."""

    def __init__(self, device: str, resolution: tuple[int, int], scene: str, segments: int = 96,
                 annotators: list[str] = ALL) -> None:
        self.resolution, self.scene, self.segments, self.annotators = resolution, scene, segments, set(annotators)
        if scene == "tabletop":
            config = load_config(TABLETOP)
            config.camera.resolution = resolution
            self.backend = RasterBackend(list(config.classes), RasterSettings(device=device, segments=segments))
            self.session = RenderSession(config, self.backend)
            self.stage = self.session.stage
        else:
            self.backend = RasterBackend(BIG_CLASSES, RasterSettings(device=device, segments=segments))
            self.stage = big_scene()
        self.stages: dict[str, float] = {}
        self.wall, self.cpu, self.others, self.n = 0.0, 0.0, [], 0
        for k in range(2):  # warm-up: kernels, tessellations, buffers
            self.frame(k, record=False)

    def frame(self, k: int, record: bool = True):
        if self.scene == "tabletop":
            self.session.apply(k)
        else:
            move_big_scene(self.stage, 200, k)
        with CpuMeter() as m:
            out = self.backend.render(self.stage, "/World/Camera", self.resolution, self.annotators, k)
        if record:
            self.wall, self.cpu, self.n = self.wall + m.wall, self.cpu + m.cpu, self.n + 1
            self.others.append(m.others)
            for name, ms in self.backend.last_timings.items():
                self.stages[name] = self.stages.get(name, 0.0) + ms
        return out

    def result(self) -> dict:
        device_ms = {}
        if self.backend.device.is_cuda:  # GPU activity of a few more frames (recording slows the host a little)
            for k in range(10_000, 10_004):
                wp.timing_begin(cuda_filter=wp.TIMING_ALL)
                self.frame(k, record=False)
                for r in wp.timing_end():
                    kind = "kernels" if r.filter in (wp.TIMING_KERNEL, wp.TIMING_KERNEL_BUILTIN) else "copies, fills"
                    device_ms[kind] = device_ms.get(kind, 0.0) + r.elapsed / 4
        n = max(self.n, 1)
        return {"scene": self.scene, "resolution": list(self.resolution), "device": str(self.backend.device),
                "segments": self.segments, "triangles": self.backend.geometry.n_tris, "frames": self.n,
                "ms": 1000 * self.wall / n, "cpu_ms": 1000 * self.cpu / n, "fps": n / max(self.wall, 1e-9),
                "stages_ms": {k: v / n for k, v in self.stages.items()}, "device_ms": device_ms,
                "other_load_cores": float(np.nanmean(self.others)) if self.others else float("nan")}


def measure(runners: list[Runner], frames: int) -> list[dict]:
    """``frames`` frames on each runner, interleaved (a, b, a, b, ...) so that all see the same load."""
    for k in range(2, frames + 2):
        for r in runners:
            r.frame(k)
    return [r.result() for r in runners]


def end_to_end(device: str, resolution: tuple[int, int], frames: int) -> dict:
    """Frames/s of ``generate`` on the tabletop config (writer included), after a short warm-up run."""
    config = load_config(TABLETOP)
    config.camera.resolution = resolution
    with tempfile.TemporaryDirectory() as tmp:
        generate(config, Path(tmp) / "warm", range(2), device=device)
        with CpuMeter() as m:
            summary = generate(config, Path(tmp) / "run", range(frames), device=device)
    return {"resolution": list(resolution), "device": device, "frames": frames,
            "fps": summary.frames_per_second, "ms": 1000 * m.wall / frames, "cpu_ms": 1000 * m.cpu / frames,
            "other_load_cores": m.others}


def _run_frames(device: str, resolution: tuple[int, int], frames: range, barrier, in_flight: int | None
                ) -> tuple[int, float, float, float]:
    """One process of ``throughput``: ``RenderSession.frames`` over ``frames`` after a warm-up, started with the
    others; returns (frames, start, end, CPU seconds)."""
    wp.config.quiet = True
    config = load_config(TABLETOP)
    config.camera.resolution = resolution
    settings = RasterSettings(device=device, frames_in_flight=in_flight)
    session = RenderSession(config, RasterBackend(list(config.classes), settings))
    for _ in session.frames(range(frames.start - 2, frames.start)):
        pass
    if barrier is not None:
        barrier.wait()
    start, cpu = time.time(), time.process_time()
    n = sum(1 for _ in session.frames(frames))
    return n, start, time.time(), time.process_time() - cpu


def throughput(device: str, resolution: tuple[int, int], frames: int, processes: int, in_flight: int | None = None
               ) -> dict:
    """Render + labels as a run does them (``RenderSession.frames``: each frame from its parameters, the next one
    prepared while the passes run; no writer), in ``processes`` processes at once sharing the device; frames/s over
    all of them.
    ``in_flight``: ``RasterSettings.frames_in_flight`` (None: the device's default)."""
    import multiprocessing as mp

    if processes == 1:
        n, start, end, cpu = _run_frames(device, resolution, range(1000, 1000 + frames), None, in_flight)
        return {"processes": 1, "in_flight": in_flight, "frames": n, "fps": n / (end - start),
                "cpu_ms": 1000 * cpu / n}
    ctx = mp.get_context("spawn")
    barrier = ctx.Manager().Barrier(processes)
    with ctx.Pool(processes) as pool:
        out = pool.starmap(_run_frames, [(device, resolution, range(1000 + 10_000 * p, 1000 + 10_000 * p + frames),
                                          barrier, in_flight) for p in range(processes)])
    n = sum(o[0] for o in out)
    return {"processes": processes, "in_flight": in_flight, "frames": n,
            "fps": n / (max(o[2] for o in out) - min(o[1] for o in out)),
            "cpu_ms": 1000 * sum(o[3] for o in out) / n}


def machine() -> str:
    dev = wp.get_device("cuda") if wp.is_cuda_available() else None
    gpu = f", GPU {dev.name}" if dev is not None else ""
    return (f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPU cores{gpu}, "
            f"Python {platform.python_version()}, Warp {wp.config.version}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="fewer frames, no 720p big scene")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", nargs="*", default=None,
                        help="sections: tabletop, big, pixels, triangles, run, e2e (default: all)")
    parser.add_argument("--processes", type=int, nargs="*", default=[1],
                        help="run section: numbers of render processes sharing the device (default: 1)")
    parser.add_argument("--in-flight", type=int, nargs="*", default=[None],
                        help="run section: RasterSettings.frames_in_flight values to compare (default: the device's)")
    parser.add_argument("--mps", action="store_true",
                        help="run everything under a private NVIDIA MPS daemon (processes sharing one GPU)")
    args = parser.parse_args()
    with under_mps(args.mps):
        return run(args)


def run(args: argparse.Namespace) -> int:
    wp.config.quiet = True
    wp.init()
    n = max(4, args.frames // 4) if args.quick else args.frames
    nb = max(3, n // 4)
    want = set(args.only or ["tabletop", "big", "pixels", "triangles", "run", "e2e"])
    res: dict = {"machine": machine(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
                 "command": "python bench/raster.py " + " ".join(sys.argv[1:]), "mps": args.mps, "runs": []}
    print(f"machine: {res['machine']}\ndate: {res['date']}  command: {res['command']}", flush=True)

    def show(label: str, r: dict) -> dict:
        r["label"] = label
        res["runs"].append(r)
        split = ", ".join(f"{k} {v:.2f}" for k, v in r["stages_ms"].items() if k != "total")
        if r["device_ms"]:
            split += "; on the GPU: " + ", ".join(f"{k} {v:.3f}" for k, v in r["device_ms"].items())
        print(f"| {label} | {r['resolution'][0]}x{r['resolution'][1]} | {r['triangles']:,} | {r['fps']:.1f} | "
              f"{r['ms']:.2f} | {r['cpu_ms']:.1f} | {split} | {r['other_load_cores']:.2f} |", flush=True)
        return r

    print("\n| scene | pixels | triangles | frames/s | ms/frame | CPU ms/frame | ms per stage | other load |\n"
          "|---|---|---|---|---|---|---|---|")
    scaling = {}
    dev = args.device
    if want & {"tabletop", "pixels"}:  # 640x480 and 2x pixels interleaved
        a, b = measure([Runner(dev, (640, 480), "tabletop"), Runner(dev, (906, 678), "tabletop")], n)
        show("tabletop, render+labels", a)
        show("tabletop, 2x pixels", b)
        scaling["tabletop: 2x pixels"] = (b["ms"] / a["ms"], b["cpu_ms"] / a["cpu_ms"])
    if "tabletop" in want:
        show("tabletop, render+labels", measure([Runner(dev, (1280, 720), "tabletop")], n)[0])
    if want & {"big", "pixels"}:
        runs = [Runner(dev, (640, 480), "big", 80), Runner(dev, (906, 678), "big", 80)]
        if "big" in want and not args.quick:
            runs.append(Runner(dev, (1280, 720), "big", 80))
        out = measure(runs, nb)
        for label, r in zip(("200 objects", "200 objects, 2x pixels", "200 objects"), out, strict=False):
            show(label, r)
        scaling["200 objects: 2x pixels"] = (out[1]["ms"] / out[0]["ms"], out[1]["cpu_ms"] / out[0]["cpu_ms"])
    if "triangles" in want:
        a, b = measure([Runner(dev, (640, 480), "big", 25), Runner(dev, (640, 480), "big", 80)], nb)
        show("200 objects, ~1/10 triangles", a)
        show("200 objects (triangles pair)", b)
        scaling[f"200 objects: {b['triangles'] / a['triangles']:.1f}x triangles"] = (b["ms"] / a["ms"],
                                                                                   b["cpu_ms"] / a["cpu_ms"])
    if scaling:
        print("\n| scaling (pairs measured interleaved) | wall time ratio | CPU time ratio |\n|---|---|---|")
        for k, (w, c) in scaling.items():
            print(f"| {k} | {w:.2f} | {c:.2f} |")
    res["scaling"] = scaling
    if "run" in want:
        print("\n| render + labels as a run (RenderSession.frames, no writer) | processes | frames in flight | "
              "frames/s | CPU ms/frame |\n|---|---|---|---|---|")
        for p in args.processes:
            for k in args.in_flight:
                r = throughput(args.device, (640, 480), n * 2, p, k)
                res.setdefault("run", []).append(r)
                print(f"| tabletop 640x480, {args.device} | {p} | {'default' if k is None else k} | {r['fps']:.1f} | "
                      f"{r['cpu_ms']:.1f} |", flush=True)
    if "e2e" in want:
        print("\n| end to end (generate, writer included) | frames/s | ms/frame | CPU ms/frame | other load |\n"
              "|---|---|---|---|---|")
        for resolution in ((640, 480),) if args.quick else ((640, 480), (1280, 720)):
            r = end_to_end(args.device, resolution, n * 2)
            res.setdefault("end_to_end", []).append(r)
            print(f"| tabletop {resolution[0]}x{resolution[1]}, {args.device} | {r['fps']:.1f} | {r['ms']:.1f} | "
                  f"{r['cpu_ms']:.1f} | {r['other_load_cores']:.2f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
