"""python -m sdgstudio.replicator.run, through the isaacsim stand-in (SimulationApp) and the synchronous steps."""

from __future__ import annotations

import builtins
import contextlib
import io
import shutil
import tempfile
from pathlib import Path

import omni.kit.app
import omni.kit.test
import omni.replicator.core as rep
import omni.usd
from sdgstudio.core.config import save_config

from .reference import (
    STANDIN,
    check_against_raster,
    check_consistent,
    queue_reference_payloads,
    raster_frames,
    read_dataset,
    small_config,
    standin_helpers,
)

__all__ = ["TestHeadlessRunner"]


class TestHeadlessRunner(omni.kit.test.AsyncTestCase):
    async def setUp(self):
        if not STANDIN:
            self.skipTest("stand-in only: a real SimulationApp cannot start inside a running Kit app")
        self._tmp = Path(tempfile.mkdtemp(prefix="sdgstudio-run-test-"))
        # the isaacsim stand-in (tests/kit/exts/isaacsim) is no dependency: Isaac Sim has no extension of that name
        omni.kit.app.get_app().get_extension_manager().set_extension_enabled_immediate("isaacsim", True)
        await omni.usd.get_context().new_stage_async()
        await omni.kit.app.get_app().next_update_async()

    async def tearDown(self):
        if STANDIN:
            standin_helpers().clear_payloads()
            omni.kit.app.get_app().get_extension_manager().set_extension_enabled_immediate("isaacsim", False)
            shutil.rmtree(self._tmp, ignore_errors=True)

    async def test_a_shard_renders_its_block_of_the_frames(self):
        from contract_standin import recorder
        from sdgstudio.replicator import run

        config = small_config()
        config.annotators = ["rgb", "depth", "instance_segmentation", "bounding_box_2d_tight"]
        config_file = self._tmp / "scene.toml"
        save_config(config, config_file)
        reference = await raster_frames(config, range(2, 4))  # 4 frames, shard 1 of 2: frames 2 and 3
        queue_reference_payloads(config, reference)
        recorder(rep).clear()
        inside_kit = getattr(builtins, "ISAAC_LAUNCHED_FROM_TERMINAL", None)
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = run.main(["--config", str(config_file), "--frames", "4", "--shard", "1/2",
                             "--out", str(self._tmp / "part1")])
        self.assertEqual(code, 0)
        self.assertIn("wrote 2 frames (shard 1/2: frames 2..3)", stdout.getvalue())
        self.assertEqual(getattr(builtins, "ISAAC_LAUNCHED_FROM_TERMINAL", None), inside_kit)  # app closed
        names = recorder(rep).names()
        self.assertEqual(names.count("orchestrator.step"), 2)
        self.assertNotIn("orchestrator.step_async", names)
        self.assertEqual(names.count("Annotator.attach"), names.count("Annotator.detach"))
        written = read_dataset(self._tmp / "part1")
        self.assertEqual([w["entry"]["frame"] for w in written], [2, 3])
        for w, raster in zip(written, reference, strict=True):
            check_consistent(self, w, config)
            check_against_raster(self, w, raster, exact=True)

    async def test_shard_arguments_are_checked_before_isaac_sim_starts(self):
        import argparse

        from sdgstudio.replicator.run import parse_shard, shard_frames

        self.assertEqual(parse_shard("3/4"), (3, 4))
        for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
            with self.assertRaises(argparse.ArgumentTypeError):
                parse_shard(bad)
        blocks = [list(shard_frames(10, i, 3)) for i in range(3)]
        self.assertEqual(blocks, [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]])  # sdgstudio.core.shards: the CLI's split
