"""Tests of the Kit tier's runner: an extension broken on purpose makes the tier fail, with a message that says why.

Each case copies the fixture extension (tests/kit/fixtures/sdgfixture.good) into a temporary ext folder under its
own name, breaks it, and the real Kit 110.4 kernel runs them all in one runner call (one Kit process each). Needs
Python 3.12 for the kernel; without it these tests are skipped with a loud reason (the runner's own notice).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "sdgfixture.good"

_spec = importlib.util.spec_from_file_location("kit_tier_run", HERE / "run.py")
kit_run = importlib.util.module_from_spec(_spec)
sys.modules["kit_tier_run"] = kit_run
_spec.loader.exec_module(kit_run)

PYTHON312 = kit_run.find_python312()
needs_kit = pytest.mark.skipif(
    PYTHON312 is None,
    reason="!!! KIT KERNEL TIER SKIPPED: Python 3.12 not found (omniverse-kit 110.4 needs it); set KIT_PYTHON !!!")


def make_variant(folder: Path, variant: str) -> Path:
    """Copy the fixture as extension ``sdgfixture.<variant>`` (its python module renamed to match)."""
    dest = folder / f"sdgfixture.{variant}"
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "sdgfixture" / "good").rename(dest / "sdgfixture" / variant)
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml"):
            path.write_text(path.read_text().replace("sdgfixture.good", f"sdgfixture.{variant}"))
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


BREAKS = {
    # name: (how to break it, pattern the failure message must contain)
    "syntax": (lambda d: edit(d / "sdgfixture/syntax/extension.py", "    def _build(self):", "    def _build(self:"),
               r"\[startup\].*SyntaxError"),
    "missingdep": (lambda d: edit(d / "config/extension.toml", '"omni.ui" = {}', '"omni.ui" = {}\n"omni.kit.nonexistent" = {}'),
                   r"\[enable\] sdgfixture\.missingdep failed to enable \(missing dependency: No versions of "
                   r"omni\.kit\.nonexistent"),
    "leak": (lambda d: edit(d / "sdgfixture/leak/extension.py", "        self._sub = None\n",
                            "        _state.setdefault('kept', []).append(self._sub)  # 'for later': a leak\n"),
             r"\[shutdown\] leaked event observer: observe_event\(event_name='update', observer_name='fixture tick'\)"
             r".*created at .*sdgfixture/leak/extension\.py:\d+"),
    "uikeyword": (lambda d: edit(d / "sdgfixture/uikeyword/extension.py", 'ui.Label("Fixture", ',
                                 'ui.Label("Fixture", colour=0xFF00FF00, '),
                  r"omni\.ui\.Label\(\) got keyword 'colour', which is not in the contract"),
    "uiname": (lambda d: edit(d / "sdgfixture/uiname/tests/test_fixture.py", "        await self.wait_n_updates(3)\n",
                              "        await self.wait_n_updates(3)\n        ui.Toolbar()\n"),
               r"omni\.ui has no 'Toolbar' in the contract omni_ui\.toml"),
    "startupraise": (lambda d: edit(d / "sdgfixture/startupraise/extension.py", "    def on_startup(self, ext_id):\n",
                                    "    def on_startup(self, ext_id):\n        raise RuntimeError('fixture: no startup')\n"),
                     r"\[startup\].*RuntimeError: fixture: no startup"),
    "shutdownraise": (lambda d: edit(d / "sdgfixture/shutdownraise/extension.py", "        self._sub = None\n",
                                     "        self._sub = None\n        raise RuntimeError('fixture: no shutdown')\n"),
                      r"\[shutdown\] sdgfixture\.shutdownraise logged errors while shutting down:.*"
                      r"fixture: no shutdown"),
    "assertion": (lambda d: edit(d / "sdgfixture/assertion/tests/test_fixture.py",
                                 'self.assertEqual(_state["clicks"], 1)', 'self.assertEqual(_state["clicks"], 2)'),
                  r"FAILED sdgfixture\.assertion: sdgfixture\.assertion\.tests\.test_fixture\.TestFixture\."
                  r"test_window_built_and_ticking.*AssertionError: 1 != 2"),
    "errorlog": (lambda d: edit(d / "sdgfixture/errorlog/tests/test_fixture.py", "        button.call_clicked_fn()\n",
                                "        button.call_clicked_fn()\n        import carb\n"
                                "        carb.log_error('fixture: something broke')\n"),
                 r"error logged during the test:\n.*fixture: something broke"),
    "blocking": (lambda d: edit(d / "sdgfixture/blocking/tests/test_fixture.py", "        await self.wait_n_updates(3)\n",
                                "        import time\n        time.sleep(600)\n"),
                 r"\[hang\]:? Kit did not finish within \d+ s while running sdgfixture\.blocking\.tests"),
    "awaitforever": (lambda d: edit(d / "sdgfixture/awaitforever/tests/test_fixture.py",
                                    "        await self.wait_n_updates(3)\n",
                                    "        import asyncio\n        await asyncio.Event().wait()\n"),
                     r"timed out after 3 s"),
}


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """One runner call over every broken variant plus an untouched copy."""
    folder = tmp_path_factory.mktemp("exts")
    make_variant(folder, "intact")
    for variant, (breaker, _) in BREAKS.items():
        breaker(make_variant(folder, variant))
    out = tmp_path_factory.mktemp("out") / "results.json"
    proc = subprocess.run([sys.executable, str(HERE / "run.py"), "--ext-folder", str(folder), "--no-contracts",
                           "--timeout", "15", "--test-timeout", "3", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    results = {r["ext"]: r for r in json.loads(out.read_text())} if out.exists() else {}
    return proc, results


@needs_kit
def test_intact_fixture_passes_and_the_tier_reports_failures_overall(broken_run):
    proc, results = broken_run
    assert proc.returncode == 1, proc.stdout[-3000:]
    intact = results["sdgfixture.intact"]
    assert intact["problems"] == [] and [t["outcome"] for t in intact["tests"]] == ["passed", "passed"]
    assert intact["tests"][-1]["id"] == "sdgfixture.intact: enables, starts and shuts down without errors or leaks"
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed, \d+ failed", last), last
    passed, failed = map(int, re.findall(r"\d+", last))
    assert passed >= 1 and failed >= len(BREAKS)


@needs_kit
@pytest.mark.parametrize("variant", list(BREAKS))
def test_broken_extension_fails_with_a_message_that_says_why(broken_run, variant):
    proc, results = broken_run
    result = results[f"sdgfixture.{variant}"]
    failures = [p for p in result["problems"]] + [t for t in result["tests"] if t["outcome"] in ("failed", "error")]
    assert failures, f"{variant}: the tier did not fail\n{proc.stdout[-3000:]}"
    pattern = BREAKS[variant][1]
    assert re.search(pattern, proc.stdout, re.S), f"{variant}: no message matching {pattern!r} in\n{proc.stdout[-4000:]}"


@needs_kit
def test_a_clean_run_exits_zero(tmp_path):
    make_variant(tmp_path, "clean")
    proc = subprocess.run([sys.executable, str(HERE / "run.py"), "--ext-folder", str(tmp_path), "--no-contracts"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "2 passed, 0 failed"  # its test + clean enable/shutdown


# ---------------------------------------------------------------------------------------------- no Kit needed


def test_missing_python312_skips_loudly_or_fails_when_required(monkeypatch, capsys):
    monkeypatch.setattr(kit_run, "find_python312", lambda: None)
    monkeypatch.delenv("SDG_KIT_REQUIRED", raising=False)
    assert kit_run.main([]) == 0
    out = capsys.readouterr()
    assert "KIT KERNEL TIER SKIPPED" in out.out and "KIT KERNEL TIER SKIPPED" in out.err
    monkeypatch.setenv("SDG_KIT_REQUIRED", "1")
    assert kit_run.main([]) == kit_run.EXIT_SKIPPED_REQUIRED


def test_venv_key_follows_every_requirement(tmp_path):
    python = sys.executable
    base = kit_run.venv_requirements()
    assert "omniverse-kit==110.4.0.386251" in base
    assert any(r.startswith("pydantic") for r in base) and not any(r == "usd-core" for r in base)
    key = kit_run.venv_key(python, base)
    assert key == kit_run.venv_key(python, list(reversed(base)))
    assert key != kit_run.venv_key(python, [*base, "pillow>=99"])
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["numpy>=2", "usd-core==25.5"]\n')
    assert kit_run.venv_requirements(pyproject) == ["omniverse-kit==110.4.0.386251", "warp-lang", "numpy>=2",
                                                    "usd-core==25.5"]


def test_jobs_follow_each_test_entry_of_every_extension(tmp_path):
    one = make_variant(tmp_path, "one")
    edit(one / "config/extension.toml", "[[test]]\ndependencies = []",
         '[[test]]\nargs = ["--/a=1"]\ndependencies = ["omni.usd"]\ntimeout = 42\n'
         '[[test]]\nname = "second"\npythonTests.include = ["*test_window*"]')
    make_variant(tmp_path, "two")
    jobs = kit_run.discover_jobs([tmp_path])
    assert [j.name for j in jobs] == ["sdgfixture.one", "sdgfixture.one[second]", "sdgfixture.two"]
    assert jobs[0].args == ["--/a=1"] and jobs[0].dependencies == ["omni.usd"] and jobs[0].timeout == 42
    assert jobs[1].include == ["*test_window*"]
    assert jobs[2].python_modules == [{"name": "sdgfixture.two"}]
    assert kit_run.discover_jobs([tmp_path], only=["sdgfixture.two"])[0].ext == "sdgfixture.two"
