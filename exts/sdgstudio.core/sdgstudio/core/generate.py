"""The generate pipeline: sample -> apply to the stage -> render -> stream to the writer.

``RenderSession`` owns one stage and one backend and renders any frame alone; the CLI, the Kit window's
preview and ``render-frame`` all use it. ``generate`` adds the writer and the run's bookkeeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pxr import Usd

from . import __version__
from .config import SDGConfig, config_to_dict
from .frame import FrameData
from .sampler import CAMERA_PATH, FrameParams, sample_frame_params
from .stage import apply_frame_params, build_stage, save_stage


class RenderBackend(Protocol):
    """What every backend provides (raster here, Replicator inside Isaac Sim)."""

    def render(
        self, stage: Usd.Stage, camera_path: str, resolution: tuple[int, int], annotators: set[str], frame_index: int
    ) -> FrameData: ...


class RunError(RuntimeError):
    """A run that cannot start or continue, with a message fit for one line."""


def make_backend(name: str, config: SDGConfig, device: str = "cpu") -> RenderBackend:
    """The backend called ``name``; Replicator exists only inside Isaac Sim."""
    if name == "raster":
        from .raster import RasterBackend, RasterSettings

        return RasterBackend(class_names=list(config.classes), settings=RasterSettings(device=device))
    if name == "replicator":
        raise RunError("the replicator backend runs inside Isaac Sim (see docs/isaac-sim.md); use --backend raster here")
    raise RunError(f"unknown backend '{name}' (expected raster or replicator)")


class RenderSession:
    """One stage built from the config plus one backend; renders frame k of seed s on demand."""

    def __init__(self, config: SDGConfig, backend: RenderBackend, stage: Usd.Stage | None = None):
        self.config = config
        self.backend = backend
        self.stage = stage if stage is not None else build_stage(config)
        self.annotators = set(config.annotators)

    def apply(self, frame_index: int, seed: int | None = None) -> FrameParams:
        """Put the stage in frame ``frame_index``'s randomized state (what the UI scrubber shows)."""
        params = sample_frame_params(self.config, self.config.seed if seed is None else seed, frame_index)
        apply_frame_params(self.stage, params)
        return params

    def render(self, frame_index: int, seed: int | None = None) -> tuple[FrameParams, FrameData]:
        params = self.apply(frame_index, seed)
        frame = self.backend.render(
            self.stage, CAMERA_PATH, tuple(self.config.camera.resolution), self.annotators, frame_index
        )
        if params.warnings:
            frame.extra.setdefault("warnings", []).extend(params.warnings)
        return params, frame

    def save_stage(self, path: Path | str) -> None:
        save_stage(self.stage, path)


def dataset_info(config: SDGConfig, backend: str) -> dict:
    """What ``dataset.json`` records: tool version, stable class ids, annotators and the full config."""
    return {
        "tool": "sdgstudio",
        "version": __version__,
        "name": config.name,
        "seed": config.seed,
        "backend": backend,
        "resolution": list(config.camera.resolution),
        "annotators": list(config.annotators),
        "classes": [{"id": config.class_id(name), "name": name} for name in config.classes],
        "config": config_to_dict(config),
    }


@dataclass
class RunSummary:
    out_dir: Path
    frames_written: int = 0
    objects_labeled: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    exports: dict[str, dict] = field(default_factory=dict)  #: format -> export summary (config output.formats)

    @property
    def frames_per_second(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else 0.0


def generate(
    config: SDGConfig,
    out_dir: Path | str,
    frame_indices: Iterable[int],
    *,
    backend: str = "raster",
    device: str = "cpu",
    save_stages: bool = False,
    on_frame: Callable[[int, FrameData], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunSummary:
    """Render ``frame_indices`` of ``config`` into ``out_dir`` (which must not already hold a dataset)."""
    from .export import StreamingExport
    from .writer import DatasetWriter

    out = Path(out_dir)
    if (out / "manifest.jsonl").exists() or (out / "dataset.json").exists():
        raise RunError(f"{out} already holds a dataset; choose an empty folder")
    session = RenderSession(config, make_backend(backend, config, device))
    summary = RunSummary(out_dir=out)
    start = time.perf_counter()
    exports = StreamingExport(out, list(config.output.formats))  # exports listed frames on its own thread
    with exports, DatasetWriter(out, rgb_format=config.output.rgb_format, on_progress=exports.notify) as writer:
        writer.start(dataset_info(config, backend))
        exports.start()
        for index in frame_indices:
            if should_stop is not None and should_stop():
                break
            params, frame = session.render(index)
            if save_stages:
                (out / "stages").mkdir(exist_ok=True)
                session.save_stage(out / "stages" / f"frame_{index:06d}.usda")
            writer.submit(frame, {"frame": index, "seed": config.seed, "params": params.to_json()})
            summary.frames_written += 1
            summary.objects_labeled += sum(1 for o in frame.objects if o.pixel_count > 0)
            summary.warnings.extend(params.warnings)
            if on_frame is not None:
                on_frame(index, frame)
    summary.exports = exports.summaries
    summary.seconds = time.perf_counter() - start
    return summary
