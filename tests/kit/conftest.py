"""pytest must not collect the Kit-side files (they import omni.*, which exists only inside Kit); and when the Kit
tier's runner tests are skipped for want of Python 3.12, the end of the run says so in red."""

from __future__ import annotations

import sys

collect_ignore_glob = ["fixtures/*", "exts/*", "harness.py"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    run = sys.modules.get("kit_tier_run")  # loaded by test_runner.py
    if run is not None and run.find_python312() is None:
        terminalreporter.write_line("!" * 78, red=True, bold=True)
        terminalreporter.write_line("!!  Kit kernel tier runner tests SKIPPED: Python 3.12 not found (set KIT_PYTHON)",
                                    red=True, bold=True)
        terminalreporter.write_line("!" * 78, red=True, bold=True)
