"""Raster backend benchmark (not a test): frames/s, time per stage, scaling with pixels and triangles.

Scenes: the built-in tabletop (every annotator) and a generated 200-object scene (spheres and capsules on a floor,
two lights and a dome) whose triangle count is set by the tessellation ``segments``: 80 gives ~1.2M triangles,
25 about a tenth of that. Each measured frame first moves the scene (tabletop: the next sampled frame; 200 objects:
new random poses), so caches hold only what a real run could reuse.

Measured (means over ``--frames`` frames after warm-up; wall clock and this process's CPU time):

* render + labels: ``RasterBackend.render`` alone, with the split by stage (``last_timings``);
* end to end: ``generate`` with the writer (tabletop only), frames/s over the whole run;
* scaling: time ratios for 2x pixels (640x480 -> 906x678) and ~10x triangles (segments 25 -> 80).

"Other load" is the CPU time other processes used during a measurement, in cores (a shared machine slows us).

    python bench/raster.py [--device cpu|cuda] [--frames 40] [--quick] [--json results.json] [--only NAME ...]
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
from pxr import Gf, Usd, UsdGeom, UsdLux, UsdSemantics  # noqa: E402
from sdgstudio.core.config import load_config  # noqa: E402
from sdgstudio.core.generate import RenderSession, generate  # noqa: E402
from sdgstudio.core.raster import RasterBackend, RasterSettings  # noqa: E402

TABLETOP = REPO / "exts/sdgstudio.core/data/scenes/tabletop.toml"
ALL = ["rgb", "depth", "instance_segmentation", "semantic_segmentation", "normals", "bounding_box_2d_tight",
       "bounding_box_2d_loose", "bounding_box_3d", "pose_6d"]
BIG_CLASSES = ["ball", "capsule", "box"]


class CpuMeter:
    """Wall time, this process's CPU time and other processes' CPU time (cores) over a with-block."""

    def __enter__(self):
        self.t, self.c, self.total = time.perf_counter(), time.process_time(), _busy_seconds()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.cpu = time.process_time() - self.c
        busy = _busy_seconds() - self.total
        self.others = max(0.0, (busy - self.cpu) / self.wall) if busy is not None and self.wall > 0 else float("nan")


def _busy_seconds() -> float | None:
    try:
        fields = [float(x) for x in open("/proc/stat").readline().split()[1:]]
    except OSError:
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


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


def render_loop(device: str, resolution: tuple[int, int], frames: int, scene: str, segments: int = 96,
                annotators: list[str] = ALL) -> dict:
    """Mean ms of ``RasterBackend.render`` per frame and per stage, over ``frames`` moved frames."""
    if scene == "tabletop":
        config = load_config(TABLETOP)
        config.camera.resolution = resolution
        backend = RasterBackend(list(config.classes), RasterSettings(device=device, segments=segments))
        session = RenderSession(config, backend)
        stage, camera = session.stage, "/World/Camera"

        def move(k: int) -> None:
            session.apply(k)
    else:
        backend = RasterBackend(BIG_CLASSES, RasterSettings(device=device, segments=segments))
        stage, camera = big_scene(), "/World/Camera"

        def move(k: int) -> None:
            move_big_scene(stage, 200, k)
    move(0)
    frame = backend.render(stage, camera, resolution, set(annotators), 0)  # warm-up: kernels, tessellations
    move(1)
    backend.render(stage, camera, resolution, set(annotators), 1)
    stages: dict[str, float] = {}
    total = cpu = 0.0
    others = []
    for k in range(2, frames + 2):
        move(k)
        with CpuMeter() as m:
            frame = backend.render(stage, camera, resolution, set(annotators), k)
        total, cpu = total + m.wall, cpu + m.cpu
        others.append(m.others)
        for name, ms in backend.last_timings.items():
            stages[name] = stages.get(name, 0.0) + ms / frames
    device_ms = {}
    if backend.device.is_cuda:  # GPU activity of a few more frames (recording it slows the host a little)
        for k in range(frames + 2, frames + 6):
            move(k)
            wp.timing_begin(cuda_filter=wp.TIMING_ALL)
            backend.render(stage, camera, resolution, set(annotators), k)
            for r in wp.timing_end():
                kind = "kernels" if r.filter in (wp.TIMING_KERNEL, wp.TIMING_KERNEL_BUILTIN) else "copies, fills"
                device_ms[kind] = device_ms.get(kind, 0.0) + r.elapsed / 4
    tris = backend.geometry.n_tris
    return {"device_ms": device_ms, "scene": scene, "resolution": list(resolution), "device": device, "segments": segments,
            "triangles": tris, "objects": len(frame.objects), "frames": frames,
            "ms": 1000 * total / frames, "cpu_ms": 1000 * cpu / frames, "fps": frames / total,
            "stages_ms": stages, "other_load_cores": float(np.nanmean(others))}


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


def machine() -> str:
    dev = wp.get_device("cuda") if wp.is_cuda_available() else None
    gpu = f", GPU {dev.name}" if dev is not None else ""
    return f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPU cores{gpu}, Python {platform.python_version()}, " \
           f"Warp {wp.config.version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="fewer frames, no 720p big scene")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", nargs="*", default=None,
                        help="sections: tabletop, big, pixels, triangles, e2e (default: all)")
    args = parser.parse_args()
    wp.config.quiet = True
    wp.init()
    n = max(4, args.frames // 4) if args.quick else args.frames
    nb = max(3, n // 4)
    want = set(args.only or ["tabletop", "big", "pixels", "triangles", "e2e"])
    res: dict = {"machine": machine(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
                 "command": "python bench/raster.py " + " ".join(sys.argv[1:]), "runs": []}
    print(f"machine: {res['machine']}\ndate: {res['date']}  command: {res['command']}", flush=True)

    def run(label: str, **kw) -> dict:
        r = render_loop(args.device, **kw)
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
    base = {}
    if want & {"tabletop", "pixels"}:
        base["t480"] = run("tabletop, render+labels", scene="tabletop", resolution=(640, 480), frames=n)
    if "pixels" in want:
        base["t2x"] = run("tabletop, 2x pixels", scene="tabletop", resolution=(906, 678), frames=n)
    if "tabletop" in want:
        run("tabletop, render+labels", scene="tabletop", resolution=(1280, 720), frames=n)
    if want & {"big", "pixels", "triangles"}:
        base["b480"] = run("200 objects", scene="big", resolution=(640, 480), frames=nb, segments=80)
    if "pixels" in want:
        base["b2x"] = run("200 objects, 2x pixels", scene="big", resolution=(906, 678), frames=nb, segments=80)
    if "big" in want and not args.quick:
        run("200 objects", scene="big", resolution=(1280, 720), frames=nb, segments=80)
    if "triangles" in want:
        base["b_small"] = run("200 objects, ~1/10 triangles", scene="big", resolution=(640, 480), frames=nb,
                              segments=25)
    scaling = {}
    if "t2x" in base:
        scaling["tabletop: 2x pixels"] = base["t2x"]["ms"] / base["t480"]["ms"]
    if "b2x" in base:
        scaling["200 objects: 2x pixels"] = base["b2x"]["ms"] / base["b480"]["ms"]
    if "b_small" in base:
        r = base["b480"]["triangles"] / base["b_small"]["triangles"]
        scaling[f"200 objects: {r:.1f}x triangles"] = base["b480"]["ms"] / base["b_small"]["ms"]
    if scaling:
        print("\n| scaling | time ratio |\n|---|---|")
        for k, v in scaling.items():
            print(f"| {k} | {v:.2f} |")
    res["scaling"] = scaling
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
