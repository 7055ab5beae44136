"""What the Replicator tests compare against: the raster backend's frames of the same config, and the checks.

The same tests run in two worlds (docs/isaac-sim.md):

* **Kit tier** (tests/kit/run.py): ``omni.replicator.core`` is the contract stand-in. The tests queue the payloads
  the raster frames imply (``synthesize.payloads_from_frame``), so the dataset must come back *exactly* (up to what
  Replicator's payloads cannot carry), and the recorded Replicator calls are checked one by one.
* **Isaac Sim** (omni.kit.test with real Replicator and RTX): nothing is queued; RTX renders. The dataset must hold
  real frames whose labels agree with each other and with the raster backend within ``TOLERANCES``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import omni.kit.app
import omni.kit.test
import omni.replicator.core as rep
import omni.usd
from sdgstudio.core.config import SDGConfig, load_config
from sdgstudio.core.extension import builtin_scene, raster_device
from sdgstudio.core.frame import FrameData
from sdgstudio.core.writer import read_layer

STANDIN = bool(getattr(rep, "__standin__", False))
RESOLUTION = (96, 72)

#: Real RTX vs the raster backend on the built-in scene (Isaac Sim only; under the stand-in everything is exact).
TOLERANCES = {
    "camera_K_rel": 1e-4,  # same USD camera prim and formula
    "pose_abs_m": 1e-4,  # object and camera transforms come from the same stage
    "mask_iou_min": 0.75,  # per object with >= 100 pixels in both: RTX anti-aliased edges vs exact ray casts
    "min_pixels_for_iou": 100,
    "tight_box_px": 1,  # Replicator's tight box vs the box of its own instance mask
    "semantic_agreement_min": 0.99,  # pixels whose semantic id is the class of their instance
}


def small_config() -> SDGConfig:
    """The built-in tabletop scene at a small resolution (each test renders a few frames)."""
    config = load_config(builtin_scene("tabletop"))
    config.camera.resolution = RESOLUTION
    return config


def standin_helpers():
    """The Replicator stand-in's test-only helpers (``queue_payloads``...); None under a real Replicator."""
    return sys.modules.get("omni.replicator.core._behaviour") if STANDIN else None


class LiveStageTestCase(omni.kit.test.AsyncTestCase):
    """Each test starts on a new stage with a temp folder (``self._tmp``); payloads it queued are dropped after."""

    async def setUp(self):
        self._tmp = Path(tempfile.mkdtemp(prefix=f"sdgstudio-{type(self).__name__}-"))
        await omni.usd.get_context().new_stage_async()
        await omni.kit.app.get_app().next_update_async()

    async def tearDown(self):
        helpers = standin_helpers()
        if helpers is not None:
            helpers.clear_payloads()
        shutil.rmtree(self._tmp, ignore_errors=True)


async def raster_frames(config: SDGConfig, indices) -> list[FrameData]:
    """The raster backend's frames of ``config`` with every layer (the payloads need depth and instances), on its
    own in-memory stage, rendered off Kit's main thread."""
    from sdgstudio.core.frame import ANNOTATORS
    from sdgstudio.core.raster import RasterBackend, RasterSettings
    from sdgstudio.core.session import RenderSession

    config = config.model_copy(deep=True)
    config.annotators = [a for a in ANNOTATORS if a != "optical_flow"]

    def render() -> list[FrameData]:
        session = RenderSession(config, RasterBackend(list(config.classes), RasterSettings(device=raster_device())))
        return [session.render(i)[1] for i in indices]

    return await asyncio.get_running_loop().run_in_executor(None, render)


def queue_reference_payloads(config: SDGConfig, frames: list[FrameData]) -> None:
    """Stand-in only: the following steps render the payloads these raster frames imply."""
    from sdgstudio.replicator.synthesize import payloads_from_frame

    standin_helpers().queue_payloads([payloads_from_frame(f, list(config.classes)) for f in frames])


def read_dataset(out: Path) -> list[dict]:
    """Per listed frame: its manifest entry, labels and decoded layers."""
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    frames = []
    for entry in entries:
        files = entry["files"]
        frame = {"entry": entry, "labels": json.loads((out / files["labels"]).read_text())}
        for layer, name in files.items():
            if layer != "labels":
                frame[layer] = read_layer(out / name)
        frames.append(frame)
    return frames


def check_consistent(test, written: dict, config: SDGConfig) -> None:
    """Labels that must agree with the frame's own layers, whatever rendered it."""
    labels = written["labels"]
    inst, objects = written.get("instance_segmentation"), labels["objects"]
    W, H = RESOLUTION
    test.assertEqual((labels["camera"]["width"], labels["camera"]["height"]), (W, H))
    if "rgb" in written:
        test.assertEqual(written["rgb"].shape, (H, W, 3))
        test.assertGreater(float(written["rgb"].std()), 1.0, "the RGB image is flat: nothing rendered")
    if inst is None:
        return
    counts = np.bincount(inst.ravel().astype(np.int64), minlength=len(objects) + 1)
    test.assertEqual(len(counts), len(objects) + 1, "instance ids beyond the object list")
    for o in objects:
        k = o["instance_id"]
        test.assertEqual(o["pixel_count"], int(counts[k]), o["prim_path"])
        if o["pixel_count"] and o["bbox_2d_tight"] is not None:
            ys, xs = np.nonzero(inst == k)
            mask_box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            np.testing.assert_allclose(o["bbox_2d_tight"], mask_box, atol=TOLERANCES["tight_box_px"],
                                       err_msg=f"{o['prim_path']}: tight box vs instance mask")
    if "semantic_segmentation" in written:
        class_of = np.zeros(len(objects) + 1, np.int64)
        for o in objects:
            class_of[o["instance_id"]] = o["class_id"]
        labelled = inst > 0
        if labelled.any():
            agree = np.mean(written["semantic_segmentation"][labelled] == class_of[inst[labelled]])
            test.assertGreaterEqual(agree, TOLERANCES["semantic_agreement_min"], "semantic vs instance classes")


def check_against_raster(test, written: dict, raster: FrameData, exact: bool) -> None:
    """The written frame vs the raster backend's: exactly (stand-in) or within ``TOLERANCES`` (RTX)."""
    labels = written["labels"]
    cam = labels["camera"]
    np.testing.assert_allclose(cam["K"], raster.camera.K, rtol=1e-6 if exact else TOLERANCES["camera_K_rel"])
    np.testing.assert_allclose(cam["camera_to_world"], raster.camera.camera_to_world,
                               atol=1e-9 if exact else TOLERANCES["pose_abs_m"])
    test.assertEqual([(o["prim_path"], o["class"], o["class_id"], o["instance_id"]) for o in labels["objects"]],
                     [(o.prim_path, o.class_name, o.class_id, o.instance_id) for o in raster.objects])
    for o, r in zip(labels["objects"], raster.objects, strict=True):
        np.testing.assert_allclose(o["bbox_3d"]["local_to_world"], r.local_to_world,
                                   atol=1e-6 if exact else TOLERANCES["pose_abs_m"], err_msg=r.prim_path)
    if exact:
        for layer in ("rgb", "depth", "instance_segmentation", "semantic_segmentation"):
            if layer in written:
                np.testing.assert_array_equal(written[layer], getattr(raster, layer), err_msg=layer)
        if "normals" in written:
            np.testing.assert_allclose(written["normals"], raster.normals, atol=2e-6)
        test.assertEqual(labels["unlabeled_pixel_count"], raster.unlabeled_pixel_count)
        for o, r in zip(labels["objects"], raster.objects, strict=True):
            test.assertEqual((o["pixel_count"], o["bbox_2d_tight"]),
                             (r.pixel_count, list(r.bbox_2d_tight) if r.bbox_2d_tight else None), r.prim_path)
            if r.pixel_count:
                test.assertEqual(o["unoccluded_pixel_count"], r.unoccluded_pixel_count, r.prim_path)
            np.testing.assert_allclose(o["pose_in_camera"]["t"], r.pose_in_camera[:3, 3], atol=1e-5)
        return
    inst = written.get("instance_segmentation")
    if inst is None or raster.instance_segmentation is None:
        return
    for o in labels["objects"]:
        k = o["instance_id"]
        a, b = inst == k, raster.instance_segmentation == k
        if min(a.sum(), b.sum()) >= TOLERANCES["min_pixels_for_iou"]:
            iou = (a & b).sum() / (a | b).sum()
            test.assertGreaterEqual(iou, TOLERANCES["mask_iou_min"], f"{o['prim_path']}: mask IoU vs raster")
