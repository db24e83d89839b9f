"""Backfill from a spreadsheet: the bot's own XLSX export, edited with openpyxl, read back with
the chat's parsers (reporting_forms/imports.py), stored all or nothing — by ``resobot import``
and by a coordinator sending the file in chat."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from bot.cli import app
from reporting_forms.catalog import load_catalog
from reporting_forms.compilation import compile_plan
from reporting_forms.exports import export_xlsx
from reporting_forms.imports import read_workbook
from storage.db import Database
from storage.repositories import IMPORT_FIELD, Repos
from tests.chat_harness import Harness

runner = CliRunner()
CATALOG = load_catalog()
PLAN = "RPP-2025-2027"
SHEET = "1. rīcības virziens"
TODAY = dt.date(2026, 11, 20)


# ---------------------------------------------------------------- editing an export


def exported(lang: str = "lv", values: Any = ()) -> bytes:
    compiled = compile_plan(CATALOG, PLAN, list(values), year=2026, as_of=TODAY)
    return export_xlsx(compiled, lang=lang)


def edit(data: bytes, cells: dict[tuple[str, str, str], Any], sheet: str = SHEET) -> bytes:
    """Set year cells of institution lines: (indicator id, institution, year) → value."""
    wb = load_workbook(io.BytesIO(data))
    ws = wb[sheet]
    header = [c.value for c in ws[2]]
    ids, insts = _col(header, "Rādītāja Nr.", "Indicator no."), _col(header, "Institūcija", "Institution")
    for (ind, inst, year), value in cells.items():
        row = line(ws, ids, insts, ind, inst)
        ws.cell(row, header.index(year) + 1).value = value
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _col(header: list[Any], *names: str) -> int:
    return next(header.index(n) for n in names if n in header) + 1


def line(ws: Any, ids: int, insts: int, ind: str, inst: str) -> int:
    for row in range(3, ws.max_row + 1):
        if ws.cell(row, ids).value == ind and ws.cell(row, insts).value == inst:
            return row
    raise AssertionError(f"no {ind} / {inst} line in {ws.title}")


def row_of(data: bytes, ind: str, inst: str, sheet: str = SHEET) -> int:
    ws = load_workbook(io.BytesIO(data))[sheet]
    header = [c.value for c in ws[2]]
    return line(ws, _col(header, "Rādītāja Nr."), _col(header, "Institūcija"), ind, inst)


# ---------------------------------------------------------------- reading (pure)


def test_an_unedited_export_has_nothing_to_import() -> None:
    result = read_workbook(exported(), CATALOG, today=TODAY)
    assert result.ok and result.values == ()
    assert SHEET in result.sheets and "Kopsavilkums" not in result.sheets


def test_filled_cells_become_the_answers_the_chat_would_store() -> None:
    data = edit(
        exported(),
        {
            ("1.3.3.1", "VPD", "2025"): 30,
            ("1.3.3.2", "VPD", "2025"): "1 200",
            ("1.3.3.3", "VPD", "2026"): 12.0,
            ("1.1.1.1", "VPD", "2025"): "procesā (15.03.2025)",
            ("1.1.2.1", "VPD", "2025"): "Izpildīts",
        },
    )
    result = read_workbook(data, CATALOG, today=TODAY)
    assert result.ok, result.refusals
    by_key = {(r.measure_id, r.institution, r.year): (dict(r.answers), r.cleared) for r in result.reports()}
    assert by_key == {
        ("1.3.3", "VPD", 2025): ({"1.3.3.1": 30, "1.3.3.2": 1200}, ()),
        ("1.3.3", "VPD", 2026): ({"1.3.3.3": 12}, ()),
        ("1.1.1", "VPD", 2025): ({"1.1.1.1": "in_progress", "1.1.1.1.date": "2025-03-15"}, ()),
        ("1.1.2", "VPD", 2025): ({"1.1.2.1": "done"}, ("1.1.2.1.date",)),
    }


def test_a_percent_cell_typed_as_a_percentage_counts_as_its_percentage() -> None:
    assert CATALOG.find("3.1.5.1")[1].kind.value == "percent"
    sheet = "3. rīcības virziens"
    data = exported()
    wb = load_workbook(io.BytesIO(data))
    ws = wb[sheet]
    header = [c.value for c in ws[2]]
    cell = ws.cell(row_of(data, "3.1.5.1", "VPD", sheet), header.index("2025") + 1)
    cell.value, cell.number_format = 0.455, "0.0%"  # what Excel makes of "45,5 %"
    ws.cell(row_of(data, "3.1.5.2", "VPD", sheet), header.index("2025") + 1).value = "12,25"
    buffer = io.BytesIO()
    wb.save(buffer)
    (report,) = read_workbook(buffer.getvalue(), CATALOG, today=TODAY).reports()
    assert (report.measure_id, dict(report.answers)) == ("3.1.5", {"3.1.5.1": "45.5", "3.1.5.2": "12.25"})


@pytest.mark.parametrize(
    ("ind", "inst", "year", "value", "code"),
    [
        ("1.3.3.1", "VPD", "2025", "12,5", "decimal_not_allowed"),
        ("1.3.3.1", "VPD", "2025", 12.5, "decimal_not_allowed"),
        ("1.3.3.1", "VPD", "2025", -3, "negative"),
        ("1.3.3.1", "VPD", "2025", "daudz", "not_a_number"),
        ("1.3.3.1", "VPD", "2025", 12345678, "too_many_digits"),
        ("1.1.1.1", "VPD", "2025", "gandrīz", "choose_button"),
        ("1.1.1.1", "VPD", "2025", "izpildīts (31.02.2025)", "no_such_date"),
        ("1.1.1.1", "VPD", "2025", "izpildīts (drīz)", "not_a_date"),
        ("1.1.1.1", "VPD", "2025", "izpildīts (01.01.2020)", "date_out_of_range"),
        ("1.3.3.1", "VPD", "2027", 5, "future_year"),
    ],
)
def test_a_bad_cell_is_refused_with_sheet_row_and_reason(
    ind: str, inst: str, year: str, value: Any, code: str
) -> None:
    data = edit(exported(), {(ind, inst, year): value, ("1.3.3.2", "VPD", "2025"): 7})
    result = read_workbook(data, CATALOG, today=TODAY)
    (refusal,) = result.refusals
    assert (refusal.sheet, refusal.row, refusal.indicator, refusal.year, refusal.code) == (
        SHEET,
        row_of(data, ind, inst),
        ind,
        int(year),
        code,
    )


def test_lines_that_are_not_an_institutions_are_refused_or_ignored() -> None:
    data = exported()
    wb = load_workbook(io.BytesIO(data))
    ws = wb[SHEET]
    header = [c.value for c in ws[2]]
    ids, insts, y25 = _col(header, "Rādītāja Nr."), _col(header, "Institūcija"), header.index("2025") + 1
    summed = line(ws, ids, insts, "1.3.3.1", "Kopā")
    ws.cell(summed, y25).value = 99  # the sum over institutions: not imported
    vpd = line(ws, ids, insts, "1.3.3.2", "VPD")
    ws.cell(vpd, insts).value = "XYZ"
    other = line(ws, ids, insts, "1.3.3.3", "VPD")
    ws.cell(other, ids).value = "9.9.9.9"
    ws.cell(other, y25).value = 1
    # 1.3.1 has two reporters: its IeVP line relabelled VPD makes two VPD lines, the later refused
    dup, original = line(ws, ids, insts, "1.3.1.1", "IeVP"), line(ws, ids, insts, "1.3.1.1", "VPD")
    ws.cell(dup, insts).value = "VPD"
    ws.cell(dup, y25).value = "izpildīts"
    ws.cell(original, y25).value = "procesā"
    buffer = io.BytesIO()
    wb.save(buffer)
    result = read_workbook(buffer.getvalue(), CATALOG, today=TODAY)
    codes = {(r.row, r.code) for r in result.refusals}
    assert codes == {
        (vpd, "unknown_institution"),
        (other, "unknown_indicator"),
        (max(dup, original), "duplicate_line"),
    }


def test_an_english_export_reads_the_same() -> None:
    data = edit(exported("en"), {("1.3.3.1", "VPD", "2025"): 30}, sheet="Action direction 1")
    (report,) = read_workbook(data, CATALOG, today=TODAY).reports()
    assert (report.measure_id, report.institution, report.year, dict(report.answers)) == (
        "1.3.3",
        "VPD",
        2025,
        {"1.3.3.1": 30},
    )


def test_other_files_are_refused() -> None:
    (refusal,) = read_workbook(b"%PDF-1.4 not a workbook", CATALOG, today=TODAY).refusals
    assert refusal.code == "not_xlsx"
    wb = Workbook()
    wb.active["A1"] = "Rādītāja Nr."
    buffer = io.BytesIO()
    wb.save(buffer)
    (refusal,) = read_workbook(buffer.getvalue(), CATALOG, today=TODAY).refusals
    assert refusal.code == "no_direction_sheets"


# ---------------------------------------------------------------- resobot import (CLI)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    invoke("init")
    return url


def invoke(*args: str, ok: bool = True) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert (result.exit_code == 0) is ok, result.output
    return result.output


async def _submit_2026(url: str) -> None:
    db = Database(url)
    try:
        async with db.session() as s:
            repos = Repos(s)
            m = await repos.catalog.measure("1.3.3")
            i = await repos.people.institution("VPD")
            answers = {"1.3.3.1": 40, "1.3.3.2": 10, "comment": "Konsultācijas notiek."}
            await repos.reports.submit(measure_id=m.id, institution_id=i.id, year=2026, answers=answers,
                                       contact_id=None)  # fmt: skip
    finally:
        await db.dispose()


async def _views(url: str) -> list[Any]:
    db = Database(url)
    try:
        async with db.session() as s:
            repos = Repos(s)
            views = await repos.reports.views()
            return [(v, await repos.reports.revisions(v.id)) for v in views]
    finally:
        await db.dispose()


def test_round_trip_export_edit_import_compile(env: str, tmp_path: Path) -> None:
    asyncio.run(_submit_2026(env))
    invoke("compile", "--year", "2026", "--format", "xlsx", "--plan", "RPP", "--out", "out")
    exported_file = tmp_path / "out" / "RPP-2025-2027_2026.xlsx"
    edited = tmp_path / "2025.xlsx"
    edited.write_bytes(
        edit(
            exported_file.read_bytes(),
            {
                ("1.3.3.1", "VPD", "2025"): 30,
                ("1.3.3.4", "VPD", "2025"): "120",
                ("1.1.1.1", "VPD", "2025"): "izpildīts (10.11.2025)",
            },
        )
    )
    output = invoke("import", str(edited))
    assert "ielādēts: 2 jaunas atskaišu redakcijas, 1 bez izmaiņām" in output  # 2026: as stored
    assert "1.3.3 · VPD · 2025. gads — redakcija 1" in output

    stored = {(v.measure_code, v.institution, v.year): (v, revs) for v, revs in asyncio.run(_views(env))}
    view, revisions = stored[("1.3.3", "VPD", 2025)]
    assert view.answers() == {"1.3.3.1": 30, "1.3.3.4": 120}
    assert (view.status, view.review_state, view.revision) == ("submitted", "pending", 1)
    (note,) = [c for c in revisions[-1].changes if c["field"] == IMPORT_FIELD]
    assert (note["new"], note["by_name"]) == ("2025.xlsx", "admin (resobot import)")
    assert stored[("1.1.1", "VPD", 2025)][0].answers() == {"1.1.1.1": "done", "1.1.1.1.date": "2025-11-10"}
    assert stored[("1.3.3", "VPD", 2026)][0].revision == 1  # equal values: no new revision

    again = invoke("import", str(edited))
    assert "0 jaunas atskaišu redakcijas, 3 bez izmaiņām" in again

    invoke("compile", "--year", "2026", "--format", "xlsx", "--plan", "RPP", "--out", "out2")
    recompiled = (tmp_path / "out2" / "RPP-2025-2027_2026.xlsx").read_bytes()
    ws = load_workbook(io.BytesIO(recompiled))[SHEET]
    header = [c.value for c in ws[2]]
    y25, y26 = header.index("2025") + 1, header.index("2026") + 1
    assert ws.cell(row_of(recompiled, "1.3.3.1", "VPD"), y25).value == 30
    assert ws.cell(row_of(recompiled, "1.3.3.1", "VPD"), y26).value == 40
    assert ws.cell(row_of(recompiled, "1.3.3.4", "VPD"), y25).value == 120
    assert ws.cell(row_of(recompiled, "1.1.1.1", "VPD"), y25).value == "izpildīts (10.11.2025)"
    # the export of the imported data imports as nothing new
    (tmp_path / "again.xlsx").write_bytes(recompiled)
    assert "0 jaunas atskaišu redakcijas, 3 bez izmaiņām" in invoke("import", str(tmp_path / "again.xlsx"))


def test_a_file_with_one_bad_cell_changes_nothing(env: str, tmp_path: Path) -> None:
    invoke("compile", "--year", "2026", "--format", "xlsx", "--plan", "RPP", "--out", "out")
    data = (tmp_path / "out" / "RPP-2025-2027_2026.xlsx").read_bytes()
    bad = edit(data, {("1.3.3.1", "VPD", "2025"): 30, ("1.3.3.2", "VPD", "2025"): "12,5"})
    (tmp_path / "bad.xlsx").write_bytes(bad)
    output = invoke("import", str(tmp_path / "bad.xlsx"), ok=False)
    row = row_of(bad, "1.3.3.2", "VPD")
    assert f"1. rīcības virziens, rinda {row}: 1.3.3.2 (2025) — „12,5” nav vesels skaitlis" in output
    assert "Nekas nav saglabāts" in output
    assert asyncio.run(_views(env)) == []


def test_the_cli_says_when_the_file_cannot_be_read(env: str, tmp_path: Path) -> None:
    assert "Cannot read" in invoke("import", str(tmp_path / "missing.xlsx"), ok=False)
    (tmp_path / "notes.xlsx").write_bytes(b"just text")
    assert "nav nolasāma .xlsx izklājlapa" in invoke("import", str(tmp_path / "notes.xlsx"), ok=False)


# ---------------------------------------------------------------- chat


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_a_coordinator_imports_the_edited_export_in_chat(harness: Harness) -> None:
    coordinator = await harness.register(1001, "TM", role="coordinator", name="Koordinators")
    anna = await harness.register(1002, "VPD", name="Anna")
    data = edit(exported(), {("1.3.3.1", "VPD", "2025"): 30, ("1.3.3.2", "VPD", "2025"): "12,5"})

    coordinator.send_document("2025.xlsx", data, mime_type=XLSX)
    (refused,) = await coordinator.replies(1)
    row = row_of(data, "1.3.3.2", "VPD")
    assert f"1. rīcības virziens, rinda {row}: 1.3.3.2 (2025) — „12,5” nav vesels skaitlis" in refused.text
    assert "Nekas nav saglabāts" in refused.text
    async with harness.db.session() as s:
        assert await Repos(s).reports.views() == []

    good = edit(data, {("1.3.3.2", "VPD", "2025"): 12})
    coordinator.send_document("2025.xlsx", good, mime_type=XLSX)
    (done,) = await coordinator.replies(1)
    assert "ielādēts: 1 jauna atskaites redakcija" in done.text and "1.3.3 · VPD · 2025. gads" in done.text
    async with harness.db.session() as s:
        repos = Repos(s)
        (view,) = await repos.reports.views()
        assert (view.year, view.author) == (2025, "Koordinators")
        assert view.answers() == {"1.3.3.1": 30, "1.3.3.2": 12}
        (revision,) = await repos.reports.revisions(view.id)
        assert any(c["field"] == IMPORT_FIELD and c["new"] == "2025.xlsx" for c in revision.changes)

    coordinator.send_document("plan.pdf", b"%PDF-1.4", mime_type="application/pdf")
    (wrong,) = await coordinator.replies(1)
    assert "nav .xlsx izklājlapa" in wrong.text

    anna.send_document("2025.xlsx", good, mime_type=XLSX)
    (forbidden,) = await anna.replies(1)
    assert "tikai TM koordinatori" in forbidden.text


@pytest.mark.parametrize("lang", ["lv", "en"])
def test_every_parser_error_has_an_import_reason_of_its_own(lang: str) -> None:
    """A refusal never falls back to the generic "(code)" line for an error the chat parsers raise."""
    from reporting_forms.answers import PARSER_ERROR_CODES
    from reporting_forms.texts import text

    for code in PARSER_ERROR_CODES:
        assert text(lang, f"coordinator.import_error_{code}").strip(), code
