"""CPU vs CUDA check of the raster backend (run it wherever Warp finds a CUDA device; it is no pytest because CI has
no GPU): renders the same frames on both devices and requires identical labels and rgb within 1/255.

Frames: the built-in tabletop scene (textures, distant + sphere light, dome; every annotator) and the 200-object
bench scene (bench/raster.py). Checked per frame: instance and semantic images byte-identical, every object's
label (pixel counts, boxes, visibility, pose...) identical, rgb within 1 of 255, depth and normals (reported).

    python bench/raster_devices.py [--frames 12] [--resolution 640x480] [--device cuda]

Exit status 0 when every frame passes, 1 otherwise, 2 without a CUDA device.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import raster as bench  # noqa: E402  (bench/raster.py: sys.path, scenes)
import warp as wp  # noqa: E402
from sdgstudio.core.config import load_config  # noqa: E402
from sdgstudio.core.raster import RasterBackend, RasterSettings  # noqa: E402
from sdgstudio.core.session import RenderSession  # noqa: E402


def compare(a, b) -> dict:
    """Differences between two FrameData of the same frame."""
    out = {"ids_equal": a.instance_segmentation.tobytes() == b.instance_segmentation.tobytes(),
           "semantic_equal": a.semantic_segmentation.tobytes() == b.semantic_segmentation.tobytes(),
           "labels_equal": [o.to_json() for o in a.objects] == [o.to_json() for o in b.objects]
           and a.unlabeled_pixel_count == b.unlabeled_pixel_count,
           "rgb_max_diff": int(np.abs(a.rgb.astype(np.int16) - b.rgb.astype(np.int16)).max()),
           "rgb_pixels_differing": int(np.any(a.rgb != b.rgb, axis=2).sum())}
    fin = np.isfinite(a.depth)
    out["depth_inf_equal"] = bool(np.array_equal(fin, np.isfinite(b.depth)))
    out["depth_max_rel_diff"] = float((np.abs(a.depth[fin] - b.depth[fin]) / a.depth[fin]).max(initial=0.0))
    out["normals_max_diff"] = float(np.abs(a.normals - b.normals).max())
    out["ok"] = out["ids_equal"] and out["semantic_equal"] and out["labels_equal"] and out["rgb_max_diff"] <= 1
    if not out["labels_equal"]:
        out["first_label_diff"] = next(([x.to_json(), y.to_json()] for x, y in zip(a.objects, b.objects, strict=False)
                                        if x.to_json() != y.to_json()), "object lists differ in length")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--resolution", default="640x480")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    wp.config.quiet = True
    wp.init()
    if not wp.is_cuda_available():
        print("no CUDA device: nothing to compare", file=sys.stderr)
        return 2
    res = tuple(int(v) for v in args.resolution.lower().split("x"))
    results = []
    config = load_config(bench.TABLETOP)
    config.camera.resolution = res
    sessions = {dev: RenderSession(config, RasterBackend(list(config.classes), RasterSettings(device=dev)))
                for dev in ("cpu", args.device)}
    for k in range(args.frames):
        frames = [sessions[dev].render(k)[1] for dev in ("cpu", args.device)]
        results.append({"scene": "tabletop", "frame": k, **compare(*frames)})
    stage = bench.big_scene()
    backends = {dev: RasterBackend(bench.BIG_CLASSES, RasterSettings(device=dev, segments=40))
                for dev in ("cpu", args.device)}
    for k in range(max(2, args.frames // 4)):
        bench.move_big_scene(stage, 200, k)
        frames = [backends[dev].render(stage, "/World/Camera", res, set(bench.ALL), k) for dev in ("cpu", args.device)]
        results.append({"scene": "200 objects", "frame": k, **compare(*frames)})
    print("| scene | frame | ids | semantic | labels | rgb max diff (pixels) | depth max rel diff "
          "| normals max diff |\n|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['scene']} | {r['frame']} | {'=' if r['ids_equal'] else 'DIFFER'} | "
              f"{'=' if r['semantic_equal'] else 'DIFFER'} | {'=' if r['labels_equal'] else 'DIFFER'} | "
              f"{r['rgb_max_diff']} ({r['rgb_pixels_differing']}) | {r['depth_max_rel_diff']:.2e} | "
              f"{r['normals_max_diff']:.2e} |")
        if "first_label_diff" in r:
            print("   first differing label:", json.dumps(r["first_label_diff"]))
    ok = all(r["ok"] for r in results)
    print(f"\n{'PASS' if ok else 'FAIL'}: {sum(r['ok'] for r in results)}/{len(results)} frames with identical labels "
          f"and rgb within 1/255 on cpu and {args.device} ({wp.get_device(args.device).name})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
