"""The report page in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

Never skipped: without Chromium the test fails and says how to install it (CI installs it in .ci/run).
"""

from __future__ import annotations

import json

import pytest
from headless_chromium import INSTALL_HINT, HeadlessChromium, chromium_binary
from sdgstudio.core.config import load_config
from sdgstudio.core.generate import generate
from sdgstudio.core.report import build_report
from sdgstudio.core.report.page import SECTIONS

#: Per section: JavaScript returning what a reader would see there (text length, images shown at all).
SECTION_STATE = """
Object.fromEntries([...document.querySelectorAll('main > section')].map(s => [s.id, {
  heading: s.querySelector('h2') ? s.querySelector('h2').innerText : '',
  text: s.innerText.length - (s.querySelector('h2') ? s.querySelector('h2').innerText.length : 0),
  height: s.getBoundingClientRect().height,
  images: s.querySelectorAll('img').length,
  broken: [...s.querySelectorAll('img')].filter(i => !(i.complete && i.naturalWidth > 0)).length,
  tiles: s.querySelectorAll('figure img').length,
}]))
"""

#: Images each section must show (plots; the sample grid's tiles).
MIN_IMAGES = {"classes": 1, "objects-per-frame": 1, "boxes": 1, "visibility": 1, "depth": 1, "coverage": 20,
              "samples": 6}


@pytest.fixture(scope="module")
def report_page(tmp_path_factory, tabletop_path):
    config = load_config(tabletop_path)
    config.camera.resolution = (320, 240)
    out = tmp_path_factory.mktemp("browser") / "tabletop"
    generate(config, out, range(6))
    return build_report(out)


def test_report_page_renders_without_console_errors_and_every_section_has_content(report_page, tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.fail(f"the report test needs a browser: {INSTALL_HINT}")
    with HeadlessChromium(binary) as browser:
        browser.open(report_page)
        light = browser.screenshot()
        sections = browser.evaluate(SECTION_STATE)
        light_plot = browser.evaluate("document.querySelector('#classes img').currentSrc")
        browser.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "dark"}])
        dark_background = browser.evaluate("getComputedStyle(document.body).backgroundColor")
        dark_plot = browser.evaluate("document.querySelector('#classes img').currentSrc")
        dark = browser.screenshot()
        problems = browser.problems()
    (tmp_path / "report_light.png").write_bytes(light)
    (tmp_path / "report_dark.png").write_bytes(dark)

    assert problems == [], "\n".join(problems)
    assert list(sections) == list(SECTIONS), "every section, in page order"
    for sid, state in sections.items():
        assert state["heading"] == SECTIONS[sid]
        assert state["text"] > 20 and state["height"] > 60, f"section {sid} is empty: {state}"
        assert state["broken"] == 0, f"section {sid} has images that did not load: {state}"
        assert state["images"] >= MIN_IMAGES.get(sid, 0), f"section {sid} lacks its images: {state}"
    report = json.loads(report_page.with_name("report.json").read_text())
    assert sections["samples"]["tiles"] == len(report["samples"]) == 6
    assert sections["coverage"]["images"] == len(report["coverage"]["parameters"])

    from io import BytesIO

    from PIL import Image, ImageStat

    shots = {name: Image.open(BytesIO(png)).convert("L") for name, png in (("light", light), ("dark", dark))}
    assert shots["light"].width >= 1000 and shots["light"].height > 2000, "a full-page screenshot"
    assert ImageStat.Stat(shots["light"]).mean[0] > 150 > ImageStat.Stat(shots["dark"]).mean[0]
    assert dark_background == "rgb(13, 17, 23)" and dark_plot != light_plot, "dark mode swaps colours and plots"
