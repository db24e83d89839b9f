"""Exports of a compiled plan: XLSX, DOCX, HTML, CSV and PNG charts, opened and read back."""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from docx import Document
from docx.enum.section import WD_ORIENT
from openpyxl import load_workbook

from reporting_forms.catalog import Catalog, CatalogError, load_catalog
from reporting_forms.compilation import (
    CompiledPlan,
    PolicyActual,
    PolicyTable,
    compile_plan,
    compile_policy_results,
)
from reporting_forms.exports import (
    completeness_chart,
    export_csv,
    export_docx,
    export_html,
    export_xlsx,
    progress_chart,
)
from reporting_forms.exports.charts import PNG_SIGNATURE, completeness_figure, progress_figure, task_progress
from tests.test_compilation import PLAN, build_catalog, compile_all, report, seeded_values

HEADER_LV = [
    "Nr.p.k.",
    "Pasākums",
    "Darbības rezultāts",
    "Rezultatīvā rādītāja vērtība 2027.gadā",
    "Atbildīgā institūcija",
    "Līdzatbildīgās institūcijas",
    "Izpildes termiņš",
    "2025",
    "2026",
    "2027",
    "Kopā",
    "% no mērķa",
    "Statuss",
    "Pēdējā atskaite",
    "Pārskatīšana",
    "Informācija par izpildi",
]
XLSX_KEYS_LV = ["Rādītāja Nr.", "Institūcija"]  # which row and institution a direction sheet's line is


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog()


@pytest.fixture(scope="module")
def compiled(catalog: Catalog) -> CompiledPlan:
    return compile_all(catalog, seeded_values())


@pytest.fixture(scope="module")
def policy(catalog: Catalog) -> PolicyTable:
    actuals = [PolicyActual("PR1.RR2", 2025, 15.2, "IS PLUS", "koordinators", dt.datetime(2026, 2, 20))]
    return compile_policy_results(catalog, PLAN, actuals)


@pytest.fixture(scope="module")
def nh(catalog: Catalog) -> CompiledPlan:
    vals = report("NH.1.1", "IeVP", 2025, dt.datetime(2025, 8, 1), {"NH.1.1.1": 4})
    return compile_plan(catalog, "NH-2024", vals, year=2025, as_of=dt.date(2026, 1, 5))


# ---------------------------------------------------------------- XLSX


def _find_row(ws, column: int, text: str) -> int:  # type: ignore[no-untyped-def]
    for row in ws.iter_rows(min_row=1):
        if row[column - 1].value == text:
            return row[0].row
    raise AssertionError(f"{text!r} not in column {column} of {ws.title}")


def test_xlsx_sheets_header_and_cells(compiled: CompiledPlan, policy: PolicyTable, tmp_path: Path) -> None:
    data = export_xlsx(compiled, policy=policy, path=tmp_path / "plan.xlsx")
    assert (tmp_path / "plan.xlsx").read_bytes() == data
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == [
        "Kopsavilkums",
        "1. rīcības virziens",
        "2. rīcības virziens",
        "Politikas rezultāti",
    ]

    ws = wb["1. rīcības virziens"]
    assert ws["A1"].value == "1. RĪCĪBAS VIRZIENS Turpināt pilnveidot resocializācijas darbu"
    assert [c.value for c in ws[2]] == HEADER_LV + XLSX_KEYS_LV
    assert ws.freeze_panes == "A3"
    assert ws["A3"].value == "1.1. uzdevums. Resocializācijas instrumentu pilnveidošana"

    # first line of measure 1.1.1 carries the plan's columns
    r = _find_row(ws, 4, "Izstrādāts un ieviests instruments")
    assert [ws.cell(r, c).value for c in range(1, 8)] == [
        "1.",
        "Riska novērtēšanas instrumenta ieviešana",
        "Precīzāks darbs pie risku noteikšanas",
        "Izstrādāts un ieviests instruments",
        "TM",
        "VPD",
        "2027. gada 31. decembris",
    ]
    assert ws.cell(r, 9).value == "izpildīts"  # 2026 milestone status
    assert ws.cell(r, 13).value == "izpildīts"
    assert ws.cell(r, 13).fill.fgColor.rgb.endswith("C6EFCE")

    r = _find_row(ws, 4, "Apmācīti līdz 120 darbinieki")
    assert [ws.cell(r, c).value for c in range(8, 12)] == [29, 80, 15, 124]
    assert ws.cell(r, 8).number_format == "#,##0"
    assert ws.cell(r, 12).value == pytest.approx(124 / 120)
    assert ws.cell(r, 12).number_format == "0.0 %"
    assert ws.cell(r, 13).value == "izpildīts"
    assert ws.cell(r, 14).value == dt.datetime(2027, 12, 20)
    assert ws.cell(r, 14).number_format == "DD.MM.YYYY"
    assert ws.cell(r, 15).value == "atgriezts labošanai"
    assert ws.cell(r, 4).alignment.wrap_text is True
    # per-institution lines below the shared row
    assert ws.cell(r + 1, 4).value == "t. sk. TM (7,3 % no kopsummas)"
    assert ws.cell(r + 2, 4).value == "t. sk. VPD (92,7 % no kopsummas)"
    assert [ws.cell(r + 2, c).value for c in range(8, 12)] == [20, 80, 15, 115]

    r = _find_row(ws, 4, "Mācībās piedalās 100 dalībnieki")
    assert ws.cell(r, 13).value == "risks"
    assert ws.cell(r, 13).fill.fgColor.rgb.endswith("FFC7CE")
    r = _find_row(ws, 4, "Iesaistīti 50 % klientu")
    assert ws.cell(r, 8).number_format == "#,##0.0#"
    assert ws.cell(r, 9).value == 45

    ws = wb["2. rīcības virziens"]
    r = _find_row(ws, 4, "30 jauni kursi")
    assert ws.cell(r, 13).value == "nav ziņots"
    assert ws.cell(r, 13).fill.fgColor.rgb.endswith("F2F2F2")


def test_xlsx_summary_and_policy(compiled: CompiledPlan, policy: PolicyTable) -> None:
    wb = load_workbook(io.BytesIO(export_xlsx(compiled, policy=policy)))
    ws = wb["Kopsavilkums"]
    assert ws["A1"].value == compiled.plan.title
    assert ws["A2"].value == "Izpilde: 2025.–2027. gads. Datu stāvoklis: 2028. gada 10. janvāris."
    r = _find_row(ws, 1, "Rīcības virziens / uzdevums")
    assert ws.freeze_panes == f"A{r + 1}"  # the title and the column header stay in view
    assert [c.value for c in ws[r]][:9] == [
        "Rīcības virziens / uzdevums",
        "Rādītāji",
        "izpildīts",
        "procesā",
        "risks",
        "nav uzsākts",
        "nav ziņots",
        "nav datu",
        "Vidēji % no mērķa (skaitliskie rādītāji ar ziņotu vērtību)",
    ]
    assert [ws.cell(r + 1, c).value for c in range(1, 9)] == ["Plāns kopā", 13, 4, 1, 5, 2, 1, 0]
    r = _find_row(ws, 1, "Institūcija")
    assert [ws.cell(r + 1, c).value for c in range(1, 6)] == ["TM", "2025", 2, 1, 1]
    assert ws.cell(r + 1, 6).value == pytest.approx(0.5)
    r = _find_row(ws, 1, "Datu pārbaudes brīdinājumi")
    assert ws.cell(r + 1, 1).value == (
        "1.1.1. pasākums, 2026. gads, VPD: apmācīto skaits (80) pārsniedz dalībnieku skaitu (10)"
    )
    assert (
        ws.cell(r + 2, 1).value
        == "1.1.2. pasākums, 2026. gads: kopējā vērtība 41 vairāk nekā 3 reizes pārsniedz mērķi (10)"
    )

    ws = wb["Politikas rezultāti"]
    assert ws.freeze_panes == "C3"
    header = [c.value for c in ws[2]]
    assert header[:5] == [
        "Politikas rezultāts",
        "Rezultatīvais rādītājs (RR)",
        "2022 fakts",
        "2023 fakts",
        "2024 fakts",
    ]
    assert header[5:8] == ["2025 mērķis", "2025 fakts", "2025 sasniegts"]
    r = _find_row(ws, 2, "PR1.RR2 Legālajā nodarbinātībā iesaistīto probācijas klientu īpatsvara pieaugums")
    assert [ws.cell(r, c).value for c in range(3, 9)] == [12, 13, 14, "15%", 15.2, "sasniegts"]


def test_entered_history_values_in_the_policy_tables(catalog: Catalog, compiled: CompiledPlan) -> None:
    actuals = [PolicyActual("PR1.RR2", 2023, 13.4, "IS PLUS", "koordinators", dt.datetime(2026, 2, 20))]
    policy = compile_policy_results(catalog, PLAN, actuals)
    ws = load_workbook(io.BytesIO(export_xlsx(compiled, policy=policy)))["Politikas rezultāti"]
    r = _find_row(ws, 2, "PR1.RR2 Legālajā nodarbinātībā iesaistīto probācijas klientu īpatsvara pieaugums")
    assert [ws.cell(r, c).value for c in range(3, 6)] == [12, 13.4, 14]
    assert ws.cell(r, 4).comment.text == "ievadīts: IS PLUS; pasē: 13"
    assert ws.cell(r, 3).comment is None
    doc = Document(io.BytesIO(export_docx(compiled, policy=policy, lang="en")))
    table = next(t for t in doc.tables if t.rows[0].cells[0].text == "Policy result")
    assert _cells(table)[2][2:5] == ["12", "13.4 (entered: IS PLUS; passport: 13)", "14"]


def test_xlsx_in_english(compiled: CompiledPlan) -> None:
    wb = load_workbook(io.BytesIO(export_xlsx(compiled, lang="en")))
    assert wb.sheetnames[:2] == ["Summary", "Action direction 1"]
    ws = wb["Action direction 1"]
    assert [c.value for c in ws[2]][:4] == ["No.", "Measure", "Output", "Performance indicator value in 2027"]
    assert ws["A1"].value.startswith("1. ACTION DIRECTION ")


def test_xlsx_sections_of_the_informal_hierarchy_plan(nh: CompiledPlan) -> None:
    wb = load_workbook(io.BytesIO(export_xlsx(nh)))
    assert wb.sheetnames == ["Kopsavilkums", "1. sadaļa", "2. sadaļa"]
    ws = wb["1. sadaļa"]
    assert ws["A1"].value == "1. Pārvaldes personāla kapacitātes pilnveidošanas pasākumi"
    assert ws["A3"].value == "1."  # no task heading row inside a section
    assert [c.value for c in ws[2]][7:10] == ["2025", "2026", "2027"]
    assert [ws.cell(3, c).value for c in (8, 9, 11, 13)] == [4, None, 4, "izpildīts"]


# ---------------------------------------------------------------- DOCX


def _cells(table) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [[cell.text for cell in row.cells] for row in table.rows]


def test_docx_landscape_headings_and_tables(
    compiled: CompiledPlan, policy: PolicyTable, tmp_path: Path
) -> None:
    data = export_docx(compiled, policy=policy, path=tmp_path / "plan.docx")
    doc = Document(io.BytesIO(data))
    section = doc.sections[0]
    assert section.orientation == WD_ORIENT.LANDSCAPE
    assert section.page_width > section.page_height

    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert "1. RĪCĪBAS VIRZIENS Turpināt pilnveidot resocializācijas darbu" in headings
    assert "1.1. uzdevums. Resocializācijas instrumentu pilnveidošana" in headings
    assert "1.2. uzdevums. Modeļa pārskatīšana" in headings
    assert "2.1. uzdevums. Darbinieku apmācības" in headings
    assert headings.index("1.1. uzdevums. Resocializācijas instrumentu pilnveidošana") < headings.index(
        "2. RĪCĪBAS VIRZIENS Nodrošināt personāla pieejamību"
    )

    plan_tables = [t for t in doc.tables if t.rows[0].cells[0].text == "Nr.p.k."]
    assert len(plan_tables) == 3  # one per task
    rows = _cells(plan_tables[0])
    assert rows[0] == HEADER_LV
    trained = next(r for r in rows if r[3] == "Apmācīti līdz 120 darbinieki")
    assert trained[7:] == [
        "29",
        "80",
        "15",
        "124",
        "103,3 %",
        "izpildīts",
        "20.12.2027",
        "atgriezts labošanai",
        "",  # the institutions' lines below say how it is going
    ]
    first = next(r for r in rows if r[3] == "Izstrādāts un ieviests instruments")
    assert first[:3] == [
        "1.",
        "Riska novērtēšanas instrumenta ieviešana",
        "Precīzāks darbs pie risku noteikšanas",
    ]
    assert first[7] == "procesā\nIzstrāde sākta"
    assert "t. sk. VPD (92,7 % no kopsummas)" in [r[3] for r in rows]

    texts = "\n".join(p.text for p in doc.paragraphs)
    assert "1.1.1. pasākums, 2026. gads, VPD: apmācīto skaits (80) pārsniedz dalībnieku skaitu (10)" in texts
    policy_table = next(t for t in doc.tables if t.rows[0].cells[0].text == "Politikas rezultāts")
    assert _cells(policy_table)[2][2:8] == ["12", "13", "14", "15%", "15,2", "sasniegts"]


def test_docx_sections_use_section_headings(nh: CompiledPlan) -> None:
    doc = Document(io.BytesIO(export_docx(nh)))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith("Heading")]
    assert "1. Pārvaldes personāla kapacitātes pilnveidošanas pasākumi" in headings
    assert not any("RĪCĪBAS VIRZIENS" in h or "uzdevums" in h for h in headings)


# ---------------------------------------------------------------- HTML


def test_html_page(compiled: CompiledPlan, policy: PolicyTable, tmp_path: Path) -> None:
    page = export_html(compiled, policy=policy, path=tmp_path / "plan.html").decode("utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="lv">' in page
    assert page.count('<table class="plan"') == 3
    assert "<th>Rezultatīvā rādītāja vērtība 2027.gadā</th>" in page
    assert "<h2>1. RĪCĪBAS VIRZIENS Turpināt pilnveidot resocializācijas darbu</h2>" in page
    assert "<h3>1.1. uzdevums. Resocializācijas instrumentu pilnveidošana</h3>" in page
    assert '<td class="st-done">izpildīts</td>' in page
    assert "103,3 %" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(img).startswith(PNG_SIGNATURE) for img in images)
    assert "<style>" in page and "<link" not in page and "<script" not in page


def test_html_escapes_and_language(catalog: Catalog) -> None:
    vals = report("1.2.1", "IeVP", 2025, dt.datetime(2025, 12, 1), {"1.2.1.2": None},
                  texts={"1.2.1.2": "<script>alert(1)</script> & co"})  # fmt: skip
    compiled = compile_plan(catalog, PLAN, vals, year=2025, as_of=dt.date(2026, 1, 1))
    page = export_html(compiled, lang="en", charts=False).decode("utf-8")
    assert '<html lang="en">' in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "data:image/png" not in page


# ---------------------------------------------------------------- CSV


def test_csv_rows(compiled: CompiledPlan, tmp_path: Path) -> None:
    data = export_csv(compiled, path=tmp_path / "plan.csv")
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Plāns", "Rīcības virziens", "Uzdevums", "Pasākums"]
    col = {name: i for i, name in enumerate(header)}
    # every (measure, indicator, institution, year): reported institutions + those due that report
    expected = 0
    for _, _, measure, row in compiled.rows():
        names = {s.institution for s in row.institutions} | {
            i for i in measure.measure.institutions if i in compiled.reporting_institutions
        }
        expected += len(names) * len(compiled.years)
    assert len(body) == expected
    assert not any(r[col["Institūcija"]] == "NVO" for r in body)  # NVO does not report

    def find(ind: str, inst: str, year: str) -> list[str]:
        (found,) = [
            r
            for r in body
            if (r[col["Rādītāja Nr."]], r[col["Institūcija"]], r[col["Gads"]]) == (ind, inst, year)
        ]
        return found

    vpd = find("1.1.1.2", "VPD", "2026")
    assert vpd[col["Vērtība"]] == "80"
    assert vpd[col["Iesniegts"]] == "2026-12-15"
    assert vpd[col["Institūcijas daļa, %"]] == "92.7419"
    assert vpd[col["Rindas kopsumma"]] == "124"
    assert vpd[col["Rindas statuss"]] == "izpildīts"
    vpd25 = find("1.1.1.2", "VPD", "2025")
    assert (vpd25[col["Redakcija"]], vpd25[col["Pārskatīšana"]]) == ("2", "gaida pārskatīšanu")
    missing = find("2.1.1.1", "TM", "2025")
    assert missing[col["Vērtība"]] == "" and missing[col["Rindas statuss"]] == "nav ziņots"
    assert find("1.1.1.1", "TM", "2025")[col["Teksts"]] == "Izstrāde sākta"


# ---------------------------------------------------------------- charts


def test_png_charts(compiled: CompiledPlan, tmp_path: Path) -> None:
    progress = progress_chart(compiled, path=tmp_path / "progress.png")
    complete = completeness_chart(compiled.completeness, lang="en")
    assert progress.startswith(PNG_SIGNATURE) and complete.startswith(PNG_SIGNATURE)
    assert (tmp_path / "progress.png").read_bytes() == progress
    assert len(progress) > 5_000


def test_progress_chart_has_every_task_and_each_rows_own_pace(
    compiled: CompiledPlan, nh: CompiledPlan
) -> None:
    fig = progress_figure(compiled)
    status, target = fig.axes[:2]
    assert [t.get_text() for t in status.get_yticklabels()] == ["1.1", "1.2", "2.1"]  # every task
    notes = [t.get_text() for t in target.texts]
    assert notes.count("nav skaitliska mērķa") == 1  # 1.2: a milestone and a text row only
    by_task = {t.number: task_progress(t) for _, t in compiled.tasks()}
    assert by_task["1.2"].percent is None and by_task["1.2"].counts == {
        "done": 0, "in_progress": 1, "risk": 1, "not_started": 0, "not_reported": 0, "no_data": 0,
    }  # fmt: skip
    # NH.1.1.1 is due by 1 July 2025: at the end of 2025 all of it is due, not a third
    section = task_progress(nh.directions[0].tasks[0])
    assert (section.percent, section.expected) == (100.0, 100.0)
    assert progress_chart(nh, lang="en").startswith(PNG_SIGNATURE)


def test_completeness_chart_shows_the_summarys_rows(catalog: Catalog) -> None:
    y2026 = compile_plan(catalog, PLAN, seeded_values(), year=2026, as_of=dt.date(2027, 1, 15))
    fig = completeness_figure(y2026.completeness, year=2026)
    (ax,) = fig.axes
    heights = [round(bar.get_height(), 3) for bar in ax.containers[0]]
    rows = [r for r in y2026.completeness.rows if r.year == 2026 and r.expected]
    assert [t.get_text() for t in ax.get_xticklabels()] == [r.institution for r in rows]
    assert heights == [round(r.completeness or 0.0, 3) for r in rows]  # 2026 only, as the text summary
    assert heights != [round(r.completeness or 0.0, 3) for r in y2026.completeness.by_institution]
    assert ax.get_title().endswith("2026. gads")


# ---------------------------------------------------------------- the real catalog


def test_real_catalog_exports() -> None:
    try:
        real = load_catalog()
    except (CatalogError, OSError) as exc:
        pytest.skip(f"the real catalog does not load yet: {exc}")
    plan = next((p for p in real.plans if p.id != "NH-2024" and p.policy_results), None)
    if plan is None:
        pytest.skip("the resocialisation plan is not in the catalog yet")
    compiled = compile_plan(real, plan.id, [], year=None, as_of=dt.date(2026, 1, 15))
    policy = compile_policy_results(real, plan.id, [])
    wb = load_workbook(io.BytesIO(export_xlsx(compiled, policy=policy)))
    assert len(wb.sheetnames) == 2 + len(plan.directions)
    doc = Document(io.BytesIO(export_docx(compiled, policy=policy)))
    assert sum(1 for t in doc.tables if t.rows[0].cells[0].text == "Nr.p.k.") == sum(
        len(d.tasks) for d in plan.directions
    )


# ---------------------------------------------------------------- rendering with external tools


@pytest.mark.slow
def test_docx_renders_to_pdf_and_png(compiled: CompiledPlan, policy: PolicyTable, tmp_path: Path) -> None:
    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None:
        pytest.skip("LibreOffice is not installed (needed: libreoffice --headless --convert-to pdf)")
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    source = tmp_path / "plan.docx"
    export_docx(compiled, policy=policy, path=source)
    subprocess.run(
        [office, "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
        check=True,
        timeout=180,
        capture_output=True,
    )
    pdf = tmp_path / "plan.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(
        [pdftoppm, "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=120,
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and pages[0].read_bytes().startswith(PNG_SIGNATURE)


# ---------------------------------------------------------------- "Informācija par izpildi"


def test_progress_column_per_institution_in_every_format(catalog: Catalog) -> None:
    """Two institutions on 1.1.1: each line says its own status and date; the comment goes with
    the measure's first row; an earlier year's comment names its year; no internal keys."""
    d = dt.datetime
    tm = [
        dataclasses.replace(v, comment="Notiek iepirkums.")
        for v in report("1.1.1", "TM", 2025, d(2025, 12, 1), {"1.1.1.1": "risk", "1.1.1.2": 5})
    ]
    vpd = [
        dataclasses.replace(v, comment="Apmācības notiek reģionos.", date=dt.date(2026, 3, 15))
        for v in report("1.1.1", "VPD", 2026, d(2026, 12, 1), {"1.1.1.1": "in_progress", "1.1.1.2": 20})
    ]
    compiled = compile_plan(catalog, PLAN, [*tm, *vpd], year=2026, as_of=dt.date(2026, 12, 20))
    tm_note = "TM (2025. g.): risks. Notiek iepirkums."
    vpd_note = "VPD: procesā (15.03.2026). Apmācības notiek reģionos."

    doc = Document(io.BytesIO(export_docx(compiled)))
    rows = _cells(next(t for t in doc.tables if t.rows[0].cells[0].text == "Nr.p.k."))
    assert rows[0][-1] == "Informācija par izpildi"
    by_indicator = {r[3]: r[-1] for r in rows}
    assert by_indicator["Izstrādāts un ieviests instruments"] == ""  # its institutions' lines say it
    assert by_indicator["t. sk. TM"] == tm_note
    assert by_indicator["t. sk. VPD"] == vpd_note
    assert (
        by_indicator["t. sk. TM (20 % no kopsummas)"] == ""
        and by_indicator["t. sk. VPD (80 % no kopsummas)"] == ""
    )

    page = export_html(compiled, charts=False).decode("utf-8")
    assert f"<td>{vpd_note}</td>" in page and f"<td>{tm_note}</td>" in page

    ws = load_workbook(io.BytesIO(export_xlsx(compiled)))["1. rīcības virziens"]
    header = [c.value for c in ws[2]]
    progress, ids, insts = (
        header.index(n) + 1 for n in ("Informācija par izpildi", "Rādītāja Nr.", "Institūcija")
    )
    notes = {
        (ws.cell(r, ids).value, ws.cell(r, insts).value): ws.cell(r, progress).value
        for r in range(3, ws.max_row + 1)
    }
    assert notes[("1.1.1.1", "TM")] == tm_note and notes[("1.1.1.1", "VPD")] == vpd_note
    assert notes[("1.1.1.1", "Kopā")] is None and notes[("1.1.1.2", "VPD")] is None

    body = list(csv.reader(io.StringIO(export_csv(compiled).decode("utf-8-sig"))))
    col = body[0].index("Informācija par izpildi")
    cells = {(r[4], r[9], r[10]): r[col] for r in body[1:]}
    assert cells[("1.1.1.1", "VPD", "2026")] == vpd_note
    assert cells[("1.1.1.2", "VPD", "2026")] == "VPD: Apmācības notiek reģionos."
    assert cells[("1.1.1.1", "TM", "2025")] == "TM: risks. Notiek iepirkums."
    assert cells[("1.1.1.1", "TM", "2026")] == ""
    assert not any(key in cell for cell in cells.values() for key in ("in_progress", "risk.", "comment"))
