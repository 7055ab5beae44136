"""The headless runner's arguments, checked before Isaac Sim starts (pytest has no isaacsim: reaching it fails)."""

from __future__ import annotations

import argparse

import pytest
from sdgstudio.replicator import run


def test_shards_are_contiguous_blocks_that_cover_the_run_once():
    for total in (1, 7, 10, 1000):
        for count in (1, 3, 4):
            blocks = [list(run.shard_frames(total, i, count)) for i in range(count)]
            assert sum(blocks, []) == list(range(total))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert run.parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/4", "2", "x/4", "1/0"):
        with pytest.raises(argparse.ArgumentTypeError):
            run.parse_shard(bad)


def test_bad_arguments_exit_2_before_isaac_sim_is_imported(capsys):
    with pytest.raises(SystemExit) as exc:
        run.main(["--config", "scene.toml", "--shard", "3/2"])
    assert exc.value.code == 2
    assert "expected 0 <= i < N in i/N, got '3/2'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        run.main(["--help"])
    assert exc.value.code == 0


def test_good_arguments_reach_simulation_app():
    with pytest.raises(ImportError, match="isaacsim"):
        run.main(["--config", "scene.toml", "--frames", "3", "--shard", "0/2"])
