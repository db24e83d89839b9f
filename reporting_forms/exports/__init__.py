"""Files made from a compiled plan: XLSX, DOCX, HTML, CSV and PNG charts.

Each ``export_*`` takes a ``CompiledPlan`` (plus optional completeness and policy table) and
returns bytes, writing them to ``path`` too when given. Labels come from
``templates/<lang>/reports.j2``. Every format loads on first use (module ``__getattr__``): openpyxl,
python-docx and matplotlib (with numpy) are heavy, and the bot must not hold them in memory from
start-up until a document is actually made (issue 12, item 6).

Modules: ``common`` (what every format shares: labels, status colours, plan-layout lines; public,
the chat's summaries use its labels too), one module per format, and ``catalog_json`` (the catalog
itself as JSON-ready data, ``resobot plan export``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "export_csv": "reporting_forms.exports.csv",
    "export_docx": "reporting_forms.exports.docx",
    "export_xlsx": "reporting_forms.exports.xlsx",
    "export_html": "reporting_forms.exports.html",
    "progress_chart": "reporting_forms.exports.charts",
    "completeness_chart": "reporting_forms.exports.charts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["completeness_chart", "export_csv", "export_docx", "export_html", "export_xlsx", "progress_chart"]
