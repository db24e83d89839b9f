"""The audit export of every submitted revision × answer (``/export``): one XLSX sheet and the
same table as CSV. ``RevisionRow`` is the table's row, read by ``storage.compile_inputs``."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from reporting_forms.calendar import DEFAULT_TZ
from reporting_forms.exports.cells import csv_writer, text_cell
from reporting_forms.exports.common import review_label
from reporting_forms.exports.csv import DELIMITER, ENCODING
from reporting_forms.labels import answer_text, field_label
from reporting_forms.texts import normalise_language, plain

SUPERSEDED = "superseded"  # the review state shown for revisions a later one replaced


@dataclass(frozen=True)
class RevisionRow:
    """One answer of one submitted revision (the /export audit table)."""

    report_id: int
    measure: str
    institution: str
    year: int
    revision: int
    author: str | None
    submitted_at: dt.datetime
    field: str
    value: Any
    review_state: str


REVISION_COLUMNS = (
    "report",
    "measure",
    "institution",
    "year",
    "revision",
    "author",
    "submitted",
    "field",
    "value",
    "review",
)


def _review_text(lang: str, state: str) -> str:
    return plain(lang, "coordinator.review_superseded") if state == SUPERSEDED else review_label(lang, state)


def _local(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _cells(row: RevisionRow, lang: str, tz: ZoneInfo) -> list[Any]:
    value = row.value if isinstance(row.value, int | float | str) or row.value is None else str(row.value)
    return [
        row.report_id,
        row.measure,
        row.institution,
        row.year,
        row.revision,
        row.author or "",
        _local(row.submitted_at, tz),
        field_label(lang, row.field),
        answer_text(lang, row.field, value),
        _review_text(lang, row.review_state),
    ]


def revision_header(lang: str) -> list[str]:
    return [plain(lang, f"coordinator.rev_col_{name}") for name in REVISION_COLUMNS]


def revisions_xlsx(rows: Iterable[RevisionRow], *, lang: str = "lv", tz: ZoneInfo = DEFAULT_TZ) -> bytes:
    """Every revision × answer as one sheet (frozen header, filters, local times)."""
    # Imported here, where the file is made, not at start-up: openpyxl is a heavy optional
    # library the idle bot must not hold in memory (issue 12, item 6) — not a hidden cycle break.
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    lang = normalise_language(lang)
    wb = Workbook()
    ws = wb.active
    ws.title = plain(lang, "coordinator.rev_sheet")[:31]
    ws.append(revision_header(lang))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        ws.append(_cells(row, lang, tz))
        for cell in ws[ws.max_row]:
            text_cell(cell)  # a comment "=HYPERLINK(...)" stays text
        ws.cell(ws.max_row, 7).number_format = "DD.MM.YYYY HH:MM"
    for letter, width in zip("ABCDEFGHIJ", (9, 10, 12, 7, 10, 22, 17, 14, 40, 22), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def revisions_csv(rows: Iterable[RevisionRow], *, lang: str = "lv", tz: ZoneInfo = DEFAULT_TZ) -> bytes:
    """The same table as CSV (the exports' CSV conventions: comma, UTF-8 with BOM, ISO times)."""
    lang = normalise_language(lang)
    buffer = io.StringIO()
    writer = csv_writer(buffer, delimiter=DELIMITER, lineterminator="\r\n")  # user text stays text
    writer.writerow(revision_header(lang))
    for row in rows:
        cells = _cells(row, lang, tz)
        cells[6] = cells[6].isoformat(sep=" ", timespec="minutes")
        writer.writerow(["" if c is None else c for c in cells])
    return buffer.getvalue().encode(ENCODING)
