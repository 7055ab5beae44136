"""Every ``omni.*`` / ``carb`` name and keyword our extensions use is in an API contract (tests/kit/contracts).

A static scan of ``exts/*/sdgstudio/**.py`` (imports, dotted names, call keywords, chained calls typed by the
contracts' return annotations, ``self`` in classes derived from contract classes), so a call that the Kit tier
never executes still cannot slip past the contract. The scanner lives in tests/kit/exts/contract_standin.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "kit" / "exts" / "contract_standin"))

from contract_standin.contract import all_contracts, validate_contract  # noqa: E402
from contract_standin.scan import Scanner, scan_paths  # noqa: E402

SOURCES = sorted(REPO.glob("exts/*/sdgstudio/**/*.py"))


def test_the_scan_sees_our_kit_code():
    assert any(p.name == "extension.py" for p in SOURCES)
    _, uses = scan_paths(SOURCES, REPO)
    assert {"omni.ext.IExt", "omni.kit.app.get_app", "omni.kit.test.AsyncTestCase"} <= uses


def test_every_omni_and_carb_use_is_in_a_contract():
    findings, _ = scan_paths(SOURCES, REPO)
    assert not findings, "not in tests/kit/contracts (add the entry with the page or source it was checked " \
                         "against, or fix the call):\n" + "\n".join(map(str, findings))


@pytest.mark.parametrize("contract", all_contracts(), ids=lambda c: c.file)
def test_contract_entries_are_well_formed_and_sourced(contract):
    assert validate_contract(contract) == []


def scan(source: str) -> list[str]:
    scanner = Scanner()
    scanner.scan_source(source, "snippet.py")
    return [str(f) for f in scanner.findings]


CAUGHT = {
    "ui keyword": ("import omni.ui as ui\nui.Window('t', resizable=False)\n", "keyword 'resizable'"),
    "replicator keyword": ("import omni.replicator.core as rep\nasync def f():\n"
                           "    await rep.orchestrator.step_async(num_frames=3)\n", "keyword 'num_frames'"),
    "module without contract": ("import omni.isaac.core\n", "omni.isaac.core: no API contract covers"),
    "chained call": ("import omni.usd\nomni.usd.get_context().get_stage_idx()\n", "omni.usd.UsdContext.get_stage_idx"),
    "typed variable": ("import omni.ui as ui\nwin = ui.Window('t')\nwin.frame.set_build(print)\n",
                       "omni.ui.Frame.set_build is not in"),
    "from-import": ("from omni.ui import Toolbar\n", "omni.ui.Toolbar is not in"),
    "mixin method": ("import omni.ext\nfrom omni.kit.menu.utils import MenuHelperExtensionFull\n"
                     "class E(omni.ext.IExt, MenuHelperExtensionFull):\n    def on_startup(self, ext_id):\n"
                     "        self.menu_startp(None, 'w', 'd', 'Tools')\n", "self.menu_startp"),
    "self attribute": ("import omni.ui as ui\nclass W:\n    def __init__(self):\n        self._w = ui.Window('t')\n"
                       "    def go(self):\n        self._w.deferred_dock_in('Property', policy=1)\n", "keyword 'policy'"),
    "positional-only": ("import carb.settings\ncarb.settings.get_settings().set_default_bool(path='/a', value=True)\n",
                        "keyword 'path'"),
    "too many positionals": ("import omni.ui as ui\nui.Label('a', 'b')\n", "2 positional arguments"),
    "enum member": ("import omni.ui as ui\nx = ui.Alignment.LEFT_MIDDLE\n", "omni.ui.Alignment.LEFT_MIDDLE"),
    "writer subclass": ("import omni.replicator.core as rep\nclass W(rep.Writer):\n    def write(self, data):\n"
                        "        self.backend.schedule_it(data)\n", "omni.replicator.core.Backend.schedule_it"),
    "test case": ("import omni.kit.test\nclass T(omni.kit.test.AsyncTestCase):\n    async def test_a(self):\n"
                  "        await self.wait_n_frames(2)\n", "self.wait_n_frames"),
}


@pytest.mark.parametrize("case", list(CAUGHT))
def test_the_scan_catches(case):
    source, expected = CAUGHT[case]
    findings = scan(source)
    assert any(expected in f for f in findings), findings


def test_the_scan_accepts_the_documented_patterns():
    source = '''
import asyncio
import carb
import carb.eventdispatcher
import carb.settings
import omni.ext
import omni.kit.app
import omni.replicator.core as rep
import omni.ui as ui
import omni.usd
from omni.kit.menu.utils import MenuHelperExtensionFull, MenuHelperWindow


class Window(MenuHelperWindow):
    def __init__(self, title, ext_id):
        super().__init__(title, width=400, height=600, visible=True)
        self.deferred_dock_in("Property", ui.DockPolicy.DO_NOTHING)
        self._seed = ui.SimpleIntModel(0)
        self._combo = None
        self.frame.set_build_fn(self._build)

    def _build(self):
        with ui.ScrollingFrame():
            with ui.VStack(spacing=4):
                with ui.CollapsableFrame("Output", height=0, collapsed=False):
                    with ui.HStack():
                        ui.Label("Seed", width=80, alignment=ui.Alignment.LEFT_CENTER, tooltip="random seed")
                        ui.IntField(self._seed)
                self._combo = ui.ComboBox(0, "raster", "replicator")
                self._combo.model.add_item_changed_fn(lambda model, item: None)
                index = self._combo.model.get_item_value_model().as_int
                ui.Button("Generate", clicked_fn=self._go, height=30)
                ui.ProgressBar().model.set_value(index / 10)
                provider = ui.ByteImageProvider()
                provider.set_bytes_data([0, 0, 0, 255], [1, 1])
                ui.ImageWithProvider(provider, width=160, height=120)

    def _go(self):
        stage = omni.usd.get_context().get_stage()
        carb.settings.get_settings().set_default_string("/persistent/exts/sdgstudio.ui/out", "")
        return stage

    def destroy(self):
        super().destroy()


class Ext(omni.ext.IExt, MenuHelperExtensionFull):
    def on_startup(self, ext_id):
        self.menu_startup(lambda: Window("SDG Studio", ext_id), "SDG Studio", "SDG Studio", "Tools/Replicator")
        self._sub = carb.eventdispatcher.get_eventdispatcher().observe_event(
            event_name=omni.kit.app.GLOBAL_EVENT_UPDATE, on_event=lambda e: None, observer_name="sdg")

    def on_shutdown(self):
        self.menu_shutdown()
        self._sub.reset()


class Writer(rep.Writer):
    def __init__(self, output_dir):
        self.annotators = [rep.AnnotatorRegistry.get_annotator("rgb")]
        self.version = "0.1"

    def write(self, data):
        self.num_written += 1


async def render(camera):
    rep.WriterRegistry.register(Writer)
    rp = rep.create.render_product(camera, (640, 480), name="cam", force_new=True)
    ann = rep.AnnotatorRegistry.get_annotator("distance_to_camera").attach(rp)
    rep.orchestrator.set_capture_on_play(False)
    await rep.orchestrator.step_async(rt_subframes=4, delta_time=0.0, pause_timeline=False)
    data = ann.get_data(do_array_copy=True)
    await rep.orchestrator.wait_until_complete_async()
    ann.detach()
    rp.hydra_texture.set_updates_enabled(False)
    rp.destroy()
    rep.WriterRegistry.unregister("Writer")
    await omni.kit.app.get_app().next_update_async()
    return data
'''
    assert scan(source) == []
