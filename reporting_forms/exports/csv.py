"""CSV: one row per (measure, indicator, institution, year), for further processing.

Format (documented choice): comma separator, RFC 4180 quoting, UTF-8 with a byte-order mark so
Excel detects the encoding, CRLF line ends. Column headers and status/review names are in the
requested language; numbers are plain (decimal point, no grouping) and dates ISO 8601, so the file
reads the same everywhere. In a Latvian-locale Excel (list separator ";") open it through
Data → From Text/CSV and choose the comma.
Rows: every institution that reported on the indicator, plus responsible/co-responsible
institutions that report in chat but have not (empty value, row status kept) — per compiled year.
"""

from __future__ import annotations

import io
from pathlib import Path

from reporting_forms.compilation import CompiledPlan, InstitutionShare, ProgressNote, report_progress
from reporting_forms.exports.cells import csv_writer
from reporting_forms.exports.common import (
    label,
    language,
    local_date,
    progress_text,
    review_label,
    row_institutions,
    status_label,
    write_bytes,
)
from reporting_forms.labels import kind_label
from reporting_forms.texts import unit_name

DELIMITER = ","
ENCODING = "utf-8-sig"  # UTF-8 with BOM


def _plain(value: float | None) -> str:
    if value is None:
        return ""
    value = round(value, 4)
    return str(int(value)) if float(value).is_integer() else repr(value)


def _header(lang: str) -> list[str]:
    names = (
        "plan", "direction", "task", "measure", "indicator_id", "indicator", "kind", "target", "unit",
        "institution", "year", "value", "reported_status", "text", "revision", "submitted", "review", "risk",
        "share", "row_total", "row_percent", "row_status", "progress",
    )  # fmt: skip
    return [label(lang, f"csv_{name}") for name in names]


def export_csv(compiled: CompiledPlan, *, lang: str = "lv", path: Path | str | None = None) -> bytes:
    """The compiled plan as CSV rows (bytes, UTF-8 with BOM; also written to ``path`` when given)."""
    lang = language(lang)
    buffer = io.StringIO()
    writer = csv_writer(buffer, delimiter=DELIMITER, lineterminator="\r\n")  # user text stays text
    writer.writerow(_header(lang))
    yes, no = label(lang, "yes"), label(lang, "no")
    for direction, task, measure, row in compiled.rows():
        shares: dict[str, InstitutionShare] = {s.institution: s for s in row.institutions}
        for inst in row_institutions(compiled, measure, row):
            share = shares.get(inst)
            comments = measure.comments.get(inst, {})
            for year in compiled.years:
                report = share.reports.get(year) if share is not None else None
                submitted = local_date(report.submitted_at, compiled.timezone) if report else None
                comment = comments.get(year)
                note = (
                    report_progress(report, comment)
                    if report is not None
                    else ProgressNote(inst, comment=comment, comment_year=year)
                )
                writer.writerow(
                    [
                        compiled.plan.id,
                        direction.direction.id,
                        task.task.id,
                        measure.measure.id,
                        row.id,
                        row.indicator.text,
                        kind_label(lang, row.kind),
                        _plain(row.target),
                        unit_name(row.indicator.unit, lang),
                        inst,
                        year,
                        _plain(report.value) if report else "",
                        status_label(lang, report.status) if report else "",
                        (report.text or "") if report else "",
                        report.revision if report else "",
                        submitted.isoformat() if submitted else "",
                        review_label(lang, report.review_state) if report else "",
                        (yes if report.risk_flag else no) if report else "",
                        _plain(share.share * 100) if share and share.share is not None else "",
                        _plain(row.cumulative),
                        _plain(row.percent),
                        status_label(lang, row.status),
                        progress_text(lang, (note,)),
                    ]
                )
    return write_bytes(buffer.getvalue().encode(ENCODING), path)


__all__ = ["DELIMITER", "ENCODING", "export_csv"]
