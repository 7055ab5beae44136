"""Re-render one frame of a dataset from its ``dataset.json`` and manifest, and compare it with what was written.

A frame depends only on the config, the run seed and its index (``sample_frame_params``), and the manifest
records the seed and the files' SHA-256. So any listed frame can be rendered again, alone, into a separate
folder and checked byte for byte: to debug one odd frame, to confirm a new version still makes the same data,
or to rebuild a file that was lost. The dataset itself is only read.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, config_from_dict
from .generate import generate
from .manifest import DATASET_INFO_NAME, read_dataset_info, read_manifest, verify_entry
from .session import RunError


@dataclass(frozen=True)
class FileComparison:
    """One layer's file: its SHA-256 in the dataset's manifest and in the re-rendered frame (None: absent)."""

    layer: str
    name: str
    expected: str | None
    actual: str | None

    @property
    def identical(self) -> bool:
        return self.expected is not None and self.expected == self.actual


@dataclass
class RerenderResult:
    frame: int
    seed: int
    backend: str
    files: list[FileComparison]
    params_identical: bool  #: the sampled parameters equal the manifest's record
    kept_in: Path | None  #: folder holding the re-rendered frame (None: it was a temp folder, now deleted)
    dataset_problems: list[str] = field(default_factory=list)  #: the dataset's own files vs its manifest

    @property
    def identical(self) -> bool:
        return self.params_identical and all(f.identical for f in self.files)


def find_entry(dataset_dir: Path, frame: int) -> dict:
    """The manifest entry of ``frame``; RunError when the folder holds no dataset or does not list it."""
    if not (dataset_dir / DATASET_INFO_NAME).is_file():
        raise RunError(f"{dataset_dir} holds no dataset (no {DATASET_INFO_NAME})")
    for entry in read_manifest(dataset_dir):
        if entry["frame"] == frame:
            return entry
    raise RunError(f"frame {frame} is not listed in {dataset_dir}/manifest.jsonl (not rendered yet, or out of range)")


def rerender_frame(dataset_dir: Path | str, frame: int, to: Path | str | None = None, *,
                   device: str = "cpu") -> RerenderResult:
    """Render ``frame`` of the dataset in ``dataset_dir`` again and compare every file with the manifest.

    The frame is written as a one-frame dataset to ``to`` (which must not hold a dataset), or to a temp folder
    that is deleted afterwards.
    """
    dataset_dir = Path(dataset_dir)
    entry = find_entry(dataset_dir, frame)
    info = read_dataset_info(dataset_dir)
    try:
        config = config_from_dict(info["config"], base_dir=dataset_dir, source=str(dataset_dir / DATASET_INFO_NAME))
    except (ConfigError, KeyError) as exc:
        raise RunError(f"{dataset_dir}/{DATASET_INFO_NAME} holds no usable config: {exc}") from None
    config.seed = int(entry["seed"])
    backend = info.get("backend", "raster")
    if to is not None and Path(to).resolve() == dataset_dir.resolve():
        raise RunError("--to must be another folder than the dataset's: render-frame never overwrites a dataset")
    dest = Path(to) if to is not None else Path(tempfile.mkdtemp(prefix="sdgstudio-frame-"))
    try:
        generate(config, dest, [frame], backend=backend, device=device)
        new = read_manifest(dest)[0]
    finally:
        if to is None:
            shutil.rmtree(dest, ignore_errors=True)
    files = []
    for layer in sorted(set(entry["files"]) | set(new["files"])):
        name = entry["files"].get(layer) or new["files"][layer]
        files.append(FileComparison(layer, name, entry["sha256"].get(name), new["sha256"].get(new["files"].get(layer))))
    return RerenderResult(
        frame=frame, seed=config.seed, backend=backend, files=files,
        params_identical=new.get("params") == entry.get("params"), kept_in=Path(to) if to is not None else None,
        dataset_problems=verify_entry(dataset_dir, entry),
    )
