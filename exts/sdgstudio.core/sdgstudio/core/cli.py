"""``sdgstudio`` command line: generate, validate, schema, merge, launch.

User mistakes (bad config, bad arguments, occupied output folder) print one line per problem to stderr and
exit with code 2, without a traceback. Failures while running (disk full, permission denied) print one line
and exit with code 1; whatever was already written stays consistent.
"""

from __future__ import annotations

import argparse
import functools
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
    gen.add_argument("--shard", type=_shard, metavar="i/N",
                     help="render only shard i (0-based) of N of the --frames frames: a contiguous block; merge the "
                          "N shard folders with 'sdgstudio merge' (docs/scale-out.md)")

    merge = sub.add_parser("merge", help="merge the shard folders of one run into one dataset")
    merge.add_argument("out", type=Path, help="new folder for the merged dataset")
    merge.add_argument("shards", type=Path, nargs="+", metavar="SHARD_DIR", help="folders written by generate --shard")

    lau = sub.add_parser("launch", help="render a dataset as shards on a Ray cluster, then merge them")
    lau.add_argument("--ray", nargs="?", const=None, default=None, metavar="ADDRESS",
                     help="existing Ray cluster (auto, HOST:6379, ray://HOST:10001); default: start a local one")
    lau.add_argument("--workers", type=_positive_int, required=True, help="number of shards, one Ray task each")
    lau.add_argument("--gpus-per-worker", type=_positive_float, default=0.0, help="GPUs per task (default 0)")
    lau.add_argument("--cpus-per-worker", type=_positive_float, default=1.0, help="CPUs per task (default 1)")
    lau.add_argument("--config", required=True, type=Path, help="TOML or YAML config")
    lau.add_argument("--frames", type=_positive_int, help="number of frames (default: output.frames)")
    lau.add_argument("--out", type=Path, help="output folder (default: output.dir); shards go to OUT.shards/")
    lau.add_argument("--seed", type=_seed, help="run seed (default: the config's seed)")
    lau.add_argument("--backend", choices=["raster", "replicator"], help="render backend (default: output.backend)")
    lau.add_argument("--device", help="Warp device (default: cuda with --gpus-per-worker, else cpu)")
    lau.add_argument("--retries", type=_count, default=3, help="retries of a failed or lost shard task (default 3)")
    lau.add_argument("--keep-shards", action="store_true", help="keep OUT.shards/ after the merge")
    lau.add_argument("--quiet", action="store_true", help="no progress bar")

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
    from .files import write_file_durably

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.out:
        write_file_durably(args.out, text.encode(), drop_cache=False)
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
    if args.shard is not None:
        from .shards import generate_shard, shard_frames

        todo = len(shard_frames(frames, *args.shard))
        run = functools.partial(generate_shard, config, out, frames, *args.shard)
    else:
        todo, run = frames, functools.partial(generate, config, out, range(frames))
    with tqdm(total=todo, unit="frame", disable=args.quiet, desc="generate", file=sys.stderr) as bar:
        summary = run(
            backend=backend, device=args.device, resume=args.resume, save_stages=args.save_stage,
            on_frame=lambda index, frame: bar.update(1),
        )
    print(
        f"wrote {summary.frames_written} frames, {summary.objects_labeled} visible objects, to {out} "
        f"in {summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s)"
    )
    for warning in dict.fromkeys(summary.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from .shards import merge_shards

    summary = merge_shards(args.out, args.shards)
    how = "hard-linked" if summary.linked else "copied"
    print(f"merged {len(args.shards)} shards: {summary.frames} frames, {summary.files} files {how} into {args.out}")
    return 0


def _cmd_launch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .config import load_config
    from .launch import launch

    config = load_config(args.config)
    if args.seed is not None:
        config.seed = args.seed
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


COMMANDS = {"generate": _cmd_generate, "validate": _cmd_validate, "schema": _cmd_schema, "merge": _cmd_merge,
            "launch": _cmd_launch}


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError
    from .generate import RunError
    from .launch import LaunchError
    from .writer import WriterError

    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except WriterError as exc:  # disk full, permission denied...: the manifest lists only complete frames
        print(f"error: {exc}; frames listed in manifest.jsonl are complete, --resume continues", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("interrupted: frames listed in manifest.jsonl are complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
