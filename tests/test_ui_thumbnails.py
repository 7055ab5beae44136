"""Preview thumbnails (RGBA8 for ByteImageProvider, box and mask overlays) and the run panel's texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sdgstudio.core.frame import CameraData, FrameData, ObjectLabel
from sdgstudio.core.progress import Outcome, Progress, RunState
from sdgstudio.core.sampler import sample_frame_params
from sdgstudio.ui.status import format_seconds, generate_status, preview_config, run_summary
from sdgstudio.ui.thumbnails import class_colour, rgba_bytes, thumbnail, thumbnail_size


def frame_with_one_object(width: int = 320, height: int = 240) -> FrameData:
    camera = CameraData(width=width, height=height, K=np.eye(3), camera_to_world=np.eye(4))
    rgb = np.full((height, width, 3), 100, np.uint8)
    instances = np.zeros((height, width), np.uint32)
    instances[60:120, 80:160] = 1
    label = ObjectLabel(instance_id=1, prim_path="/World/Objects/box_0", class_name="box", class_id=2,
                        pixel_count=60 * 80, unoccluded_pixel_count=60 * 80, visible_fraction=1.0, truncation=0.0,
                        bbox_2d_tight=(80.0, 60.0, 160.0, 120.0), bbox_2d_loose=(80.0, 60.0, 160.0, 120.0),
                        bbox_3d_extents=((0, 0, 0), (1, 1, 1)), local_to_world=np.eye(4), pose_in_camera=np.eye(4),
                        scale=(1.0, 1.0, 1.0))
    return FrameData(index=0, camera=camera, objects=[label], rgb=rgb, instance_segmentation=instances)


def test_thumbnails_keep_the_aspect_and_are_rgba8():
    image = thumbnail(frame_with_one_object(), 160)
    assert image.shape == (120, 160, 4) and image.dtype == np.uint8
    assert (image[..., 3] == 255).all() and (image[..., :3] == 100).all()
    assert thumbnail_size(64, 48, 160) == (64, 48)  # never enlarged
    data, size = rgba_bytes(image)
    assert size == [160, 120] and len(data) == 160 * 120 * 4 and max(data) <= 255


def test_box_overlay_outlines_the_tight_box_in_the_class_colour():
    image = thumbnail(frame_with_one_object(), 160, boxes=True)
    colour = class_colour(2)
    assert tuple(image[30, 40, :3]) == colour and tuple(image[59, 79, :3]) == colour  # corners at half scale
    assert tuple(image[45, 60, :3]) == (100, 100, 100)  # inside untouched
    assert tuple(image[10, 10, :3]) == (100, 100, 100)


def test_mask_overlay_tints_only_the_objects_pixels():
    image = thumbnail(frame_with_one_object(), 160, masks=True)
    assert tuple(image[45, 60, :3]) != (100, 100, 100)
    assert tuple(image[10, 10, :3]) == (100, 100, 100)


def test_a_frame_without_colour_shows_grey():
    frame = frame_with_one_object()
    frame.rgb = None
    assert (thumbnail(frame, 80)[..., :3] == 96).all()


def test_class_colours_differ():
    assert len({class_colour(i) for i in range(1, 12)}) == 11


@pytest.mark.parametrize("seconds, text", [(None, "--"), (5.4, "0:05"), (125, "2:05"), (3725, "1:02:05")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_run_summaries():
    running = Progress(state=RunState.RUNNING, activity="generate", frames_done=3, frames_total=10,
                       frames_per_second=2.5, eta_seconds=2.8, queue_depth=1)
    assert run_summary(running) == "Running: 3 / 10 frames · 2.5 fps · ETA 0:03 · queue 1"
    pausing = Progress(state=RunState.PAUSED, activity="generate", frames_done=3, frames_total=10)
    assert run_summary(pausing).startswith("Pausing after this frame: 3 / 10")
    paused = Progress(state=RunState.PAUSED, activity="generate", frames_done=3, frames_total=10, resumed=True,
                      parked=True)
    assert run_summary(paused).startswith("Paused (continuing): 3 / 10 frames") and "ETA --" in run_summary(paused)
    stopped = Progress(activity="generate", frames_done=4, frames_total=10, outcome=Outcome.STOPPED)
    assert run_summary(stopped) == "Stopped at 4 of 10 frames: Generate continues this dataset"
    done = Progress(activity="generate", frames_done=10, frames_total=10, outcome=Outcome.COMPLETED, out_dir=Path("/d"))
    assert run_summary(done) == "Done: 10 of 10 frames in /d"
    assert run_summary(Progress()) == ""


def test_generate_status_says_when_it_continues_a_dataset(tmp_path):
    assert generate_status(tmp_path, 24) == f"Output: 24 frames to {tmp_path}"
    (tmp_path / "dataset.json").write_text("{}")
    assert "Generate continues it" in generate_status(tmp_path, 24)


def test_preview_config_renders_smaller_but_samples_the_same_frames(tabletop):
    small = preview_config(tabletop, 320)
    assert small.camera.resolution == (320, 240) and tabletop.camera.resolution == (640, 480)
    assert sample_frame_params(small, 0, 4) == sample_frame_params(tabletop, 0, 4)
    assert preview_config(small, 640) is small
