"""``SDGStudioWriter``: a Replicator writer that writes SDG Studio datasets (Kit only).

Registered in ``rep.WriterRegistry`` by the extension, so any Replicator script and Isaac Sim's Synthetic Data
Recorder ("Custom writer" = ``SDGStudioWriter``) can produce our format - and from it our exports::

    writer = rep.WriterRegistry.get("SDGStudioWriter")
    writer.initialize(output_dir="/data/bins", config="/data/bins.toml")   # or classes=["mug", "bowl"]
    writer.attach([render_product])
    ...  # rep.orchestrator.step_async() / run(); the recorder's loop
    await rep.orchestrator.wait_until_complete_async()   # on_final_frame: the last frames are written

``WriterRegistry.get`` does not run ``__init__``; Replicator's ``initialize(**params)`` does (RC writers.py), and the
recorder calls it as ``initialize(output_dir=<its output folder>, **<the custom params JSON>)``, so every other
parameter has a default. The payload is the legacy structure: one render product -> ``output_dir`` itself; several
-> one dataset per render product in ``output_dir/<render product name>``. Objects are those of the stage when
``write`` runs (``scene.read_scene``), labels as ``normalize`` describes; frames are numbered 0, 1, 2... per render
product in the order Replicator writes them (``reference_time`` goes into each manifest line).
"""

from __future__ import annotations

from pathlib import Path

import omni.replicator.core as rep
import omni.usd
from sdgstudio.core.frame import ANNOTATORS
from sdgstudio.core.writer import DatasetWriter

from . import __version__
from .normalize import frame_from_payloads
from .plan import replicator_annotators, split_render_products
from .scene import read_scene

#: What the writer records by default when neither ``annotators`` nor ``config`` says.
DEFAULT_LAYERS = ("rgb", "depth", "instance_segmentation", "semantic_segmentation", "bounding_box_2d_tight",
                  "bounding_box_2d_loose", "bounding_box_3d", "pose_6d")


class SDGStudioWriter(rep.Writer):
    """Writes Replicator frames as an SDG Studio dataset (``manifest.jsonl``, ``dataset.json``, layer files).

    Args:
        output_dir: dataset folder (must not hold a dataset yet); relative paths resolve against the working dir.
        config: an SDG Studio config file; its classes (stable ids) and annotators are used.
        classes: the class list (class id = position + 1) when there is no config. Default: the ``class`` labels
            on the stage at ``initialize``, sorted (stable only for the same stage).
        annotators: SDG Studio annotator names to record (default: the config's, else ``DEFAULT_LAYERS``).
        rgb_format: "png" or "jpg".
    """

    def __init__(self, output_dir: str, config: str | None = None, classes: list[str] | None = None,
                 annotators: list[str] | None = None, rgb_format: str = "png") -> None:
        self._config = None
        if config is not None:
            from sdgstudio.core.config import load_config

            self._config = load_config(config)
        if classes is None:
            classes = list(self._config.classes) if self._config is not None else _stage_classes()
        if annotators is None:
            annotators = list(self._config.annotators) if self._config is not None else list(DEFAULT_LAYERS)
        unknown = [a for a in annotators if a not in ANNOTATORS]
        if unknown:
            raise ValueError(f"SDGStudioWriter: unknown annotators {unknown}; expected any of {list(ANNOTATORS)}")
        self._classes = list(classes)
        self._layers = set(annotators)
        self._out = Path(output_dir).expanduser().resolve()
        _refuse_dataset(self._out)
        self._rgb_format = rgb_format
        self._writers: dict[str, DatasetWriter] = {}
        self._next: dict[str, int] = {}
        specs = replicator_annotators(sorted(self._layers))
        self._names = [s.name for s in specs]
        self.annotators = [rep.AnnotatorRegistry.get_annotator(s.name, init_params=s.init_params or None)
                           for s in specs]
        self.version = __version__
        self.data_structure = "legacy"

    def write(self, data: dict) -> None:
        stage = omni.usd.get_context().get_stage()
        scene = read_scene(stage, self._classes)
        per_rp = split_render_products(data, self._names)
        for rp_name, payloads in sorted(per_rp.items()):
            writer = self._writers.get(rp_name) or self._start(rp_name, len(per_rp) > 1)
            index = self._next[rp_name]
            frame = frame_from_payloads(payloads, scene, self._classes, self._layers, index)
            record = {"frame": index, "writer": type(self).__name__}
            if "reference_time" in data:
                record["reference_time"] = [int(v) for v in data["reference_time"]]
            writer.submit(frame, record)
            self._next[rp_name] = index + 1

    def _start(self, rp_name: str, several: bool) -> DatasetWriter:
        out = self._out / rp_name if several else self._out
        _refuse_dataset(out)
        writer = DatasetWriter(out, rgb_format=self._rgb_format)
        writer.start(self._dataset_info(rp_name))
        self._writers[rp_name], self._next[rp_name] = writer, 0
        return writer

    def _dataset_info(self, rp_name: str) -> dict:
        info = {"tool": "sdgstudio", "version": __version__, "backend": "replicator", "writer": type(self).__name__,
                "render_product": rp_name, "annotators": sorted(self._layers),
                "classes": [{"id": i + 1, "name": n} for i, n in enumerate(self._classes)]}
        if self._config is not None:
            from sdgstudio.core.generate import dataset_info

            info = {**dataset_info(self._config, "replicator"), **info, "annotators": list(self._config.annotators)}
        return info

    def close(self) -> None:
        """Write every queued frame and release the dataset folders (``on_final_frame`` and ``detach`` call it)."""
        writers, self._writers = self._writers, {}
        errors = []
        for writer in writers.values():
            try:
                writer.close()
            except Exception as exc:  # noqa: BLE001 - close the others, then report the first
                errors.append(exc)
        if errors:
            raise errors[0]

    def on_final_frame(self) -> None:
        self.close()
        super().on_final_frame()

    def detach(self) -> None:
        try:
            self.close()
        finally:
            super().detach()


def _refuse_dataset(out: Path) -> None:
    """A writer never appends to a dataset it did not start (frame numbers would repeat)."""
    if (out / "manifest.jsonl").exists() or (out / "dataset.json").exists():
        raise ValueError(f"SDGStudioWriter: {out} already holds a dataset; choose an empty output_dir")


def _stage_classes() -> list[str]:
    from .scene import class_of

    stage = omni.usd.get_context().get_stage()
    return sorted({c for c in (class_of(p) for p in stage.Traverse()) if c is not None}) if stage else []
