"""Dataset report: one self-contained HTML page plus ``report.json`` with the same numbers.

``build_report(dataset_dir)`` is the public entry point (``sdgstudio report`` and the Kit window's "Open report"
call it). Modules: ``load`` reads the dataset folder, ``stats`` computes the numbers purely, ``plots`` draws them
with matplotlib, ``page`` and ``sections`` assemble the HTML, ``build`` writes ``<dataset>/report/``.
"""

from .build import build_report, open_report, report_data
from .load import ReportError, read_dataset

__all__ = ["ReportError", "build_report", "open_report", "read_dataset", "report_data"]
