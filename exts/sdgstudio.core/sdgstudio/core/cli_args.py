"""The ``sdgstudio`` command line's grammar: the argument parser, argument types that reject bad values with one
line (``whole_number``, frame ranges, shards, fractions) and the exit codes. ``cli.py`` runs the commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from . import __version__

EXIT_USAGE = 2
EXIT_FAILURE = 1


def whole_number(minimum: int, maximum: int | None = None, what: str = "a number") -> Callable[[str], int]:
    """An argparse ``type`` accepting whole numbers ``minimum <= n`` (and ``n < maximum``), one-line messages."""
    expected = f"{what} >= {minimum}" if maximum is None else f"{minimum} <= {what} < 2**{maximum.bit_length() - 1}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
        if value < minimum or (maximum is not None and value >= maximum):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


positive_int = whole_number(1)
_seed = whole_number(0, 2**63, "seed")
_frame_index = whole_number(0, what="a frame index")


def _frame_range(text: str) -> range:
    from .preview import parse_frame_range

    try:
        return parse_frame_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _OneLineParser(argparse.ArgumentParser):
    """Argument mistakes print one line (``error: sdgstudio export: ...``) and exit 2, like every user error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number within 0..1, got '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number within 0..1, got {value:g}")
    return value


def _shard(text: str) -> tuple[int, int]:
    from .shards import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="sdgstudio", description="Labeled synthetic images for robot vision.")
    parser.add_argument("--version", action="version", version=f"sdgstudio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="render a labeled dataset")
    gen.add_argument("--config", required=True, type=Path, help="TOML or YAML config")
    gen.add_argument("--frames", type=positive_int, help="number of frames (default: output.frames)")
    gen.add_argument("--out", type=Path, help="output folder (default: output.dir)")
    gen.add_argument("--seed", type=_seed, help="run seed (default: the config's seed)")
    gen.add_argument("--backend", choices=["raster", "replicator"], help="render backend (default: output.backend)")
    gen.add_argument("--device", default="cpu", help="Warp device for the raster backend: cpu or cuda")
    gen.add_argument("--resume", action="store_true", help="continue an interrupted run in OUT: keep its frames, add the missing")
    gen.add_argument("--save-stage", action="store_true", help="also write each frame's stage to OUT/stages/*.usda")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.add_argument("--shard", type=_shard, metavar="i/N",
                     help="render only shard i (0-based) of N of the --frames frames: a contiguous block; merge the "
                          "N shard folders with 'sdgstudio merge' (docs/scale-out.md)")

    merge = sub.add_parser("merge", help="merge the shard folders of one run into one dataset")
    merge.add_argument("out", type=Path, help="new folder for the merged dataset")
    merge.add_argument("shards", type=Path, nargs="+", metavar="SHARD_DIR", help="folders written by generate --shard")
    merge.add_argument("--report", action="store_true", help="also write the merged dataset's report (OUT/report/)")

    lau = sub.add_parser("launch", help="render a dataset as shards on a Ray cluster, then merge them")
    lau.add_argument("--ray", nargs="?", const=None, default=None, metavar="ADDRESS",
                     help="existing Ray cluster (auto, HOST:6379, ray://HOST:10001); default: start a local one")
    lau.add_argument("--workers", type=positive_int, required=True, help="number of shards, one Ray task each")
    lau.add_argument("--gpus-per-worker", type=_positive_float, default=0.0, help="GPUs per task (default 0)")
    lau.add_argument("--cpus-per-worker", type=_positive_float, default=1.0, help="CPUs per task (default 1)")
    lau.add_argument("--config", required=True, type=Path, help="TOML or YAML config")
    lau.add_argument("--frames", type=positive_int, help="number of frames (default: output.frames)")
    lau.add_argument("--out", type=Path, help="output folder (default: output.dir); shards go to OUT.shards/")
    lau.add_argument("--seed", type=_seed, help="run seed (default: the config's seed)")
    lau.add_argument("--backend", choices=["raster", "replicator"], help="render backend (default: output.backend)")
    lau.add_argument("--device", help="Warp device (default: cuda with --gpus-per-worker, else cpu)")
    lau.add_argument("--retries", type=_count, default=3, help="retries of a failed or lost shard task (default 3)")
    lau.add_argument("--keep-shards", action="store_true", help="keep OUT.shards/ after the merge")
    lau.add_argument("--mps", action="store_true",
                     help="local cluster: run NVIDIA MPS for the workers sharing a GPU (docs/scale-out.md)")
    lau.add_argument("--quiet", action="store_true", help="no progress bar")

    frame = sub.add_parser("render-frame", help="render one frame of a dataset again and compare it byte for byte")
    frame.add_argument("--out", required=True, type=Path, help="the dataset folder (only read)")
    frame.add_argument("--frame", required=True, type=_frame_index, help="frame index, as in manifest.jsonl")
    frame.add_argument("--to", type=Path, help="keep the re-rendered frame in this new folder (default: compare only)")
    frame.add_argument("--check", action="store_true", help="exit 1 when any file differs from the dataset's")
    frame.add_argument("--device", default="cpu", help="Warp device for the raster backend: cpu or cuda")

    exp = sub.add_parser("export", help="export a dataset to COCO, YOLO, KITTI or BOP (docs/formats.md)")
    exp.add_argument("dataset", type=Path, help="dataset folder (holds dataset.json and manifest.jsonl)")
    exp.add_argument("--format", required=True, help="coco, yolo, kitti or bop")
    exp.add_argument("--split", help="e.g. train=0.8,val=0.1,test=0.1 (default: the config's output.export, else "
                     "train=1)")
    exp.add_argument("--min-visible", type=_fraction, help="drop objects with visible fraction below this (0..1)")
    exp.add_argument("--min-pixels", type=positive_int, help="drop objects with fewer visible pixels (>= 1)")
    exp.add_argument("--max-truncation", type=_fraction, help="drop objects truncated more than this (0..1)")
    exp.add_argument("--out", type=Path, help="export folder (default: DATASET/exports/FORMAT)")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")

    val = sub.add_parser("validate", help="check a config and list every problem")
    val.add_argument("config", type=Path)

    schema = sub.add_parser("schema", help="print the config's JSON Schema")
    schema.add_argument("--out", type=Path, help="write to a file instead of stdout")

    rep = sub.add_parser("report", help="write DIR/report/index.html and report.json: statistics, coverage, samples")
    rep.add_argument("dataset", type=Path, metavar="DIR", help="dataset folder written by generate")
    rep.add_argument("--open", action="store_true", help="open the page in the default web browser")
    rep.add_argument("--min-box", type=positive_int, default=10, help="warn about boxes under this many pixels")
    rep.add_argument("--samples", type=positive_int, default=12, help="frames in the sample grid")

    pre = sub.add_parser("preview", help="render frames with label overlays into one contact sheet, nothing else")
    pre.add_argument("--config", required=True, type=Path, help="TOML or YAML config")
    pre.add_argument("--frames", type=_frame_range, default="0:16", help="START:STOP or FRAME (default 0:16)")
    pre.add_argument("--out", required=True, type=Path, help="PNG file to write")
    pre.add_argument("--seed", type=_seed, help="run seed (default: the config's seed)")
    pre.add_argument("--backend", choices=["raster", "replicator"], help="render backend (default: output.backend)")
    pre.add_argument("--device", default="cpu", help="Warp device for the raster backend: cpu or cuda")
    pre.add_argument("--columns", type=positive_int, default=4, help="tiles per row")
    return parser
