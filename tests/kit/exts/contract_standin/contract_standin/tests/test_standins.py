"""The stand-ins behave as the contracts and API_FACTS.md say, and refuse what the contracts do not list."""

from __future__ import annotations

import numpy as np
import omni.kit.app
import omni.kit.menu.utils as menu_utils
import omni.kit.test
import omni.replicator.core as rep
import omni.ui as ui
import omni.ui._behaviour as ui_standin
import omni.usd
from omni.kit.menu.utils import _behaviour as menu_standin
from omni.replicator.core import _behaviour as rep_standin

from contract_standin import ContractAttributeError, ContractViolation, recorder, resources
from contract_standin.standin import violations

__all__ = ["TestStandins"]


class TestStandins(omni.kit.test.AsyncTestCase):
    def setUp(self):
        self._violations = len(violations)

    def expect_violation(self, exc_type, fn, *args, **kwargs) -> str:
        with self.assertRaises(exc_type) as ctx:
            fn(*args, **kwargs)
        self.assertEqual(violations[-1], str(ctx.exception))
        del violations[self._violations:]  # expected: keep them from failing this test
        return str(ctx.exception)

    async def test_ui_window_builds_on_the_next_update_and_records_calls(self):
        clicks = []
        seed = ui.SimpleIntModel(7)
        seen = []
        seed.add_value_changed_fn(lambda m: seen.append(m.as_int))
        window = ui.Window("Stand-in", width=200, height=100, visible=True)
        window.deferred_dock_in("Property", ui.DockPolicy.DO_NOTHING)

        def build():
            with ui.VStack(spacing=2):
                ui.Label("Seed", alignment=ui.Alignment.LEFT_CENTER)
                ui.IntField(seed)
                ui.ComboBox(1, "raster", "replicator")
                ui.Button("Go", clicked_fn=lambda: clicks.append(1))

        window.frame.set_build_fn(build)
        self.assertEqual(ui_standin.find(window, "Button"), [])  # built lazily, as omni.ui draws
        await omni.kit.app.get_app().next_update_async()
        (button,) = ui_standin.find(window, "Button", text="Go")
        button.call_clicked_fn()
        self.assertEqual(clicks, [1])
        (field,) = ui_standin.find(window, "IntField")
        field.model.set_value(9)
        self.assertEqual((seed.as_int, seen), (9, [9]))
        (combo,) = ui_standin.find(window, "ComboBox")
        index = combo.model.get_item_value_model()
        self.assertEqual(index.as_int, 1)
        self.assertEqual([i.model.as_string for i in combo.model.get_item_children()], ["raster", "replicator"])
        self.assertEqual(ui.ProgressBar().model.as_float, 0.0)
        self.assertEqual(recorder(ui).find("Window.deferred_dock_in")[-1].args[0], "Property")
        self.assertTrue(resources.live(str(__file__).rsplit("/", 1)[0]))
        window.destroy()
        self.assertEqual(resources.live(str(__file__).rsplit("/", 1)[0]), [])

    async def test_ui_refuses_names_and_keywords_outside_the_contract(self):
        msg = self.expect_violation(ContractViolation, ui.Label, "x", colour=1)
        self.assertIn("omni.ui.Label() got keyword 'colour'", msg)
        msg = self.expect_violation(ContractAttributeError, getattr, ui, "Toolbar")
        self.assertIn("omni.ui has no 'Toolbar' in the contract omni_ui.toml", msg)
        self.expect_violation(ContractAttributeError, getattr, ui.Alignment, "LEFT_MIDDLE")
        self.expect_violation(ContractViolation, ui.SimpleIntModel, default_value=3)  # positional-only
        provider = ui.ByteImageProvider()
        with self.assertRaises(ValueError):
            provider.set_bytes_data([0, 0, 0], [1, 1])  # not W*H*4 bytes
        provider.set_bytes_data([0, 0, 0, 255], [1, 1])
        self.assertEqual((provider.width, provider.height), (1, 1))

    async def test_menu_helper_opens_through_the_workspace_and_destroys_a_closed_window(self):
        class Ext(menu_utils.MenuHelperExtensionFull):
            pass

        here = str(__file__).rsplit("/", 1)[0]
        ext = Ext()
        ext.menu_startup(lambda: ui.Window("Shown"), "Shown", "Shown", "Tools")
        self.assertTrue(ui.Workspace.show_window("Shown"))  # as the real helper registers it
        window = ext._window
        self.assertTrue(window.visible)
        window.visible = False  # the user closes it: destroyed one update later, as the real helper does
        for _ in range(2):
            await omni.kit.app.get_app().next_update_async()
        self.assertTrue(window._destroyed)
        self.assertIsNone(ext._window)
        again = menu_standin.click("Tools/Shown")
        self.assertIsNot(again, window)
        ext.menu_shutdown()
        self.assertTrue(again._destroyed)
        self.assertFalse(ui.Workspace.show_window("Shown"))  # unregistered by menu_shutdown
        self.assertEqual(resources.live(here), [])

    async def test_file_picker_dialog_calls_its_handlers_and_is_tracked_until_destroyed(self):
        from omni.kit.window.filepicker import FilePickerDialog
        from omni.kit.window.filepicker import _behaviour as picker

        here = str(__file__).rsplit("/", 1)[0]
        chosen = []
        dialog = FilePickerDialog("Pick", allow_multi_selection=False, apply_button_label="Open",
                                  click_apply_handler=lambda f, d: chosen.append((f, d)),
                                  click_cancel_handler=lambda f, d: chosen.append("cancel"))
        self.assertIn(dialog, picker.dialogs())
        picker.choose(dialog, "a.toml", "/tmp")
        picker.cancel(dialog)
        self.assertEqual(chosen, [("a.toml", "/tmp"), "cancel"])
        dialog.hide()
        self.assertNotIn(dialog, picker.dialogs())
        self.assertTrue(resources.live(here))
        dialog.destroy()
        self.assertEqual(resources.live(here), [])
        msg = self.expect_violation(ContractViolation, FilePickerDialog, title="x")  # positional-only
        self.assertIn("keyword 'title'", msg)

    async def test_usd_context_holds_a_real_stage(self):
        ctx = omni.usd.get_context()
        await ctx.new_stage_async()
        stage = ctx.get_stage()
        stage.DefinePrim("/World", "Xform")
        self.assertTrue(omni.usd.get_context().get_stage().GetPrimAtPath("/World").IsValid())
        ctx.get_selection().set_selected_prim_paths(["/World"], False)
        self.assertEqual(ctx.get_selection().get_selected_prim_paths(), ["/World"])

    async def test_menu_helper_creates_and_tears_down_its_window(self):
        class Ext(menu_utils.MenuHelperExtensionFull):
            pass

        ext = Ext()
        ext.menu_startup(lambda: ui.Window("From menu"), "From menu", "From menu", "Tools/Replicator")
        window = menu_standin.click("Tools/Replicator/From menu")
        self.assertEqual(window.title, "From menu")
        ext.menu_shutdown()
        self.assertTrue(window._destroyed)
        items = [menu_utils.MenuItemDescription(name="Thing", onclick_fn=lambda: "clicked")]
        menu_utils.add_menu_items(items, "Tools")
        self.assertEqual(menu_standin.click("Tools/Thing"), "clicked")
        menu_utils.remove_menu_items(items, "Tools")
        self.assertEqual(resources.live(str(__file__).rsplit("/", 1)[0]), [])

    async def test_replicator_writer_flow_as_api_facts_describe(self):
        written, finals = [], []

        class ProbeWriter(rep.Writer):
            def __init__(self, output_dir):
                self.output_dir = output_dir
                self.annotators = ["distance_to_camera"]

            def write(self, data):
                written.append(data)

            def on_final_frame(self):
                finals.append(True)

        steps = []  # the stand-in's frame counter at each get_data (it counts every step since Kit started)

        def data(name, rp, params, frame):
            steps.append(frame)
            return np.full((2, 2), float(frame), np.float32)

        rep.__standin_data__ = data
        try:
            rep.WriterRegistry.register(ProbeWriter)
            writer = rep.WriterRegistry.get("ProbeWriter")
            self.assertFalse(hasattr(writer, "output_dir"))  # get() does not run __init__
            writer.initialize(output_dir="/tmp/x")
            self.assertEqual(writer.output_dir, "/tmp/x")
            rp = rep.create.render_product("/World/Camera", (64, 48), name="cam", force_new=True)
            ann = rep.AnnotatorRegistry.get_annotator("distance_to_camera").attach(rp)
            writer.backend = rep.backends.get("DiskBackend")
            writer.attach([rp])
            rep.orchestrator.set_capture_on_play(False)
            await rep.orchestrator.step_async(rt_subframes=4, delta_time=0.0)
            self.assertEqual(ann.get_data(do_array_copy=True).tolist(), [[float(steps[-1])] * 2] * 2)
            self.assertEqual(written[0]["distance_to_camera"].shape, (2, 2))
            await rep.orchestrator.wait_until_complete_async()
            self.assertEqual(finals, [True])
            self.assertEqual(rep.orchestrator.get_status(), rep.orchestrator.Status.STOPPED)
            with self.assertRaises(rep.orchestrator.OrchestratorError):
                rep.orchestrator.step()
            with self.assertRaises(rep.annotators.AnnotatorRegistryError):
                rep.AnnotatorRegistry.get_annotator("lidar_magic")
            with self.assertRaises(NotImplementedError):
                rep.AnnotatorRegistry.get_annotator("rgb").attach([rp, rp])
            self.expect_violation(ContractViolation, rep.orchestrator.step_async, num_frames=3)
            here = str(__file__).rsplit("/", 1)[0]
            self.assertEqual(len(resources.live(here)), 4)  # writer registered + attached, annotator, render product
            ann.detach()
            writer.detach()
            rp.destroy()
            rep.WriterRegistry.unregister("ProbeWriter")
            self.assertEqual(resources.live(here), [])
        finally:
            rep.__standin_data__ = None

    async def test_replicator_queued_payloads_and_reused_buffers(self):
        frames = [{"distance_to_camera": np.full((2, 2), float(k), np.float32)} for k in range(2)]
        rep_standin.queue_payloads(frames)
        rp = rep.create.render_product("/World/Camera", (2, 2))
        ann = rep.AnnotatorRegistry.get_annotator("distance_to_camera").attach(rp)
        rgb = rep.AnnotatorRegistry.get_annotator("rgb").attach(rp)
        try:
            with self.assertRaises(LookupError):  # nothing rendered yet
                ann.get_data()
            await rep.orchestrator.step_async(rt_subframes=2)
            copied = ann.get_data(do_array_copy=True)
            view = ann.get_data()  # no copy: the stand-in's buffer, as Replicator's
            self.assertEqual(copied.tolist(), [[0.0, 0.0], [0.0, 0.0]])
            with self.assertRaises(LookupError):  # the frame has no rgb payload
                rgb.get_data()
            await rep.orchestrator.step_async()
            self.assertTrue(np.isnan(view).all(), "a view kept across a step must not keep its values")
            self.assertEqual(copied.tolist(), [[0.0, 0.0], [0.0, 0.0]])
            self.assertEqual(ann.get_data(do_array_copy=True).tolist(), [[1.0, 1.0], [1.0, 1.0]])
            self.assertEqual(frames[0]["distance_to_camera"].tolist(), [[0.0, 0.0], [0.0, 0.0]])  # queued copies
            self.assertEqual(rep_standin.pending_payloads(), 0)
        finally:
            rep_standin.clear_payloads()
            ann.detach()
            rgb.detach()
            rp.destroy()

    async def test_replicator_sync_steps_work_only_under_simulation_app(self):
        import builtins

        with self.assertRaises(rep.orchestrator.OrchestratorError):
            rep.orchestrator.step(rt_subframes=1)
        previous = getattr(builtins, "ISAAC_LAUNCHED_FROM_TERMINAL", None)
        builtins.ISAAC_LAUNCHED_FROM_TERMINAL = False  # what SimulationApp sets (tests/kit/exts/isaacsim)
        try:
            rep_standin.queue_payloads([{"rgb": np.zeros((1, 1, 4), np.uint8)}])
            rp = rep.create.render_product("/World/Camera", (1, 1))
            ann = rep.AnnotatorRegistry.get_annotator("rgb").attach(rp)
            rep.orchestrator.step(rt_subframes=1)
            self.assertEqual(ann.get_data(do_array_copy=True).shape, (1, 1, 4))
            rep.orchestrator.wait_until_complete()
            self.assertEqual(rep.orchestrator.get_status(), rep.orchestrator.Status.STOPPED)
            ann.detach()
            rp.destroy()
        finally:
            rep_standin.clear_payloads()
            if previous is None:
                del builtins.ISAAC_LAUNCHED_FROM_TERMINAL
            else:
                builtins.ISAAC_LAUNCHED_FROM_TERMINAL = previous
