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
from pathlib import Path
from typing import TYPE_CHECKING

from .cli_args import EXIT_FAILURE, EXIT_USAGE, build_parser

if TYPE_CHECKING:
    from .writer import WriterProgress


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
            max_retries=args.retries, keep_shards=args.keep_shards, mps=args.mps, on_progress=show,
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
    from .mps import MPSError
    from .report import ReportError
    from .session import RunError
    from .writer import WriterError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (RunError, ReportError, ExportError, MPSError) as exc:
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
