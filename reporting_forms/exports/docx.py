"""DOCX: landscape annex for the informative report to the Cabinet of Ministers.

Headings as in the plan ("1. RĪCĪBAS VIRZIENS …", "1.1.uzdevums. …"), one table per task in the
plan's column layout followed by the progress columns; a summary, completeness and the policy
results. Numbers and dates are formatted for the language (Babel).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentObject
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt
from docx.table import Table, _Cell, _Row
from lxml.etree import SubElement

from reporting_forms.compilation import CompiledPlan, Completeness, PolicyTable, Status
from reporting_forms.exports.common import (
    STATUS_FILLS,
    STATUS_ORDER,
    completeness_header,
    completeness_lines,
    direction_heading,
    label,
    label_with,
    language,
    number_text,
    percent_text,
    plan_header,
    policy_header,
    policy_text_cells,
    subtitle,
    summary_blocks,
    summary_header,
    task_heading,
    task_lines,
    warning_text,
    write_bytes,
)

PAGE_WIDTH, PAGE_HEIGHT, MARGIN = Cm(29.7), Cm(21.0), Cm(1.2)
HEADER_FILL = "DDEBF7"
TABLE_FONT_HALF_POINTS = "16"  # 8 pt
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_W_R, _W_RPR, _W_T, _W_BR, _W_B, _W_I = (qn(f"w:{t}") for t in ("r", "rPr", "t", "br", "b", "i"))
_W_SZ, _W_SZ_CS, _W_VAL, _W_W, _W_TYPE = (qn(f"w:{t}") for t in ("sz", "szCs", "val", "w", "type"))
_W_TCPR, _W_TCW = qn("w:tcPr"), qn("w:tcW")
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
# Nr.p.k., Pasākums, Darbības rezultāts, rādītājs, atbildīgā, līdzatbildīgās, termiņš (cm)
_PLAN_WIDTHS = (0.9, 3.8, 2.8, 3.8, 1.4, 1.6, 1.7)
_YEAR_WIDTH = 1.3
# Kopā, %, Statuss, Pēdējā atskaite, Pārskatīšana, Informācija par izpildi
_TAIL_WIDTHS = (1.3, 1.3, 1.6, 1.6, 1.6, 4.0)


def export_docx(
    compiled: CompiledPlan,
    *,
    completeness: Completeness | None = None,
    policy: PolicyTable | None = None,
    lang: str = "lv",
    path: Path | str | None = None,
) -> bytes:
    """The compiled plan as a Word document (bytes; also written to ``path`` when given)."""
    lang = language(lang)
    doc = Document()
    _page_setup(doc)
    doc.add_heading(compiled.plan.title, level=0)
    doc.add_paragraph(subtitle(lang, compiled))

    doc.add_heading(label(lang, "summary_title"), level=1)
    _summary_table(doc, compiled, lang)
    _completeness_table(doc, completeness or compiled.completeness, lang)

    years = compiled.plan_years
    header = plan_header(lang, years)
    widths = (*_PLAN_WIDTHS, *(_YEAR_WIDTH,) * len(years), *_TAIL_WIDTHS)
    current = compiled.years[-1] if compiled.years else None
    for block in compiled.directions:
        doc.add_heading(direction_heading(lang, block), level=1)
        for task in block.tasks:
            if not block.is_section:
                doc.add_heading(task_heading(lang, task), level=2)
            lines = list(task_lines(task))
            table = _table(doc, header, len(lines), widths)
            for row, line in zip(table.rows[1:], lines, strict=True):
                cells = _row_cells(row)
                no_data = compiled.no_data_years(line.measure.measure)
                texts = line.text_cells(lang, years, compiled.timezone, current, no_data)
                for cell, value in zip(cells, texts, strict=True):
                    _write(cell, value, italic=line.share is not None)
                status = line.status if line.share is None else line.share.status
                if status:
                    _shade(cells[len(header) - 4], STATUS_FILLS[status])

    if policy is not None and policy.rows:
        doc.add_heading(label(lang, "policy_title"), level=1)
        pheader = policy_header(lang, policy)
        table = _table(doc, pheader, len(policy.rows), (1.2, 6.0, *(1.3,) * (len(pheader) - 3), 3.0))
        for row, prow in zip(table.rows[1:], policy.rows, strict=True):
            for cell, value in zip(_row_cells(row), policy_text_cells(lang, prow), strict=True):
                _write(cell, value)

    doc.add_heading(label(lang, "warnings_title"), level=1)
    if not compiled.warnings:
        doc.add_paragraph(label(lang, "no_warnings"))
    for item in compiled.warnings:
        doc.add_paragraph(warning_text(lang, item), style="List Bullet")

    buffer = io.BytesIO()
    doc.save(buffer)
    return write_bytes(buffer.getvalue(), path)


# ---------------------------------------------------------------- helpers


def _page_setup(doc: DocumentObject) -> None:
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = PAGE_WIDTH, PAGE_HEIGHT
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, MARGIN)
    normal = doc.styles["Normal"]
    normal.font.name = "Times New Roman"
    normal.font.size = Pt(10)


def _table(doc: DocumentObject, header: Sequence[str], rows: int, widths_cm: Sequence[float]) -> Table:
    table = doc.add_table(rows=rows + 1, cols=len(header))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    widths = [Cm(w) for w in widths_cm]
    for column, width in zip(table.columns, widths, strict=False):
        column.width = width  # the grid, read by LibreOffice
    twips = [str(w.twips) for w in widths]
    for tr in table._tbl.tr_lst:  # each cell's own width, read by Word
        for tc, width in zip(tr.tc_lst, twips, strict=False):
            tc_w = tc.find(_W_TCPR + "/" + _W_TCW)
            if tc_w is not None:
                tc_w.set(_W_W, width)
                tc_w.set(_W_TYPE, "dxa")
    head = table.rows[0]
    _repeat_header(head)
    for cell, value in zip(_row_cells(head), header, strict=True):
        _write(cell, value, bold=True)
        _shade(cell, HEADER_FILL)
    return table


def _row_cells(row: _Row) -> list[_Cell]:
    """The row's cells straight from its XML: ``row.cells`` rebuilds the whole table grid on each
    call (quadratic in the table size); these tables have no merged cells."""
    return [_Cell(tc, row.table) for tc in row._tr.tc_lst]


def _write(cell: _Cell, value: str, *, bold: bool = False, italic: bool = False) -> None:
    """One run in the cell's paragraph, lines split by breaks. Built with lxml directly: going
    through python-docx's run/font objects costs a third of a millisecond per cell."""
    run = SubElement(cell._tc.p_lst[0], _W_R)
    props = SubElement(run, _W_RPR)
    if bold:
        SubElement(props, _W_B)
    if italic:
        SubElement(props, _W_I)
    SubElement(props, _W_SZ).set(_W_VAL, TABLE_FONT_HALF_POINTS)
    SubElement(props, _W_SZ_CS).set(_W_VAL, TABLE_FONT_HALF_POINTS)
    for i, line in enumerate(_XML_ILLEGAL.sub("", value).split("\n")):
        if i:
            SubElement(run, _W_BR)
        text = SubElement(run, _W_T)
        text.text = line
        text.set(_XML_SPACE, "preserve")


def _shade(cell: _Cell, fill: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    cell._tc.get_or_add_tcPr().append(shading)


def _repeat_header(row: _Row) -> None:
    """Repeat the header row on every page the table spans."""
    tr_pr = row._tr.get_or_add_trPr()
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    tr_pr.append(flag)


def _summary_table(doc: DocumentObject, compiled: CompiledPlan, lang: str) -> None:
    header = summary_header(lang)
    blocks = list(summary_blocks(compiled, lang))
    table = _table(doc, header, len(blocks), (13.0, 1.8, *(1.8,) * len(STATUS_ORDER), 2.4))
    head = _row_cells(table.rows[0])
    for i, status in enumerate(STATUS_ORDER, start=2):
        _shade(head[i], STATUS_FILLS[status])
    for row, (level, title, summary) in zip(table.rows[1:], blocks, strict=True):
        cells = _row_cells(row)
        _write(cells[0], title, bold=level < 2)
        _write(cells[1], number_text(lang, summary.rows))
        for i, status in enumerate(STATUS_ORDER, start=2):
            _write(cells[i], number_text(lang, summary.counts[Status(status)]))
        _write(cells[-1], percent_text(lang, summary.mean_percent))


def _completeness_table(doc: DocumentObject, completeness: Completeness, lang: str) -> None:
    doc.add_heading(label(lang, "completeness_title"), level=1)
    doc.add_paragraph(label_with(lang, "completeness_note", grace=completeness.grace_days))
    lines = completeness_lines(completeness, lang)
    table = _table(doc, completeness_header(lang), len(lines), (3.5, 2.0, 2.2, 2.2, 2.2, 2.2, 2.2, 10.0))
    for row, line in zip(table.rows[1:], lines, strict=True):
        for cell, value in zip(_row_cells(row), line.text_cells(lang), strict=True):
            _write(cell, value, bold=line.total)


__all__ = ["export_docx"]
