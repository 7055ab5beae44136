"""``sdgstudio`` command line: generate, export, render-frame, merge, launch, validate, schema, report, preview.

User mistakes (bad config, bad arguments, occupied output folder, a folder another run is writing) print one
line per problem to stderr and exit with code 2, without a traceback. Failures while running (disk full,
permission denied) print one line and exit with code 1; whatever was already written stays consistent and
``generate --resume`` continues it. ``render-frame --check`` exits 1 when a re-rendered frame differs.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .writer import WriterProgress

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


def _parser() -> argparse.ArgumentParser:
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


def _config_with_seed(args: argparse.Namespace):
    """``--config`` loaded, with ``--seed`` (when given) in place of the file's seed."""
    from .config import load_config

    config = load_config(args.config)
    if args.seed is not None:
        config.seed = args.seed
    return config


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_config

    config = load_config(args.config)
    objects = sum(a.count.max for a in config.assets)
    print(f"{args.config}: ok ({len(config.assets)} assets, up to {objects} objects, {len(config.classes)} classes)")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from .config import json_schema
    from .files import write_file_durably

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.out:
        write_file_durably(args.out, text.encode(), drop_cache=False)
    else:
        sys.stdout.write(text)
    return 0


def _writer_postfix(progress: WriterProgress) -> str:
    """The progress bar's writer column: listed frames, their rate, queue, MB and renderer-blocked seconds."""
    return (f"written {progress.frames_written} ({progress.frames_per_second:.1f}/s), queue {progress.queue_depth}, "
            f"{progress.bytes_written / 1e6:.1f} MB, blocked {progress.blocked_seconds:.1f} s")


def _resume_hint(out: Path) -> str:
    """What to do after a failed run: resume it if it got as far as writing dataset.json."""
    from .manifest import listed_frames

    try:
        if (out / "dataset.json").is_file():
            listed = len(listed_frames(out))
            return (f"the {listed} frames in manifest.jsonl are complete: free space or fix permissions, "
                    "then rerun with --resume")
    except OSError:
        pass
    return "free space or fix permissions, then run again"


def _cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .generate import generate
    from .manifest import listed_frames
    from .writer import WriterError

    config = _config_with_seed(args)
    frames = args.frames or config.output.frames
    out = args.out or Path(config.output.dir)
    backend = args.backend or config.output.backend
    if args.shard is not None:
        from .shards import generate_shard, shard_frames

        indices = shard_frames(frames, *args.shard)
        run = functools.partial(generate_shard, config, out, frames, *args.shard)
    else:
        indices = range(frames)
        run = functools.partial(generate, config, out, indices)
    done = len(listed_frames(out) & set(indices)) if args.resume else 0
    latest: list[WriterProgress | None] = [None]  # the writer's last WriterProgress, stored by a writer thread, shown from this one

    def show(bar: tqdm) -> None:
        if latest[0] is not None:
            bar.set_postfix_str(_writer_postfix(latest[0]), refresh=False)
        bar.update(1)

    try:
        with tqdm(total=len(indices), initial=done, unit="frame", disable=args.quiet, desc="generate",
                  file=sys.stderr) as bar:
            summary = run(
                backend=backend, device=args.device, resume=args.resume, save_stages=args.save_stage,
                on_frame=lambda index, frame: show(bar), on_progress=lambda progress: latest.__setitem__(0, progress),
            )
            if latest[0] is not None:
                bar.set_postfix_str(_writer_postfix(latest[0]))
    except WriterError as exc:  # disk full, permission denied...: the manifest lists only complete frames
        print(f"error: {exc} (in {out}); {_resume_hint(out)}", file=sys.stderr)
        return EXIT_FAILURE
    print(
        f"wrote {summary.frames_written} frames, {summary.objects_labeled} visible objects, "
        f"{summary.bytes_written / 1e6:.1f} MB, to {out} in {summary.seconds:.1f} s "
        f"({summary.frames_per_second:.1f} frames/s; renderer blocked {summary.blocked_seconds:.1f} s by the writer)"
    )
    for fmt, export in summary.exports.items():
        _print_export(fmt, export)
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report, open_report

    build = open_report if args.open else build_report
    page = build(args.dataset, min_box_pixels=args.min_box, samples=args.samples)
    print(f"wrote {page} and {page.with_name('report.json')}")
    return 0


def _cmd_preview(args: argparse.Namespace) -> int:
    from .preview import render_preview

    config = _config_with_seed(args)
    out = render_preview(config, args.frames, args.out, backend=args.backend or config.output.backend,
                         device=args.device, columns=args.columns)
    print(f"wrote {out} ({len(args.frames)} frames)")
    return 0


def _cmd_render_frame(args: argparse.Namespace) -> int:
    from .rerender import rerender_frame

    result = rerender_frame(args.out, args.frame, args.to, device=args.device)
    print(f"frame {result.frame} of {args.out}, rendered again (seed {result.seed}, {result.backend} backend):")
    for file in result.files:
        state = "identical" if file.identical else "missing" if file.actual is None else "DIFFERS"
        print(f"  {state:9}  {file.name}")
    if not result.params_identical:
        print("  DIFFERS    sampled parameters (manifest 'params')")
    same = sum(f.identical for f in result.files)
    print(f"{same} of {len(result.files)} files identical" + (f"; kept in {result.kept_in}" if result.kept_in else ""))
    for problem in result.dataset_problems:
        print(f"warning: the dataset's own file changed since it was written: {problem}", file=sys.stderr)
    return EXIT_FAILURE if args.check and not result.identical else 0


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


def _cmd_merge(args: argparse.Namespace) -> int:
    from .shards import merge_shards

    summary = merge_shards(args.out, args.shards, report=args.report)
    how = "hard-linked" if summary.linked else "copied"
    print(f"merged {len(args.shards)} shards: {summary.frames} frames, {summary.files} files {how} into {args.out}")
    for fmt, export in summary.exports.items():
        _print_export(fmt, export)
    if summary.report is not None:
        print(f"wrote {summary.report}")
    return 0


def _cmd_launch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .launch import launch

    config = _config_with_seed(args)
    frames = args.frames or config.output.frames
    out = args.out or Path(config.output.dir)
    with tqdm(total=frames, unit="frame", disable=args.quiet, desc=f"launch x{args.workers}", file=sys.stderr) as bar:

        def show(listed_per_shard: list[int]) -> None:
            if sum(listed_per_shard) > bar.n:
                bar.update(sum(listed_per_shard) - bar.n)

        summary = launch(
            config, out, frames, args.workers, address=args.ray, cpus_per_worker=args.cpus_per_worker,
            gpus_per_worker=args.gpus_per_worker, backend=args.backend or config.output.backend, device=args.device,
            max_retries=args.retries, keep_shards=args.keep_shards, on_progress=show,
        )
    resumed = [r["shard"] for r in summary.results if r["resumed"]]
    print(
        f"wrote {summary.frames} frames in {summary.shards} shards to {out} in {summary.seconds:.1f} s "
        f"({summary.frames_per_second:.1f} frames/s)" + (f"; shards {resumed} resumed from their manifests" if resumed else "")
    )
    return 0


COMMANDS = {"generate": _cmd_generate, "export": _cmd_export, "render-frame": _cmd_render_frame,
            "merge": _cmd_merge, "launch": _cmd_launch, "validate": _cmd_validate, "schema": _cmd_schema,
            "report": _cmd_report, "preview": _cmd_preview}


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError
    from .export import ExportError
    from .launch import LaunchError
    from .report import ReportError
    from .session import RunError
    from .writer import WriterError

    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (RunError, ReportError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except WriterError as exc:  # cannot start writing (no space for dataset.json...)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted: frames listed in manifest.jsonl are complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
