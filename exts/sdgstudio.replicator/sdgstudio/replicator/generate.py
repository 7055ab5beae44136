"""``generate_async``: the generate pipeline of ``sdgstudio.core.generate`` on Kit's event loop, with Replicator.

Same steps, files and bookkeeping as the synchronous ``generate`` (sample -> apply to the stage -> render ->
stream to the ``DatasetWriter``; ``dataset.json`` says ``"backend": "replicator"``; ``--resume`` rules), but each
frame is ``await backend.render_async(...)``, so Kit keeps updating (UI, viewport) while RTX renders, as Isaac's
Synthetic Data Recorder does. Run it as a kept task (``asyncio.ensure_future``) and cancel that task to stop:
frames the manifest lists stay complete. The render product and annotators are released however it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pxr import Usd
from sdgstudio.core.config import SDGConfig
from sdgstudio.core.frame import FrameData
from sdgstudio.core.generate import (
    RenderSession,
    RunError,
    RunSummary,
    check_resumable,
    dataset_info,
    missing_frames,
)
from sdgstudio.core.writer import DatasetWriter, WriterError

BACKEND_NAME = "replicator"


async def generate_async(
    config: SDGConfig,
    out_dir: Path | str,
    frame_indices: Iterable[int],
    *,
    resume: bool = False,
    backend=None,
    stage: Usd.Stage | None = None,
    on_frame: Callable[[int, FrameData], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunSummary:
    """Render ``frame_indices`` of ``config`` into ``out_dir`` with Replicator, awaiting each frame.

    ``backend`` defaults to a ``ReplicatorBackend`` with the config's ``output.rt_subframes``. ``stage`` None builds
    the scene on the live stage (replacing its root layer); pass the live stage to render a scene already built
    there (e.g. by the SDG Studio window, then edited by hand).
    """
    out = Path(out_dir)
    if resume:
        check_resumable(out, config, BACKEND_NAME)
    elif (out / "manifest.jsonl").exists() or (out / "dataset.json").exists():
        raise RunError(f"{out} already holds a dataset; pass resume=True to continue it, or choose an empty folder")
    if backend is None:
        from .backend import ReplicatorBackend

        backend = ReplicatorBackend(list(config.classes), rt_subframes=config.output.rt_subframes)
    summary = RunSummary(out_dir=out)
    start = time.perf_counter()
    try:
        session = RenderSession(config, backend, stage=stage)
        resolution = tuple(config.camera.resolution)
        writer = DatasetWriter(out, rgb_format=config.output.rgb_format)
        try:
            writer.start(dataset_info(config, BACKEND_NAME))
        except WriterError as exc:  # another run holds the folder
            raise RunError(str(exc)) from None
        with writer:
            for index in missing_frames(out, frame_indices) if resume else frame_indices:
                if should_stop is not None and should_stop():
                    break
                params = session.apply(index)
                frame = await backend.render_async(session.stage, session.camera_path, resolution,
                                                   session.render_annotators, index)
                frame = session.finish_frame(params, frame)
                writer.submit(frame, session.manifest_record(params, index))
                summary.frames_written += 1
                summary.objects_labeled += sum(1 for o in frame.objects if o.pixel_count > 0)
                summary.warnings.extend(params.warnings)
                if on_frame is not None:
                    on_frame(index, frame)
            # the last frames are encoded and made durable off Kit's main thread
            await asyncio.get_running_loop().run_in_executor(None, writer.close)
        await backend.finish_async()
    finally:
        backend.close()
    summary.seconds = time.perf_counter() - start
    return summary
