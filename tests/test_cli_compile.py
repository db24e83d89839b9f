"""``resobot compile`` and ``resobot indicator``: reports stored in the database come out in the
files (opened with openpyxl and python-docx; golden cell values), bad input is one clear line."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.cli import app
from reporting_forms.catalog import load_catalog
from storage.db import Database
from storage.repositories import Repos
from storage.reviews import ReviewRepo

runner = CliRunner()
CATALOG = load_catalog()
TRAINED = CATALOG.measure("1.1.1").indicators[1].text  # 1.1.1.2, people trained, target 120


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("REPORTING_FROM_YEAR", "2025")  # every plan year chased, whatever today's date
    monkeypatch.chdir(tmp_path)
    run("init")
    return url


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    return result.output


async def _seed(url: str) -> None:
    """2026: VPD 45 and TM 15 people trained on 1.1.1 (VPD's report returned), IeVP 10 of 390
    consultations on 1.3.9, IeVP 3 of 4 on NH.1.1."""
    db = Database(url)
    at = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)
    try:
        async with db.session() as s:
            repos = Repos(s)
            ids = {}
            for measure, inst, answers in (
                ("1.1.1", "VPD", {"1.1.1.1": "in_progress", "1.1.1.2": 45}),
                ("1.1.1", "TM", {"1.1.1.2": 15}),
                ("1.3.9", "IeVP", {"1.3.9.1": 10}),
                ("NH.1.1", "IeVP", {"NH.1.1.1": 3}),
            ):
                m = await repos.catalog.measure(measure)
                i = await repos.people.institution(inst)
                report = await repos.reports.submit(
                    measure_id=m.id, institution_id=i.id, year=2026, answers=answers, contact_id=None, now=at
                )
                ids[(measure, inst)] = report.id
            await ReviewRepo(s).review(ids[("1.1.1", "VPD")], state="returned", comment="Precizējiet")
    finally:
        await db.dispose()


def _find_row(ws, column: int, value: str) -> int:  # type: ignore[no-untyped-def]
    for row in ws.iter_rows(min_row=1):
        if row[column - 1].value == value:
            return row[0].row
    raise AssertionError(f"{value!r} not in column {column} of {ws.title}")


def test_compile_writes_files_with_the_stored_values(env: str, tmp_path: Path) -> None:
    asyncio.run(_seed(env))
    assert "PR1.RR2 2025 = 15.4 (source: VID)" in run(
        "indicator", "set", "PR1.RR2", "2025", "15,4", "--source", "VID"
    )
    output = run(
        "compile",
        "--year",
        "2026",
        "--format",
        "xlsx,docx,html,csv,png",
        "--out",
        "out",
        "--as-of",
        "2026-11-20",
    )
    assert "RPP-2025-2027" in output and "as of 2026-11-20" in output
    assert "pending 2, returned 1, accepted 0" in output and "rows at risk: 1" in output
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "NH-2024_2026.xlsx",  # the informal-hierarchy plan's status table, as the scheduled job sends
        "RPP-2025-2027_2026.csv",
        "RPP-2025-2027_2026.docx",
        "RPP-2025-2027_2026.html",
        "RPP-2025-2027_2026.xlsx",
        "RPP-2025-2027_2026_completeness.png",
        "RPP-2025-2027_2026_progress.png",
    ]
    for name in names:
        assert f"out/{name}" in output

    wb = load_workbook(out / "RPP-2025-2027_2026.xlsx")
    ws = wb["1. rīcības virziens"]
    r = _find_row(ws, 4, TRAINED)
    assert [ws.cell(r, c).value for c in range(8, 12)] == [None, 60, None, 60]
    assert ws.cell(r, 12).value == pytest.approx(0.5)
    assert ws.cell(r, 13).value == "procesā"
    assert ws.cell(r, 14).value == dt.datetime(2026, 10, 5)
    assert ws.cell(r, 15).value == "atgriezts labošanai"  # the returned VPD part wins over TM's pending
    assert ws.cell(r + 1, 4).value == "t. sk. TM (25 % no kopsummas)"
    assert ws.cell(r + 2, 4).value == "t. sk. VPD (75 % no kopsummas)"
    assert ws.cell(r + 2, 15).value == "atgriezts labošanai"
    r = _find_row(ws, 4, CATALOG.measure("1.3.9").indicators[0].text)
    assert (ws.cell(r, 9).value, ws.cell(r, 13).value, ws.cell(r, 15).value) == (
        10,
        "risks",
        "gaida pārskatīšanu",
    )

    ws = wb["Kopsavilkums"]
    r = _find_row(ws, 1, "Plāns kopā")
    assert [ws.cell(r, c).value for c in range(2, 8)] == [109, 0, 2, 1, 0, 106]
    r = _find_row(ws, 1, "Institūcija")
    vpd_2026 = next(
        row
        for row in range(r + 1, ws.max_row + 1)
        if (ws.cell(row, 1).value, ws.cell(row, 2).value) == ("VPD", "2026")
    )
    assert [ws.cell(vpd_2026, c).value for c in (3, 4, 5)] == [30, 1, 1]

    ws = wb["Politikas rezultāti"]
    r = _find_row(ws, 2, "PR1.RR2 Legālajā nodarbinātībā iesaistīto probācijas klientu īpatsvara pieaugums")
    assert [ws.cell(r, c).value for c in range(3, 9)] == [12, 13, 14, "15%", 15.4, "sasniegts"]

    doc = Document(str(out / "RPP-2025-2027_2026.docx"))
    rows = [[cell.text for cell in row.cells] for table in doc.tables for row in table.rows]
    trained = next(row for row in rows if row[3] == TRAINED)
    assert trained[7:] == ["", "60", "", "60", "50 %", "procesā", "05.10.2026", "atgriezts labošanai", ""]
    assert [next(row for row in rows if row[3].startswith("t. sk. VPD"))[i] for i in (3, 7, 8, 9)] == [
        "t. sk. VPD (75 % no kopsummas)",
        "",
        "45",
        "",
    ]

    with (out / "RPP-2025-2027_2026.csv").open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    vpd = next(line for line in lines if line[4] == "1.1.1.2" and line[9] == "VPD" and line[10] == "2026")
    assert (vpd[11], vpd[16], vpd[20]) == ("45", "atgriezts labošanai", "50")
    html = (out / "RPP-2025-2027_2026.html").read_text(encoding="utf-8")
    assert "Datu stāvoklis: 2026. gada 20. novembris" in html
    assert (out / "RPP-2025-2027_2026_progress.png").read_bytes().startswith(b"\x89PNG")


COMMENT = "Apmācības notiek reģionos; <b>visi</b> & citi."


async def _seed_comment(url: str) -> None:
    """2026: VPD reports 1.1.1 — milestone 1.1.1.1 in progress, expected by 15.03.2026 — with a
    comment, as a contact confirming the form would store it."""
    db = Database(url)
    try:
        async with db.session() as s:
            repos = Repos(s)
            m = await repos.catalog.measure("1.1.1")
            i = await repos.people.institution("VPD")
            answers = {
                "1.1.1.1": "in_progress",
                "1.1.1.1.date": "2026-03-15",
                "1.1.1.2": 45,
                "comment": COMMENT,
            }
            await repos.reports.submit(
                measure_id=m.id, institution_id=i.id, year=2026, answers=answers, contact_id=None,
                now=dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC),
            )  # fmt: skip
    finally:
        await db.dispose()


def test_the_comment_and_milestone_date_reach_every_compiled_file(env: str, tmp_path: Path) -> None:
    asyncio.run(_seed_comment(env))
    run(
        "compile", "--year", "2026", "--format", "xlsx,docx,html,csv", "--out", "out", "--as-of", "2026-11-20"
    )
    out = tmp_path / "out"
    note = f"VPD: procesā (15.03.2026). {COMMENT}"

    ws = load_workbook(out / "RPP-2025-2027_2026.xlsx")["1. rīcības virziens"]
    header = [c.value for c in ws[2]]
    progress, inst = header.index("Informācija par izpildi") + 1, header.index("Institūcija") + 1
    milestone = CATALOG.measure("1.1.1").indicators[0].text
    r = _find_row(ws, 4, milestone)
    vpd = next(row for row in range(r + 1, r + 4) if ws.cell(row, inst).value == "VPD")
    assert ws.cell(vpd, progress).value == note
    assert ws.cell(vpd, progress).data_type == "s"
    assert ws.cell(vpd, 9).value == "procesā (15.03.2026)"  # the 2026 cell of VPD's line

    doc = Document(str(out / "RPP-2025-2027_2026.docx"))
    rows = [[cell.text for cell in row.cells] for table in doc.tables for row in table.rows]
    assert rows[0][-1] == "Informācija par izpildi" or any(r[-1] == "Informācija par izpildi" for r in rows)
    line = next(row for row in rows if row[3] == milestone)
    assert line[-1] == note
    assert line[8] == "procesā (15.03.2026)"

    html = (out / "RPP-2025-2027_2026.html").read_text(encoding="utf-8")
    assert "<th>Informācija par izpildi</th>" in html
    assert "VPD: procesā (15.03.2026). Apmācības notiek reģionos; &lt;b&gt;visi&lt;/b&gt; &amp; citi." in html

    with (out / "RPP-2025-2027_2026.csv").open(encoding="utf-8-sig", newline="") as fh:
        lines = list(csv.reader(fh))
    col = lines[0].index("Informācija par izpildi")
    by_row = {(line[4], line[9], line[10]): line[col] for line in lines[1:]}
    assert by_row[("1.1.1.1", "VPD", "2026")] == note
    assert by_row[("1.1.1.2", "VPD", "2026")] == f"VPD: {COMMENT}"  # a number: the report's comment
    assert by_row[("1.1.1.1", "VPD", "2025")] == ""


def test_compile_the_informal_hierarchy_plan_in_english(env: str, tmp_path: Path) -> None:
    asyncio.run(_seed(env))
    output = run(
        "compile", "--plan", "NH", "--format", "xlsx", "--out", "nh", "--lang", "en", "--as-of", "2026-11-20"
    )
    assert "NH-2024" in output and "2025–2027" in output
    assert [p.name for p in (tmp_path / "nh").iterdir()] == ["NH-2024_2025-2027.xlsx"]  # --plan picks one
    wb = load_workbook(tmp_path / "nh" / "NH-2024_2025-2027.xlsx")
    assert wb.sheetnames[0] == "Summary"
    ws = wb[wb.sheetnames[1]]
    assert [ws.cell(3, c).value for c in (8, 9, 10, 11)] == [None, 3, None, 3]  # NH.1.1.1: 3 of 4 in 2026
    assert ws.cell(3, 15).value == "awaiting review"


def test_compile_whole_period_by_default(env: str, tmp_path: Path) -> None:
    output = run("compile", "--format", "csv", "--out", "all")
    assert "all/RPP-2025-2027_2025-2027.csv" in output
    assert "all/NH-2024_2025-2027.xlsx" in output  # both plans by default
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "NH-2024_2025-2027.xlsx",
        "RPP-2025-2027_2025-2027.csv",
    ]
    assert "NH-2024" in output and "RPP-2025-2027" in output  # a summary of each
    rows = list(
        csv.reader(io.StringIO((tmp_path / "all" / "RPP-2025-2027_2025-2027.csv").read_text("utf-8-sig")))
    )
    assert len(rows) > 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("compile", "--format", "xlsx,pdf"), 'Unknown format "pdf". Allowed: xlsx, docx, html, csv, png.'),
        (("compile", "--year", "2024"), "2024 is outside the plan period (2025–2027)."),
        (("compile", "--plan", "XX"), 'Unknown plan "XX". Plans: NH-2024, RPP-2025-2027.'),
        (("compile", "--lang", "de"), "--lang must be one of lv, en, not 'de'."),
        (("indicator", "set", "PR9.RR1", "2025", "1"), 'Indicator "PR9.RR1" not found.'),
        (
            ("indicator", "set", "PR1.RR2", "2021", "1"),
            '"2021" is not a valid year: enter a year from 2022 to 2027.',
        ),
        (("indicator", "set", "PR1.RR2", "2025", "abc"), '"abc" is not a number.'),
        (("indicator", "set", "PR1.RR2", "2025", "101"), "A percentage cannot exceed 100."),
    ],
)
def test_bad_input_is_one_clear_line(env: str, args: tuple[str, ...], message: str) -> None:
    output = fails(*args)
    assert message in output
    assert len(output.strip().splitlines()) == 1


def test_indicator_set_replaces_and_lists(env: str) -> None:
    run("indicator", "set", "pr3.rr4", "2026", "1 200")
    run("indicator", "set", "PR3.RR4", "2026", "300", "--source", "VPD dati")
    listing = run("indicator", "list")
    assert "300 (VPD dati)" in listing and "1,200" not in listing
    assert "PR1.RR2" in listing and "12" in listing  # passport history beside the targets


def test_policy_actuals_for_history_years_are_used(env: str, tmp_path: Path) -> None:
    """PR1.RR1 has no passport history and "Pieaug" targets: a 2023 value entered is shown and
    is what 2025 must grow on."""
    run("indicator", "set", "PR1.RR1", "2023", "100", "--source", "VID")
    run("indicator", "set", "PR1.RR1", "2025", "120")
    listing = run("indicator", "list")
    assert "100 (VID; passport —)" in listing
    run("compile", "--plan", "RPP", "--format", "xlsx", "--out", "out", "--as-of", "2026-03-01")
    ws = load_workbook(tmp_path / "out" / "RPP-2025-2027_2025-2027.xlsx")["Politikas rezultāti"]
    rr1 = next(i for p in CATALOG.plans for r in p.policy_results for i in r.indicators if i.id == "PR1.RR1")
    r = _find_row(ws, 2, f"PR1.RR1 {rr1.text}")
    assert [ws.cell(r, c).value for c in range(3, 9)] == [None, 100, None, "Pieaug", 120, "sasniegts"]
