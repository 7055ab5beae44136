"""Headless generate for Isaac Sim's Python: ``python -m sdgstudio.replicator.run --config FILE --frames N --out DIR``.

Run it with Isaac Sim's interpreter (``./python.sh -m sdgstudio.replicator.run ...``, or ``python -m ...`` in a
pip-installed ``isaacsim`` environment) with ``exts/sdgstudio.core`` and ``exts/sdgstudio.replicator`` on
``PYTHONPATH`` (docs/isaac-sim.md). It starts ``SimulationApp({"headless": True})`` before anything imports pxr or
omni (Isaac Sim requires that order), builds the config's scene on the app's stage and runs the synchronous
``sdgstudio.core.generate`` with the Replicator backend: under SimulationApp Replicator allows synchronous steps.

``--shard i/N`` renders the i-th of N contiguous blocks of the frames (0-based), so N processes - one per GPU -
cover the run without overlap; give each its own ``--out``. Frame indices and seeds are the global ones: the shards'
frames are exactly those one process would render.

Exit codes as the ``sdgstudio`` CLI: 0 done, 2 a usage problem (bad config or arguments, occupied folder),
1 a failure while writing. A failure exits at once with its code (Kit's fast shutdown would report 0).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sdgstudio.core.cli_args import positive_int
from sdgstudio.core.shards import parse_shard as core_parse_shard
from sdgstudio.core.shards import shard_frames  # noqa: F401  (every tool splits runs alike)

EXIT_USAGE = 2
EXIT_FAILURE = 1


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> ``(i, N)``: ``sdgstudio.core.shards.parse_shard`` as an argparse type (one-line message)."""
    try:
        return core_parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sdgstudio.replicator.run",
                                description="Render an SDG Studio dataset with Replicator in headless Isaac Sim.")
    p.add_argument("--config", required=True, type=Path, help="TOML or YAML config")
    p.add_argument("--frames", type=positive_int, help="number of frames of the whole run (default: output.frames)")
    p.add_argument("--out", type=Path, help="output folder (default: output.dir)")
    p.add_argument("--shard", type=parse_shard, help="render only block i of N of the frames, e.g. 0/4")
    p.add_argument("--seed", type=int, help="run seed (default: the config's seed)")
    p.add_argument("--rt-subframes", type=positive_int, help="RTX subframes per frame (default: output.rt_subframes)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in OUT")
    p.add_argument("--active-gpu", type=int, help="GPU to render on (SimulationApp's active_gpu; one per shard)")
    return p


def run(args: argparse.Namespace) -> int:
    """Generate as ``args`` say, inside a started SimulationApp; returns the exit code."""
    from sdgstudio.core.config import ConfigError, load_config
    from sdgstudio.core.generate import generate
    from sdgstudio.core.session import RunError
    from sdgstudio.core.writer import WriterError

    try:
        config = load_config(args.config)
        if args.seed is not None:
            config.seed = args.seed
        if args.rt_subframes is not None:
            config.output.rt_subframes = args.rt_subframes
        total = args.frames or config.output.frames
        frames = shard_frames(total, *args.shard) if args.shard else range(total)
        out = args.out or Path(config.output.dir)
        summary = generate(config, out, frames, backend="replicator", resume=args.resume)
    except ConfigError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WriterError as exc:
        print(f"error: {exc}; frames listed in manifest.jsonl are complete, --resume continues", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILURE
    shard = f" (shard {args.shard[0]}/{args.shard[1]}: frames {frames.start}..{frames.stop - 1})" if args.shard else ""
    print(f"wrote {summary.frames_written} frames{shard}, {summary.objects_labeled} visible objects, to {out} in "
          f"{summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s)")
    for warning in dict.fromkeys(summary.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # before Isaac Sim starts: --help and bad arguments cost nothing
    from isaacsim import SimulationApp

    launch = {"headless": True}
    if args.active_gpu is not None:
        launch["active_gpu"] = args.active_gpu
    app = SimulationApp(launch)
    code = run(args)
    if code:  # Kit's fast shutdown would turn any exit status into 0
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
