"""``sdgstudio`` command line: generate, render-frame, validate, schema, report, preview.

User mistakes (bad config, bad arguments, occupied output folder, a folder another run is writing) print one
line per problem to stderr and exit with code 2, without a traceback. Failures while running (disk full,
permission denied) print one line and exit with code 1; whatever was already written stays consistent and
``generate --resume`` continues it. ``render-frame --check`` exits 1 when a re-rendered frame differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .writer import WriterProgress

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


def _frame_range(text: str) -> range:
    from .preview import parse_frame_range

    try:
        return parse_frame_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _frame_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a frame index >= 0, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdgstudio", description="Labeled synthetic images for robot vision.")
    parser.add_argument("--version", action="version", version=f"sdgstudio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="render a labeled dataset")
    gen.add_argument("--config", required=True, type=Path, help="TOML or YAML config")
    gen.add_argument("--frames", type=_positive_int, help="number of frames (default: output.frames)")
    gen.add_argument("--out", type=Path, help="output folder (default: output.dir)")
    gen.add_argument("--seed", type=_seed, help="run seed (default: the config's seed)")
    gen.add_argument("--backend", choices=["raster", "replicator"], help="render backend (default: output.backend)")
    gen.add_argument("--device", default="cpu", help="Warp device for the raster backend: cpu or cuda")
    gen.add_argument("--resume", action="store_true", help="continue an interrupted run in OUT: keep its frames, add the missing")
    gen.add_argument("--save-stage", action="store_true", help="also write each frame's stage to OUT/stages/*.usda")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")

    frame = sub.add_parser("render-frame", help="render one frame of a dataset again and compare it byte for byte")
    frame.add_argument("--out", required=True, type=Path, help="the dataset folder (only read)")
    frame.add_argument("--frame", required=True, type=_frame_index, help="frame index, as in manifest.jsonl")
    frame.add_argument("--to", type=Path, help="keep the re-rendered frame in this new folder (default: compare only)")
    frame.add_argument("--check", action="store_true", help="exit 1 when any file differs from the dataset's")
    frame.add_argument("--device", default="cpu", help="Warp device for the raster backend: cpu or cuda")

    val = sub.add_parser("validate", help="check a config and list every problem")
    val.add_argument("config", type=Path)

    schema = sub.add_parser("schema", help="print the config's JSON Schema")
    schema.add_argument("--out", type=Path, help="write to a file instead of stdout")

    rep = sub.add_parser("report", help="write DIR/report/index.html and report.json: statistics, coverage, samples")
    rep.add_argument("dataset", type=Path, metavar="DIR", help="dataset folder written by generate")
    rep.add_argument("--open", action="store_true", help="open the page in the default web browser")
    rep.add_argument("--min-box", type=_positive_int, default=10, help="warn about boxes under this many pixels")
    rep.add_argument("--samples", type=_positive_int, default=12, help="frames in the sample grid")

    pre = sub.add_parser("preview", help="render frames with label overlays into one contact sheet, nothing else")
    pre.add_argument("--config", required=True, type=Path, help="TOML or YAML config")
    pre.add_argument("--frames", type=_frame_range, default="0:16", help="START:STOP or FRAME (default 0:16)")
    pre.add_argument("--out", required=True, type=Path, help="PNG file to write")
    pre.add_argument("--seed", type=_seed, help="run seed (default: the config's seed)")
    pre.add_argument("--backend", choices=["raster", "replicator"], help="render backend (default: output.backend)")
    pre.add_argument("--device", default="cpu", help="Warp device for the raster backend: cpu or cuda")
    pre.add_argument("--columns", type=_positive_int, default=4, help="tiles per row")
    return parser


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

    from .config import load_config
    from .generate import generate
    from .manifest import listed_frames
    from .writer import WriterError

    config = load_config(args.config)
    if args.seed is not None:
        config.seed = args.seed
    frames = args.frames or config.output.frames
    out = args.out or Path(config.output.dir)
    backend = args.backend or config.output.backend
    done = len(listed_frames(out) & set(range(frames))) if args.resume else 0
    latest: list[WriterProgress | None] = [None]  # the writer's last WriterProgress, stored by a writer thread, shown from this one

    def show(bar: tqdm) -> None:
        if latest[0] is not None:
            bar.set_postfix_str(_writer_postfix(latest[0]), refresh=False)
        bar.update(1)

    try:
        with tqdm(total=frames, initial=done, unit="frame", disable=args.quiet, desc="generate", file=sys.stderr) as bar:
            summary = generate(
                config, out, range(frames), backend=backend, device=args.device, resume=args.resume,
                save_stages=args.save_stage, on_frame=lambda index, frame: show(bar),
                on_progress=lambda progress: latest.__setitem__(0, progress),
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
    from .config import load_config
    from .preview import render_preview

    config = load_config(args.config)
    if args.seed is not None:
        config.seed = args.seed
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


COMMANDS = {"generate": _cmd_generate, "render-frame": _cmd_render_frame, "validate": _cmd_validate,
            "schema": _cmd_schema, "report": _cmd_report, "preview": _cmd_preview}


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError
    from .generate import RunError
    from .report import ReportError
    from .writer import WriterError

    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (RunError, ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
