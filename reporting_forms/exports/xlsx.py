"""XLSX: a summary sheet, one sheet per action direction in the plan's column layout, policy results.

Cells hold real numbers (number formats do the Latvian display in Excel); "% no mērķa" is a
fraction formatted as a percentage; the last report date is a date cell.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from reporting_forms.catalog import MetricKind
from reporting_forms.compilation import CompiledPlan, Completeness, DirectionBlock, PolicyTable, Status
from reporting_forms.exports.cells import text_workbook, write_cell
from reporting_forms.exports.common import (
    PLAN_COLUMNS,
    STATUS_FILLS,
    STATUS_FONTS,
    STATUS_ORDER,
    Line,
    completeness_header,
    completeness_lines,
    direction_heading,
    history_note,
    label,
    label_with,
    language,
    local_date,
    met_label,
    plan_header,
    policy_header,
    review_label,
    sheet_title,
    subtitle,
    summary_blocks,
    summary_header,
    task_heading,
    task_lines,
    warning_text,
    write_bytes,
)

INTEGER_FORMAT = "#,##0"
DECIMAL_FORMAT = "#,##0.0#"
PERCENT_FORMAT = "0.0 %"  # "65.6 %": the one percent style of every output (number, space, %)
DATE_FORMAT = "DD.MM.YYYY"

_THIN = Side(style="thin", color="A6A6A6")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_WRAP = Alignment(wrap_text=True, vertical="top")
_WRAP_CENTER = Alignment(wrap_text=True, vertical="center", horizontal="center")
_INDENT = Alignment(wrap_text=True, vertical="top", indent=1)
_BOLD = Font(bold=True)
_ITALIC = Font(italic=True, color="404040")
_TITLE = Font(bold=True, size=14)
_HEADING = Font(bold=True, size=12)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_TASK_FILL = PatternFill("solid", fgColor="F2F2F2")
_STATUS_FILLS = {s: PatternFill("solid", fgColor=c) for s, c in STATUS_FILLS.items()}
_STATUS_FONTS = {s: Font(color=c) for s, c in STATUS_FONTS.items()}
_MET_FILLS = {True: _STATUS_FILLS[Status.DONE], False: _STATUS_FILLS[Status.RISK]}

# Column widths of a direction sheet: the plan's seven columns, then the progress columns.
_PLAN_WIDTHS = (7, 40, 32, 40, 13, 16, 16)
_PROGRESS_WIDTHS = (11, 11, 11, 14, 13, 12, 50)  # a year, …, Kopā, %, Statuss, Pēdējā atskaite, Pārskatīšana,
# Informācija par izpildi; then the two columns that say which row and institution a line is
_KEY_WIDTHS = (12, 12)


def export_xlsx(
    compiled: CompiledPlan,
    *,
    completeness: Completeness | None = None,
    policy: PolicyTable | None = None,
    lang: str = "lv",
    path: Path | str | None = None,
) -> bytes:
    """The compiled plan as an Excel workbook (bytes; also written to ``path`` when given)."""
    lang = language(lang)
    wb = Workbook()
    summary = wb.active
    summary.title = label(lang, "sheet_summary")
    _summary_sheet(summary, compiled, completeness or compiled.completeness, lang)
    taken = {summary.title.casefold()}
    for block in compiled.directions:
        _direction_sheet(wb.create_sheet(sheet_title(lang, block, taken)), compiled, block, lang)
    if policy is not None and policy.rows:
        _policy_sheet(wb.create_sheet(label(lang, "sheet_policy")[:31]), policy, lang)
    text_workbook(wb)  # user text stays text (no formula injection)
    buffer = io.BytesIO()
    wb.save(buffer)
    return write_bytes(buffer.getvalue(), path)


# ---------------------------------------------------------------- helpers


def _header(ws: Worksheet, row: int, values: Sequence[str]) -> None:
    for col, value in enumerate(values, start=1):
        cell = write_cell(ws, row, col, value)
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
        cell.alignment = _WRAP_CENTER
        cell.border = _BORDER


def _merged_row(
    ws: Worksheet, row: int, value: str, width: int, font: Font, fill: PatternFill | None
) -> None:
    cell = write_cell(ws, row, 1, value)
    cell.font = font
    cell.alignment = _WRAP
    if fill is not None:
        for col in range(1, width + 1):
            ws.cell(row=row, column=col).fill = fill
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
    # merged cells do not grow with wrapped text: size the row by the text length
    ws.row_dimensions[row].height = 15 * max(1, min(6, len(value) // 160 + 1))


def _widths(ws: Worksheet, widths: Sequence[float]) -> None:
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width


def _set(ws: Worksheet, row: int, col: int, value: Any, number_format: str | None = None) -> Any:
    cell = write_cell(ws, row, col, value)
    cell.alignment = _WRAP
    cell.border = _BORDER
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _status_cell(cell: Any, status: str | None) -> None:
    if status in _STATUS_FILLS:
        cell.fill = _STATUS_FILLS[status]
        cell.font = _STATUS_FONTS[status]


def _landscape(ws: Worksheet) -> None:
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


# ---------------------------------------------------------------- summary sheet


def _summary_sheet(ws: Worksheet, compiled: CompiledPlan, completeness: Completeness, lang: str) -> None:
    ws["A1"] = compiled.plan.title
    ws["A1"].font = _TITLE
    ws["A2"] = subtitle(lang, compiled)
    row = 4
    ws.cell(row=row, column=1, value=label(lang, "summary_title")).font = _HEADING
    row += 1
    header = summary_header(lang)
    _header(ws, row, header)
    ws.freeze_panes = ws.cell(row=row + 1, column=1).coordinate  # title and column header stay
    for i, status in enumerate(STATUS_ORDER, start=3):
        _status_cell(ws.cell(row=row, column=i), status)
        ws.cell(row=row, column=i).font = Font(bold=True, color=STATUS_FONTS[status])
    for level, title, summary in summary_blocks(compiled, lang):
        row += 1
        cell = _set(ws, row, 1, title)
        cell.font = _BOLD if level < 2 else Font()
        cell.alignment = Alignment(wrap_text=True, vertical="top", indent=level)
        _set(ws, row, 2, summary.rows, INTEGER_FORMAT)
        for i, status in enumerate(STATUS_ORDER, start=3):
            _set(ws, row, i, summary.counts[status], INTEGER_FORMAT)
        mean = summary.mean_percent
        _set(ws, row, len(header), None if mean is None else mean / 100, PERCENT_FORMAT)

    row += 2
    ws.cell(row=row, column=1, value=label(lang, "completeness_title")).font = _HEADING
    row += 1
    ws.cell(row=row, column=1, value=label_with(lang, "completeness_note", grace=completeness.grace_days))
    row += 1
    _header(ws, row, completeness_header(lang))
    for line in completeness_lines(completeness, lang):
        row += 1
        c = line.row
        values: list[tuple[Any, str | None]] = [
            (line.institution, None),
            (line.year, None),
            (c.expected, INTEGER_FORMAT),
            (c.actual, INTEGER_FORMAT),
            (c.on_time, INTEGER_FORMAT),
            (None if c.completeness is None else c.completeness / 100, PERCENT_FORMAT),
            (None if c.timeliness is None else c.timeliness / 100, PERCENT_FORMAT),
            (", ".join(c.missing), None),
        ]
        for col, (value, fmt) in enumerate(values, start=1):
            cell = _set(ws, row, col, value, fmt)
            if line.total:
                cell.font = _BOLD

    row += 2
    ws.cell(row=row, column=1, value=label(lang, "warnings_title")).font = _HEADING
    if not compiled.warnings:
        ws.cell(row=row + 1, column=1, value=label(lang, "no_warnings"))
    for item in compiled.warnings:
        row += 1
        ws.cell(row=row, column=1, value=warning_text(lang, item))
    _widths(ws, (70, 12, 12, 12, 12, 14, 14, 40))


# ---------------------------------------------------------------- direction sheets


def _number_format(kind: MetricKind) -> str:
    return INTEGER_FORMAT if kind.is_integer else DECIMAL_FORMAT


def direction_header(lang: str, plan_years: Sequence[int]) -> list[str]:
    """A direction sheet's header: the plan's and the progress columns, then which indicator row
    and institution each line is (the import, reporting_forms/imports.py, reads the sheet back)."""
    return [*plan_header(lang, plan_years), label(lang, "col_row_id"), label(lang, "col_row_institution")]


def _direction_sheet(ws: Worksheet, compiled: CompiledPlan, block: DirectionBlock, lang: str) -> None:
    years = compiled.plan_years
    header = direction_header(lang, years)
    width = len(header)
    _merged_row(ws, 1, direction_heading(lang, block), width, _HEADING, None)
    _header(ws, 2, header)
    ws.freeze_panes = "A3"
    _widths(ws, _PLAN_WIDTHS + (_PROGRESS_WIDTHS[0],) * (len(years) - 1) + _PROGRESS_WIDTHS + _KEY_WIDTHS)
    _landscape(ws)
    ws.print_title_rows = "2:2"
    row = 2
    current = compiled.years[-1] if compiled.years else None
    for task in block.tasks:
        if not block.is_section:
            row += 1
            _merged_row(ws, row, task_heading(lang, task), width, _BOLD, _TASK_FILL)
        for line in task_lines(task, compiled):
            row += 1
            no_data = compiled.no_data_years(line.measure.measure)
            _line(ws, row, line, years, compiled.timezone, lang, current, no_data)


def _line(
    ws: Worksheet,
    row: int,
    line: Line,
    years: Sequence[int],
    timezone: str,
    lang: str,
    current_year: int | None = None,
    no_data: frozenset[int] = frozenset(),
) -> None:
    for col, value in enumerate(line.plan_cells(lang), start=1):
        cell = _set(ws, row, col, value or None)
        if line.is_institution:
            cell.font = _ITALIC
            if col == 4:
                cell.alignment = _INDENT
    col = PLAN_COLUMNS
    fmt = _number_format(line.row.kind)
    for year in years:
        col += 1
        value: Any = line.value(year) if line.numeric else None
        if value is None:  # text, a milestone, or "nav datu" on an indicator's line
            value = line.year_text_cell(lang, year, no_data) or None
        _set(ws, row, col, value, fmt if line.numeric else None)
    _set(ws, row, col + 1, line.total if line.numeric else None, fmt)
    percent = line.percent
    _set(ws, row, col + 2, None if percent is None else percent / 100, PERCENT_FORMAT)
    status_cell = _set(ws, row, col + 3, line.status_text(lang) or None)
    _status_cell(status_cell, line.status if line.share is None else line.share.status)
    _set(ws, row, col + 4, local_date(line.last_submitted, timezone), DATE_FORMAT)
    _set(ws, row, col + 5, review_label(lang, line.review_state) or None)
    _set(ws, row, col + 6, line.progress_cell(lang, current_year) or None)
    _set(ws, row, col + 7, line.row.id)
    _set(ws, row, col + 8, line.institution or label(lang, "row_total_mark"))
    if line.is_institution:
        for c in range(col + 1, col + 9):
            ws.cell(row=row, column=c).font = _ITALIC


# ---------------------------------------------------------------- policy results


def _policy_sheet(ws: Worksheet, table: PolicyTable, lang: str) -> None:
    header = policy_header(lang, table)
    _merged_row(ws, 1, label(lang, "policy_title"), len(header), _HEADING, None)
    _header(ws, 2, header)
    ws.freeze_panes = "C3"
    _landscape(ws)
    for r, prow in enumerate(table.rows, start=3):
        fmt = INTEGER_FORMAT if prow.kind.is_integer else DECIMAL_FORMAT
        cells: list[tuple[Any, str | None]] = [
            (prow.result_id, None),
            (f"{prow.indicator_id} {prow.text}", None),
        ]
        cells += [(prow.history_value(y), fmt) for y in table.history_years]
        for year in prow.years:
            cells += [
                (year.target.text if year.target else None, None),
                (year.value, fmt),
                (met_label(lang, year.met) or None, None),
            ]
        cells.append((prow.data_source, None))
        for c, (value, number_format) in enumerate(cells, start=1):
            _set(ws, r, c, value, number_format)
        for c, year in enumerate(table.history_years, start=3):
            note = history_note(lang, prow, year)
            if note:  # an entered value over the passport's: say where it comes from
                ws.cell(row=r, column=c).comment = Comment(note, "resobot")
        first_year_col = 3 + len(table.history_years)
        for i, year in enumerate(prow.years):
            if year.met is not None:
                ws.cell(row=r, column=first_year_col + 3 * i + 2).fill = _MET_FILLS[year.met]
    _widths(ws, (8, 60, *(10,) * len(table.history_years), *(16, 10, 12) * len(table.years), 30))


__all__ = ["direction_header", "export_xlsx"]
