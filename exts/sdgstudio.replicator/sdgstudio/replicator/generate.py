"""``generate_async``: the generate pipeline of ``sdgstudio.core.generate`` on Kit's event loop, with Replicator.

Same steps, files and bookkeeping as the synchronous ``generate`` (sample -> apply to the stage -> render ->
stream to the ``DatasetWriter``; ``dataset.json`` says ``"backend": "replicator"``; ``--resume`` rules), but each
frame is ``await backend.render_async(...)``, so Kit keeps updating (UI, viewport) while RTX renders, as Isaac's
Synthetic Data Recorder does. Run it as a kept task (``asyncio.ensure_future``) and cancel that task to stop:
frames the manifest lists stay complete. The render product and annotators are released however it ends.

To pause without blocking the loop, pass ``before_frame``: it is awaited before each frame and returns True to
stop there (the SDG Studio window's ``RunController`` parks in it while paused). ``async_backend()`` is what the
window hands the controller: this generator plus the backend its previews render with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pxr import Usd
from sdgstudio.core.config import SDGConfig
from sdgstudio.core.frame import FrameData
from sdgstudio.core.generate import RunSummary, check_output_folder, dataset_info, missing_frames, start_writer
from sdgstudio.core.session import RenderSession
from sdgstudio.core.writer import DatasetWriter

if TYPE_CHECKING:
    from sdgstudio.core.activities import AsyncBackend
    from sdgstudio.core.writer import WriterProgress

    from .backend import ReplicatorBackend

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
    before_frame: Callable[[], Awaitable[bool]] | None = None,
    on_progress: Callable[[WriterProgress], None] | None = None,
) -> RunSummary:
    """Render ``frame_indices`` of ``config`` into ``out_dir`` with Replicator, awaiting each frame.

    ``backend`` defaults to a ``ReplicatorBackend`` with the config's ``output.rt_subframes``. ``stage`` None builds
    the scene on the live stage (replacing its root layer); pass the live stage to render a scene already built
    there (e.g. by the SDG Studio window, then edited by hand). Before each frame ``should_stop()`` and then
    ``await before_frame()`` are asked; True from either ends the run there (a dataset ``resume`` continues).
    ``on_progress`` gets the writer's ``WriterProgress`` (from a writer thread: keep it short).
    """
    out = Path(out_dir)
    check_output_folder(out, config, BACKEND_NAME, resume, resume_hint="pass resume=True to continue it")
    if backend is None:
        from .backend import ReplicatorBackend

        backend = ReplicatorBackend.for_config(config)
    summary = RunSummary(out_dir=out)
    start = time.perf_counter()
    try:
        session = RenderSession(config, backend, stage=stage)
        writer = DatasetWriter(out, rgb_format=config.output.rgb_format, on_progress=on_progress)
        start_writer(writer, dataset_info(config, BACKEND_NAME), summary)
        with writer:
            for index in missing_frames(out, frame_indices) if resume else frame_indices:
                if should_stop is not None and should_stop():
                    break
                if before_frame is not None and await before_frame():
                    break
                params, frame = await session.render_async(index)
                writer.submit(frame, session.manifest_record(params, index))
                summary.add_frame(params, frame)
                if on_frame is not None:
                    on_frame(index, frame)
            # the last frames are encoded and made durable off Kit's main thread
            await asyncio.get_running_loop().run_in_executor(None, writer.close)
        await backend.finish_async()
    finally:
        backend.close()
    summary.finish(start, writer)
    return summary


def preview_backend(config: SDGConfig) -> ReplicatorBackend:
    """The backend the window's previews render with (on the live stage, nothing written)."""
    from .backend import ReplicatorBackend

    return ReplicatorBackend.for_config(config)


def async_backend() -> AsyncBackend:
    """What ``sdgstudio.core.controller.RunController(async_backends={"replicator": ...})`` takes: runs and previews
    through Replicator on Kit's loop."""
    from sdgstudio.core.activities import AsyncBackend

    return AsyncBackend(generate=generate_async, make_backend=preview_backend)
