"""The window as a user meets it: menu entry, docking, the schema-driven form, bad values, files, assets, state."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import omni.kit.test
import omni.ui as ui
import omni.usd
from pxr import UsdGeom
from sdgstudio.core.config import SDGConfig, load_config
from sdgstudio.core.extension import extension_path

from .helpers import (
    SKIP_REASON,
    STANDIN,
    all_widgets,
    click,
    close_window,
    field_path,
    identifiers,
    open_window,
    reset_persistent_state,
    small_config_file,
    standin,
    updates,
    visible_messages,
    widget,
)

__all__ = ["TestWindow"]


def schema_leaf_paths() -> set[str]:
    """Every value a config can hold, read from the JSON Schema (independently of the form's own walker)."""
    schema = SDGConfig.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    out: set[str] = set()

    def resolve(node: dict) -> dict:
        return defs[node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node

    def walk(node: dict, path: str) -> None:
        node = resolve(node)
        if "anyOf" in node:
            for option in node["anyOf"]:
                if option.get("type") != "null":
                    walk(option, path)
            return
        if node.get("ui") == "range":  # Range / IntRange: one min/max widget pair
            out.add(path)
        elif node.get("type") == "object" and "properties" in node:
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}" if path else key)
        elif node.get("type") == "array" and "properties" in resolve(node.get("items") or {}):
            walk(node["items"], f"{path}[]")
        else:
            out.add(path)

    walk(schema, "")
    return out


class TestWindow(omni.kit.test.AsyncTestCase):
    async def setUp(self):
        if not STANDIN:
            self.skipTest(SKIP_REASON)
        reset_persistent_state()
        await omni.usd.get_context().new_stage_async()
        self._tmp = Path(tempfile.mkdtemp(prefix="sdgstudio-ui-test-"))
        self._window = None

    async def tearDown(self):
        await close_window(self._window)
        self._window = None
        shutil.rmtree(self._tmp, ignore_errors=True)
        reset_persistent_state()

    async def _open(self, config: Path | None = None):
        self._window = await open_window()
        if config is not None:
            await self._load_through_dialog(config)
        return self._window

    async def _load_through_dialog(self, path: Path) -> None:
        picker = standin("omni.kit.window.filepicker")
        click(self._window, "sdg-file:load")
        dialog = picker.dialogs()[-1]
        picker.choose(dialog, path.name, str(path.parent))
        await updates(3)

    async def test_menu_entry_opens_a_window_docked_beside_property_and_closing_tears_it_down(self):
        from contract_standin import recorder, resources

        window = await self._open()
        self.assertEqual(window.title, "SDG Studio")
        self.assertEqual(recorder(ui).find("Window.deferred_dock_in")[-1].args[0], "Property")
        self.assertTrue(identifiers(window, "sdg-section:"))
        controller = window.controller
        await close_window(window)
        self.assertTrue(window._destroyed)
        self.assertIsNone(controller.task)
        ours = str(extension_path().parent / "sdgstudio.ui")
        self.assertEqual([r.description for r in resources.live(ours) if r.kind != "menu entry"], [])
        self._window = await open_window()  # the menu creates a fresh one
        self.assertFalse(self._window._destroyed)

    async def test_workspace_show_window_opens_it(self):
        menu = standin("omni.kit.menu.utils")
        self.assertTrue(ui.Workspace.show_window("SDG Studio"))
        await updates(2)
        self._window = menu._helper_entries["Tools/Replicator/SDG Studio"]._window
        self.assertTrue(self._window.visible)

    async def test_every_schema_field_is_reachable_in_the_window(self):
        window = await self._open(small_config_file(self._tmp))
        click(window, "sdg-add:assets.0.library")  # a library list, so its item fields exist
        await updates(2)
        for _ in range(60):  # switch every optional value on, so the fields under it are built
            off = [w for w in all_widgets(window)
                   if str(getattr(w, "identifier", "")).endswith("#set") and not w.model.as_bool]
            if not off:
                break
            off[0].model.set_value(True)
            await updates(2)
        shown = {field_path(i) for i in identifiers(window, "sdg:") if not i.endswith("#set")}
        expected = schema_leaf_paths()
        self.assertEqual(sorted(expected - shown), [], "schema fields with no widget")
        self.assertEqual(sorted(shown - expected), [], "widgets for no schema field")

    async def test_bad_values_show_one_message_beside_the_field_and_disable_generate(self):
        window = await self._open(small_config_file(self._tmp))
        generate = widget(window, "sdg-run:generate")
        self.assertTrue(generate.enabled)
        self.assertEqual(visible_messages(window), {})

        widget(window, "sdg:lighting.ambient#min").model.set_value(5000.0)  # above max: refused
        await updates()
        messages = visible_messages(window)
        self.assertEqual(list(messages), ["lighting.ambient"])
        self.assertIn("greater than max", messages["lighting.ambient"])
        self.assertFalse(generate.enabled)

        widget(window, "sdg:output.frames").model.set_value(0)
        widget(window, "sdg:assets.3.source").model.set_value("/no/such/mug.usda")
        widget(window, "sdg:camera.resolution#x").model.set_value(-5)
        await updates()
        messages = visible_messages(window)
        self.assertEqual(sorted(messages), ["assets.3.source", "camera.resolution", "lighting.ambient", "output.frames"])
        self.assertIn("not found", messages["assets.3.source"])
        self.assertFalse(generate.enabled)
        self.assertIn("setting(s) to fix", generate.tooltip)
        self.assertFalse(window.generate())  # the button's action refuses too

        widget(window, "sdg:lighting.ambient#min").model.set_value(100.0)
        widget(window, "sdg:output.frames").model.set_value(2)
        widget(window, "sdg:assets.3.source").model.set_value(str(extension_path() / "data" / "assets" / "mug.usda"))
        widget(window, "sdg:camera.resolution#x").model.set_value(64)
        await updates()
        self.assertEqual(visible_messages(window), {})
        self.assertTrue(generate.enabled)

    async def test_a_file_with_wrong_types_opens_marked_and_builds_without_errors(self):
        import tomli_w
        from sdgstudio.ui.view_model import read_config_file

        data = read_config_file(small_config_file(self._tmp))
        data["output"]["frames"] = "many"
        data["lighting"]["ambient"] = "bright"
        data["classes"] = "box"
        data["annotators"] = "rgb"
        data["props"] = "none"
        data["assets"][0]["count"] = "lots"
        data["camera"]["resolution"] = "hd"
        path = self._tmp / "wrong.toml"
        path.write_text(tomli_w.dumps(data))
        window = await self._open(path)
        messages = visible_messages(window)
        for anchor in ("output.frames", "lighting.ambient", "classes", "annotators", "props", "assets.0.count",
                       "camera.resolution"):
            self.assertIn(anchor, messages)
        self.assertFalse(widget(window, "sdg-run:generate").enabled)
        widget(window, "sdg:output.frames").model.set_value(2)  # editing still works
        await updates()
        self.assertNotIn("output.frames", visible_messages(window))

    async def test_save_and_load_through_the_file_dialog(self):
        picker = standin("omni.kit.window.filepicker")
        window = await self._open(small_config_file(self._tmp))
        widget(window, "sdg:seed").model.set_value(42)
        widget(window, "sdg:lighting.ambient#max").model.set_value(333.0)
        click(window, "sdg-file:save-as")
        picker.choose(picker.dialogs()[-1], "saved.yaml", str(self._tmp))
        await updates()
        saved = load_config(self._tmp / "saved.yaml")
        self.assertEqual((saved.seed, saved.lighting.ambient.max), (42, 333.0))
        self.assertEqual(window.view_model.source, self._tmp / "saved.yaml")
        self.assertEqual(picker.dialogs(), [])  # the dialog hid itself

        grasping = extension_path() / "data" / "scenes" / "grasping.toml"
        await self._load_through_dialog(grasping)
        self.assertEqual(widget(window, "sdg:camera.mount").model.as_string, "/World/Props/gripper/wrist")
        self.assertEqual(widget(window, "sdg:seed").model.as_int, 0)

        broken = self._tmp / "broken.toml"
        broken.write_text("seed = [")
        await self._load_through_dialog(broken)  # reported beside the file line; the grasping draft stays
        self.assertIn("Cannot load", widget(window, "sdg-file:status").text)
        self.assertEqual(window.view_model.get(("name",)), "grasping")

    async def test_add_assets_from_the_stage_selection_and_from_a_file(self):
        picker = standin("omni.kit.window.filepicker")
        from sdgstudio.core.stage import add_semantic_class

        window = await self._open(small_config_file(self._tmp))
        stage = omni.usd.get_context().get_stage()
        cube = UsdGeom.Cube.Define(stage, "/World/crate")
        cube.CreateSizeAttr(0.2)
        add_semantic_class(cube.GetPrim(), "crate")
        mug = stage.DefinePrim("/World/my_mug", "Xform")
        mug.GetReferences().AddReference(str(extension_path() / "data" / "assets" / "mug.usda"))
        omni.usd.get_context().get_selection().set_selected_prim_paths(["/World/crate", "/World/my_mug"], False)
        before = len(window.view_model.get(("assets",)))
        click(window, "sdg-assets:add-selection")
        await updates(3)
        assets = window.view_model.get(("assets",))
        self.assertEqual(len(assets), before + 2)
        crate, added_mug = assets[-2:]
        self.assertEqual((crate["source"], crate["class"], crate["size"]), ("cube", "crate", 0.2))
        self.assertIn("crate", window.view_model.get(("classes",)))  # appended to the explicit class list
        self.assertTrue(added_mug["source"].endswith("mug.usda"))
        self.assertIsNone(added_mug["class"])  # flagged: no semantic class on the prim
        self.assertIn("no semantic class", widget(window, "sdg-assets:note").text)
        self.assertIn(f"assets.{before + 1}.class", visible_messages(window))
        self.assertFalse(widget(window, "sdg-run:generate").enabled)
        widget(window, f"sdg:assets.{before + 1}.class").model.set_value("mug")
        await updates()
        self.assertEqual(visible_messages(window), {})

        click(window, "sdg-assets:add-file")
        picker.choose(picker.dialogs()[-1], "bowl.usda", str(extension_path() / "data" / "assets"))
        await updates(3)
        self.assertTrue(window.view_model.get(("assets",))[-1]["source"].endswith("bowl.usda"))
        click(window, f"sdg-remove:assets.{before + 2}")
        await updates(3)
        self.assertEqual(len(window.view_model.get(("assets",))), before + 2)

    async def test_config_and_window_state_persist_to_the_next_window(self):
        window = await self._open(small_config_file(self._tmp))
        widget(window, "sdg:seed").model.set_value(7)
        widget(window, "sdg:lighting.distant.enabled").model.set_value(False)  # the sun off
        widget(window, "sdg-section:Lighting").collapsed = True
        widget(window, "sdg-preview:count").model.set_value(3)
        await close_window(window)
        self._window = window = await open_window()
        self.assertEqual(widget(window, "sdg:seed").model.as_int, 7)
        self.assertFalse(window.view_model.config.lighting.distant.enabled)
        self.assertTrue(widget(window, "sdg-section:Lighting").collapsed)
        self.assertEqual(widget(window, "sdg-preview:count").model.as_int, 3)
        self.assertEqual(window.view_model.source, self._tmp / "small.toml")
