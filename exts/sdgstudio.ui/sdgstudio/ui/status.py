"""Texts the run panel shows and the preview's reduced config: pure functions of a ``Progress`` or a config."""

from __future__ import annotations

from pathlib import Path

from sdgstudio.core.config import SDGConfig
from sdgstudio.core.progress import Outcome, Progress, RunState


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def run_summary(progress: Progress) -> str:
    """One line: what the run is doing or how it ended."""
    done, total = progress.frames_done, progress.frames_total
    if progress.state is RunState.IDLE:
        if progress.outcome is Outcome.COMPLETED:
            return f"Done: {done} of {total} frames in {progress.out_dir}"
        if progress.outcome is Outcome.STOPPED:
            return f"Stopped at {done} of {total} frames: Generate continues this dataset"
        if progress.outcome is Outcome.FAILED:
            return f"Failed after {done} of {total} frames"
        return ""
    state = {RunState.RUNNING: "Running", RunState.PAUSED: "Paused" if progress.parked else "Pausing after this frame",
             RunState.STOPPING: "Stopping", RunState.PREVIEWING: "Previewing"}[progress.state]
    resumed = " (continuing)" if progress.resumed else ""
    return (f"{state}{resumed}: {done} / {total} frames · {progress.frames_per_second:.1f} fps · "
            f"ETA {format_seconds(progress.eta_seconds)} · queue {progress.queue_depth}")


def generate_status(out_dir: Path, frames: int) -> str:
    """What Generate will do with the output folder."""
    if (out_dir / "dataset.json").is_file():
        return f"Output: {out_dir} (holds a dataset: Generate continues it with the same settings)"
    return f"Output: {frames} frames to {out_dir}"


def preview_config(config: SDGConfig, max_width: int) -> SDGConfig:
    """The config at a resolution no wider than ``max_width`` (same aspect, so the same framing): thumbnails
    render in a fraction of the time. Everything sampled stays the same."""
    width, height = config.camera.resolution
    if width <= max_width:
        return config
    size = (max_width, max(1, round(height * max_width / width)))
    return config.model_copy(update={"camera": config.camera.model_copy(update={"resolution": size})})
