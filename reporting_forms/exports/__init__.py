"""Files made from a compiled plan: XLSX, DOCX, HTML, CSV and PNG charts.

Each ``export_*`` takes a ``CompiledPlan`` (plus optional completeness and policy table) and
returns bytes, writing them to ``path`` too when given. Labels come from
``templates/<lang>/reports.j2``. HTML and charts import matplotlib, so they load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from reporting_forms.exports.csv import export_csv
from reporting_forms.exports.docx import export_docx
from reporting_forms.exports.xlsx import export_xlsx

_LAZY = {
    "export_html": "reporting_forms.exports.html",
    "progress_chart": "reporting_forms.exports.charts",
    "completeness_chart": "reporting_forms.exports.charts",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["completeness_chart", "export_csv", "export_docx", "export_html", "export_xlsx", "progress_chart"]
