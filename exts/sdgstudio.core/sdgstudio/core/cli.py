"""``sdgstudio`` command line: generate, export, validate, schema.

User mistakes (bad config, bad arguments, occupied output folder) print one line per problem to stderr and
exit with code 2, without a traceback. Failures while running (disk full, permission denied) print one line
and exit with code 1; whatever was already written stays consistent.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected 0 <= seed < 2**63, got {value}")
    return value


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


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="sdgstudio", description="Labeled synthetic images for robot vision.")
    parser.add_argument("--version", action="version", version=f"sdgstudio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="render a labeled dataset")
    gen.add_argument("--config", required=True, type=Path, help="TOML or YAML config")
    gen.add_argument("--frames", type=_positive_int, help="number of frames (default: output.frames)")
    gen.add_argument("--out", type=Path, help="output folder (default: output.dir)")
    gen.add_argument("--seed", type=_seed, help="run seed (default: the config's seed)")
    gen.add_argument("--backend", choices=["raster", "replicator"], help="render backend (default: output.backend)")
    gen.add_argument("--device", default="cpu", help="Warp device for the raster backend: cpu or cuda")
    gen.add_argument("--save-stage", action="store_true", help="also write each frame's stage to OUT/stages/*.usda")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")

    exp = sub.add_parser("export", help="export a dataset to COCO, YOLO, KITTI or BOP (docs/formats.md)")
    exp.add_argument("dataset", type=Path, help="dataset folder (holds dataset.json and manifest.jsonl)")
    exp.add_argument("--format", required=True, help="coco, yolo, kitti or bop")
    exp.add_argument("--split", help="e.g. train=0.8,val=0.1,test=0.1 (default: the config's output.export, else "
                     "train=1)")
    exp.add_argument("--min-visible", type=_fraction, help="drop objects with visible fraction below this (0..1)")
    exp.add_argument("--min-pixels", type=_positive_int, help="drop objects with fewer visible pixels (>= 1)")
    exp.add_argument("--max-truncation", type=_fraction, help="drop objects truncated more than this (0..1)")
    exp.add_argument("--out", type=Path, help="export folder (default: DATASET/exports/FORMAT)")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")

    val = sub.add_parser("validate", help="check a config and list every problem")
    val.add_argument("config", type=Path)

    schema = sub.add_parser("schema", help="print the config's JSON Schema")
    schema.add_argument("--out", type=Path, help="write to a file instead of stdout")
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_config

    config = load_config(args.config)
    objects = sum(a.count.max for a in config.assets)
    print(f"{args.config}: ok ({len(config.assets)} assets, up to {objects} objects, {len(config.classes)} classes)")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from .config import json_schema
    from .files import atomic_write_bytes

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.out:
        atomic_write_bytes(args.out, text.encode())
    else:
        sys.stdout.write(text)
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .config import load_config
    from .generate import generate

    config = load_config(args.config)
    if args.seed is not None:
        config.seed = args.seed
    frames = args.frames or config.output.frames
    out = args.out or Path(config.output.dir)
    backend = args.backend or config.output.backend
    with tqdm(total=frames, unit="frame", disable=args.quiet, desc="generate", file=sys.stderr) as bar:
        summary = generate(
            config, out, range(frames), backend=backend, device=args.device, save_stages=args.save_stage,
            on_frame=lambda index, frame: bar.update(1),
        )
    print(
        f"wrote {summary.frames_written} frames, {summary.objects_labeled} visible objects, to {out} "
        f"in {summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s)"
    )
    for fmt, export in summary.exports.items():
        _print_export(fmt, export)
    for warning in dict.fromkeys(summary.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from .export import export_dataset

    start = time.perf_counter()
    bar = None  # made on the first exported frame, so an error before it prints only its own line

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="frame", disable=args.quiet, desc=f"export {args.format}", file=sys.stderr)
        bar.update(1)

    try:
        summary = export_dataset(args.dataset, args.format, out=args.out, split=args.split,
                                 min_visible=args.min_visible, min_pixels=args.min_pixels,
                                 max_truncation=args.max_truncation, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    _print_export(args.format, summary, time.perf_counter() - start)
    return 0


def _print_export(fmt: str, summary: dict, seconds: float | None = None) -> None:
    frames = ", ".join(f"{name} {n}" for name, n in summary["frames"].items())
    dropped = sum(summary["objects_dropped"].values())
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    print(f"exported {fmt}: {sum(summary['frames'].values())} frames ({frames}), {summary['objects_kept']} objects "
          f"kept, {dropped} dropped, to {summary['out']}{took}")
    mismatches = summary.get("result", {}).get("silhouette_mismatches")
    if mismatches:
        print(f"warning: {mismatches} objects' replayed full silhouettes differ from their recorded "
              f"unoccluded_pixel_count (was the scene's assets changed?); see docs/formats.md", file=sys.stderr)


COMMANDS = {"generate": _cmd_generate, "export": _cmd_export, "validate": _cmd_validate, "schema": _cmd_schema}


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError
    from .export import ExportError
    from .generate import RunError

    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (RunError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted: frames listed in manifest.jsonl are complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
