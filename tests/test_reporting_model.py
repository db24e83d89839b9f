"""Who reports and which years are chased: the designated reporters of every measure, the first
reporting year, reopened years and late filing — in the catalog, the compilation, /overdue, the
digest, reminders, /mystatus and the CLI."""

from __future__ import annotations

import datetime as dt

import pytest

from reporting_forms.catalog import Catalog, CatalogError, default_reporters, load_catalog
from reporting_forms.compilation import ReportedValue, Status, compile_plan
from reporting_forms.periods import ReportingWindow, filed_late, is_closed, reopen_refusal
from reporting_forms.reminder_policy import (
    ContactRef,
    chased_only,
    escalation_digest,
    measures_due,
)
from reporting_forms.summaries import CompileInputs, missing_reports
from storage.repositories import Repos
from tests.chat_harness import Harness

MAIN = "RPP-2025-2027"
NH = "NH-2024"
UTC = dt.UTC


# ---------------------------------------------------------------- the catalog


def test_every_measure_names_its_reporters_by_the_documented_rule(catalog: Catalog) -> None:
    reporting = catalog.reporting_institutions()
    for plan, _d, _t, measure in catalog.measures():
        assert measure.reporters, measure.id
        assert set(measure.reporters) <= reporting, measure.id
        rule = default_reporters(measure.responsible, measure.co_responsible, reporting, plan.owner)
        assert measure.reporters == rule, measure.id


def test_tm_reports_only_where_a_measure_names_no_one_else(catalog: Catalog) -> None:
    main = next(p for p in catalog.plans if p.id == MAIN)
    assert main.owner == "TM"
    assert [m.id for m in main.measures() if "TM" in m.reporters] == []
    assert catalog.measure("1.3.3").reporters == ("VPD",)
    assert catalog.measure("3.4.2").reporters == ("IeVP",)  # IeVP responsible, TM co-responsible
    assert catalog.measure("4.5.2").reporters == ("VPD", "IeVP", "LM")
    assert catalog.measure("NH.1.5").reporters == ("TM",)  # the NH plan names TM alone there
    assert catalog.measure("NH.3.1").reporters == ("TM", "IeVP")


def test_the_yaml_lists_are_written_out(catalog: Catalog) -> None:
    """The lists are data in the YAML, not only the loader's default."""
    from reporting_forms.catalog import PLANS_DIR

    text = (PLANS_DIR / "resocialisation_2025_2027.yaml").read_text(encoding="utf-8")
    assert text.count("reporters: [") == sum(1 for p in catalog.plans if p.id == MAIN for _ in p.measures())


def test_a_reporter_that_does_not_report_in_chat_is_refused(tmp_path) -> None:
    from reporting_forms.catalog import PLANS_DIR

    src = (PLANS_DIR / "resocialisation_2025_2027.yaml").read_text(encoding="utf-8")
    broken = src.replace("reporters: [VPD]", "reporters: [FM]", 1)
    (tmp_path / "resocialisation_2025_2027.yaml").write_text(broken, encoding="utf-8")
    (tmp_path / "institutions.yaml").write_text(
        (PLANS_DIR / "institutions.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(CatalogError, match="reporter 'FM' does not report in chat"):
        load_catalog(tmp_path)


def test_with_reporters_replaces_only_the_named_measures(catalog: Catalog) -> None:
    changed = catalog.with_reporters({"1.1.5": ("VPD", "IeVP")})
    assert changed.measure("1.1.5").reporters == ("VPD", "IeVP")
    assert changed.measure("1.1.6").reporters == catalog.measure("1.1.6").reporters
    assert catalog.measure("1.1.5").reporters == ("IeVP",)  # the original is untouched
    assert "VPD" in changed.measure("1.1.5").institutions


# ---------------------------------------------------------------- the window (pure rules)


@pytest.mark.parametrize(
    ("year", "today", "closed"),
    [
        (2025, dt.date(2026, 3, 31), False),
        (2025, dt.date(2026, 4, 1), True),
        (2026, dt.date(2026, 12, 4), False),
        (2027, dt.date(2026, 12, 4), False),  # a future year is not closed
    ],
)
def test_a_year_closes_after_31_march_of_the_next(year: int, today: dt.date, closed: bool) -> None:
    assert is_closed(year, today) is closed


def test_window_expects_chases_and_opens() -> None:
    today = dt.date(2026, 12, 4)
    window = ReportingWindow(from_year=2026, reopened={("VPD", 2025): dt.date(2027, 1, 3)})
    assert not window.expected("IeVP", 2025) and window.expected("VPD", 2025)
    assert window.expected("IeVP", 2026) and window.expected("IeVP", 2027)
    assert not window.chased("IeVP", 2025, today)
    assert window.chased("VPD", 2025, today)  # reopened, still open
    assert not window.chased("VPD", 2025, dt.date(2027, 1, 4))  # the reopening expired
    assert window.open_years(today, "VPD") == [2026, 2025]
    assert window.open_years(today, "IeVP") == [2026]
    assert window.no_data(("IeVP",), 2025) and not window.no_data(("IeVP", "VPD"), 2025)
    everything = ReportingWindow(from_year=2025)
    assert not everything.chased("VPD", 2025, today)  # closed since 1 April 2026: not chased for ever


@pytest.mark.parametrize(
    ("year", "refusal"),
    [(2025, None), (2026, "reopen_not_ended"), (2027, "reopen_not_ended"), (2024, "year_outside_plan")],
)
def test_only_an_ended_closed_plan_year_can_be_reopened(year: int, refusal: str | None) -> None:
    assert reopen_refusal(year, dt.date(2026, 12, 4), (2025, 2026, 2027)) == refusal
    assert reopen_refusal(2025, dt.date(2026, 2, 1), (2025, 2026, 2027)) == "reopen_still_open"
    assert reopen_refusal(2025, dt.date(2026, 4, 1), (2025, 2026, 2027)) is None


def test_filed_late_is_after_the_year_deadline_in_local_time() -> None:
    from zoneinfo import ZoneInfo

    riga = ZoneInfo("Europe/Riga")
    assert not filed_late(2025, dt.datetime(2025, 12, 31, 21, 30, tzinfo=UTC), riga)  # 23:30 in Riga
    assert filed_late(2025, dt.datetime(2025, 12, 31, 22, 30, tzinfo=UTC), riga)  # 00:30 on 1 January
    assert not filed_late(2025, None, riga)


# ---------------------------------------------------------------- compilation and /overdue


def _value(measure: str, indicator: str, institution: str, year: int, value: float = 5) -> ReportedValue:
    return ReportedValue(
        report_id=f"{measure}-{institution}-{year}",
        measure_id=measure,
        indicator_id=indicator,
        institution=institution,
        year=year,
        value=value,
        status=None,
        text=None,
        revision=1,
        submitted_at=dt.datetime(year, 11, 20, 10, tzinfo=UTC),
        review_state="pending",
    )


def _filed(catalog: Catalog, measure: str, institution: str, year: int) -> list[ReportedValue]:
    return [_value(measure, ind.id, institution, year) for ind in catalog.measure(measure).indicators]


def test_completeness_counts_only_designated_reporters(catalog: Catalog) -> None:
    values = _filed(catalog, "1.3.3", "VPD", 2026)
    compiled = compile_plan(
        catalog, MAIN, values, year=2026, as_of=dt.date(2026, 12, 4), window=ReportingWindow(from_year=2026)
    )
    rows = {r.institution: r for r in compiled.completeness.rows if r.year == 2026}
    assert "TM" not in rows  # TM is a reporter of no measure of the main plan
    main = next(p for p in catalog.plans if p.id == MAIN)
    due = [m for m in main.measures() if m.deadline is None or m.deadline >= dt.date(2026, 1, 1)]
    expected = {i: sum(1 for m in due if i in m.reporters) for i in ("VPD", "IeVP")}
    assert rows["VPD"].expected == expected["VPD"] and rows["IeVP"].expected == expected["IeVP"]
    assert rows["VPD"].actual == 1 and "1.3.3" not in rows["VPD"].missing
    assert {r.year for r in compiled.completeness.rows} == {2026}  # 2025: before the first reporting year


def test_a_measure_with_two_reporters_is_complete_when_both_reported(catalog: Catalog) -> None:
    window = ReportingWindow(from_year=2026)
    day = dt.date(2026, 12, 4)
    one = compile_plan(
        catalog, MAIN, _filed(catalog, "1.3.1", "VPD", 2026), year=2026, as_of=day, window=window
    )
    missing = {r.institution: r.missing for r in one.completeness.rows}
    assert "1.3.1" not in missing["VPD"] and "1.3.1" in missing["IeVP"]
    both = _filed(catalog, "1.3.1", "VPD", 2026) + _filed(catalog, "1.3.1", "IeVP", 2026)
    two = compile_plan(catalog, MAIN, both, year=2026, as_of=day, window=window)
    assert all("1.3.1" not in r.missing for r in two.completeness.rows)
    row = two.row("1.3.1.1")
    assert {s.institution for s in row.institutions} == {"VPD", "IeVP"}
    assert row.values[2026] == 10  # shown per institution and summed


def test_a_year_before_the_first_reporting_year_is_no_data_not_not_reported(catalog: Catalog) -> None:
    compiled = compile_plan(
        catalog, MAIN, [], year=2025, as_of=dt.date(2026, 12, 4), window=ReportingWindow(from_year=2026)
    )
    statuses = {row.status for *_, row in compiled.rows()}
    assert Status.NOT_REPORTED not in statuses and Status.NO_DATA in statuses
    assert compiled.completeness.rows == ()
    older = compile_plan(catalog, MAIN, [], year=2025, as_of=dt.date(2026, 12, 4))
    assert Status.NOT_REPORTED in {row.status for *_, row in older.rows()}


def test_overdue_lists_designated_reporters_of_chased_years_only(catalog: Catalog) -> None:
    today = dt.date(2026, 12, 4)
    inputs = CompileInputs(
        values=_filed(catalog, "1.3.3", "VPD", 2026),
        first_submitted={},
        window=ReportingWindow(from_year=2026),
    )
    found = missing_reports(catalog, MAIN, inputs, today=today)
    assert {m.institution for m in found} <= {"VPD", "IeVP", "LM", "TNA"}
    assert {m.year for m in found} == {2026}
    vpd = next(m for m in found if m.institution == "VPD")
    assert "1.3.3" not in vpd.measures and "1.3.4" in vpd.measures
    # a reopened year is chased for that institution alone
    reopened = CompileInputs(
        values=[],
        first_submitted={},
        window=ReportingWindow(from_year=2026, reopened={("VPD", 2025): dt.date(2026, 12, 31)}),
    )
    years = {(m.institution, m.year) for m in missing_reports(catalog, MAIN, reopened, today=today)}
    assert ("VPD", 2025) in years and ("IeVP", 2025) not in years
    # with every year chased (a database init never set up) 2025 is closed anyway
    old = CompileInputs(values=[], first_submitted={})
    assert {m.year for m in missing_reports(catalog, MAIN, old, today=today)} == {2026}


# ---------------------------------------------------------------- reminders and the digest


def test_digest_and_reminders_skip_years_not_chased_and_non_reporters(catalog: Catalog) -> None:
    from bot.config import Settings

    policy = Settings(_env_file=None).reminder_policy
    day = dt.date(2026, 12, 4)
    contacts = [
        ContactRef(1, 101, "VPD"),
        ContactRef(2, 102, "TM"),
        ContactRef(3, 103, "IeVP"),
    ]
    window = ReportingWindow(from_year=2026)
    missing = chased_only({}, window, day)
    digest = escalation_digest(policy, measures_due(catalog), contacts, missing, [], day)
    assert digest.entries, "indicator deadlines of 2026 have passed (e.g. 3.4.2 on 1 April)"
    assert {e.period_year for e in digest.entries} == {2026}
    assert "TM" not in {e.institution for e in digest.entries if not e.measure_id.startswith("NH")}
    assert all(e.institution in catalog.measure(e.measure_id).reporters for e in digest.entries)
    everything = escalation_digest(
        policy,
        measures_due(catalog),
        contacts,
        chased_only({}, ReportingWindow(from_year=2025), day),
        [],
        day,
    )
    assert 2025 not in {e.period_year for e in everything.entries}  # closed since 1 April 2026


# ---------------------------------------------------------------- in chat


async def _set_from_year(harness: Harness, year: int) -> None:
    async with harness.db.session() as s:
        repos = Repos(s)
        await repos.periods.set_setting(repos.periods.FROM_YEAR, str(year))


async def test_vpd_files_1_3_3_and_tm_is_listed_nowhere(harness: Harness) -> None:
    from tests.test_coordinator_chat import file_1_3_3

    await _set_from_year(harness, 2026)
    coordinator = await harness.register(2001, "TM", role="coordinator")
    anna = await harness.register(2002, "VPD")
    await file_1_3_3(anna)
    coordinator.send("/overdue")
    parts = await coordinator.replies(1)
    body = "\n".join(p.text for p in parts)
    blocks = {b.split("\n", 1)[0]: b for b in body.split("\n\n")[1:]}  # per institution
    assert "VPD" in blocks and "IeVP" in blocks
    assert all("NH-2024" in line for line in blocks["TM"].splitlines()[1:])  # TM: only NH measures
    vpd_part = body[body.index("VPD") :]
    assert "1.3.3" not in vpd_part.split("IeVP")[0]
    assert "2025" not in body
    coordinator.send("/summary 2026")
    summary = (await coordinator.replies(1))[0].text
    assert "TM:" not in summary and "VPD: 1/" in summary


async def test_reopen_lets_the_contact_file_a_closed_year_marked_late(harness: Harness) -> None:
    await _set_from_year(harness, 2026)
    coordinator = await harness.register(2011, "TM", role="coordinator")
    anna = await harness.register(2012, "VPD")
    anna.send("/report 1.1.1")
    (q,) = await anna.replies(1)
    assert "2026. gads · jautājums 1" in q.text  # 2025 is closed: no year question
    anna.send("/cancel")
    await anna.replies(1)

    coordinator.send("/reopen 2026 VPD")
    (refused,) = await coordinator.replies(1)
    assert "vēl nav beidzies" in refused.text
    coordinator.send("/reopen 2025")
    (usage,) = await coordinator.replies(1)
    assert "/reopen 2025 VPD" in usage.text
    coordinator.send("/reopen 2025 vpd")
    (done,) = await coordinator.replies(1)
    assert "2025. gada pārskata periods atvērts institūcijai VPD" in done.text
    assert "Paziņojums nosūtīts 1 kontaktpersonai" in done.text
    (notice,) = await anna.replies(1)  # through the outbox, once the reopening was committed
    assert "atvēra 2025. gada pārskata periodu" in notice.text
    async with harness.db.session() as s:
        from sqlmodel import select

        from storage.outbox import KIND_NOTICE
        from storage.tables import Outbox

        rows = list((await s.exec(select(Outbox).where(Outbox.kind == KIND_NOTICE))).all())
    assert [(r.chat_id, r.status) for r in rows] == [(2012, "sent")]

    anna.send("/report 1.3.3")
    (choose,) = await anna.replies(1)
    assert choose.button_texts[:2] == ["2026. gads", "2025. gads"]
    anna.click_text("2025. gads")
    (q1,) = await anna.replies(1)
    assert "2025. gads · jautājums 1" in q1.text
    for answer in ("1", "1", "1", "1"):
        anna.send(answer)
        await anna.replies(1)
    anna.click_text("Izlaist ▶")
    await anna.replies(1)
    anna.click_text("✅ Apstiprināt")
    (receipt,) = await anna.replies(1)
    assert "Atskaite iesniegta" in receipt.text
    anna.send("/myreports")
    (mine,) = await anna.replies(1)
    assert "2025. gads" in mine.text and "iesniegta novēloti" in mine.text


async def test_mystatus_lists_what_is_due_and_keeps_the_draft_mid_form(harness: Harness) -> None:
    from tests.test_coordinator_chat import file_1_3_3

    await _set_from_year(harness, 2026)
    anna = await harness.register(2021, "VPD")
    await file_1_3_3(anna)
    anna.send("/report 1.1.1")
    (question,) = await anna.replies(1)
    anna.send("/mystatus")
    replies = [await anna.reply()]
    while replies[-1].text != question.text and len(replies) < 10:
        replies.append(await anna.reply())
    status_text, again = "\n".join(r.text for r in replies[:-1]), replies[-1]
    assert "Vēl jāiesniedz" in status_text
    assert "1.1.1 · 2026. gads · termiņš 31.12.2026" in status_text
    assert "1.3.3 · 2026" not in status_text  # filed
    assert "2025. gads" not in status_text  # not chased
    assert again.text == question.text  # the same step again: the draft is kept
    anna.click_text("procesā")  # the form goes on where it was
    (date_question,) = await anna.replies(1)
    assert "DD.MM.GGGG" in date_question.text


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def cli_env(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("REPORTING_FROM_YEAR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(*args: str, code: int = 0) -> str:
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_plan_reporters_is_kept_across_init_and_shown(cli_env, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    import time_machine

    with time_machine.travel(dt.datetime(2026, 12, 4, 10, tzinfo=UTC)):
        assert "Reports chased from 2026" in cli("init")
    assert re.search(r"Ziņo \(atskaites iesniedz\)\s+IeVP", cli("plan", "show", "1.1.5"))
    assert "reported by VPD, IeVP" in cli("plan", "reporters", "1.1.5", "vpd", "IeVP")
    assert "refused" not in cli("init")
    assert re.search(r"Ziņo \(atskaites iesniedz\)\s+VPD, IeVP", cli("plan", "show", "1.1.5"))
    assert "1.1.5: VPD, IeVP (catalog: IeVP)" in cli("plan", "reporters", "1.1.5")
    assert "is not an institution that reports in chat" in cli("plan", "reporters", "1.1.5", "FM", code=2)
    assert "No measure" in cli("plan", "reporters", "9.9.9", "VPD", code=2)
    assert "the catalog's" in cli("plan", "reporters", "1.1.5", "--reset")
    assert "1.1.5: IeVP (catalog: IeVP)" in cli("plan", "reporters", "1.1.5")
    # the first chased year stays what the first init saw, unless REPORTING_FROM_YEAR says otherwise
    with time_machine.travel(dt.datetime(2027, 2, 1, 10, tzinfo=UTC)):
        assert "Reports chased from 2026" in cli("init")
    monkeypatch.setenv("REPORTING_FROM_YEAR", "2025")
    assert "Reports chased from 2025" in cli("init")
    assert "chased from 2025" in cli("period", "list")


def test_the_running_bot_uses_the_admins_reporters(cli_env) -> None:
    """``resobot run`` (bot.runner: open_services) and the console build their services with
    the database's reporters."""
    import asyncio

    from bot.cli import _services
    from bot.config import load_settings
    from bot.services_container import Services, open_services
    from reporting_forms.catalog import default_catalog

    cli("init")
    cli("plan", "reporters", "1.1.5", "VPD")

    async def reporters(services: Services) -> tuple[str, ...]:
        try:
            return services.catalog.measure("1.1.5").reporters
        finally:
            await services.db.dispose()

    async def both() -> list[tuple[str, ...]]:
        settings = load_settings()
        return [
            await reporters(await _services(settings)),
            await reporters(await open_services(settings, default_catalog())),
        ]

    assert asyncio.run(both()) == [("VPD",), ("VPD",)]


def test_period_reopen_close_and_list(cli_env) -> None:
    import time_machine

    with time_machine.travel(dt.datetime(2026, 12, 4, 10, tzinfo=UTC)):
        cli("init")
        assert "vēl nav beidzies" in cli("period", "reopen", "2026", "VPD", code=2)
        assert "nav institūcija, kas ziņo" in cli("period", "reopen", "2025", "FM", code=2)
        out = cli("period", "reopen", "2025", "vpd", "--days", "10")
        assert "2025 reopened for VPD until 2026-12-14; notice queued for 0 contact(s)" in out
        listing = cli("period", "list")
        assert "2025" in listing and "VPD" in listing and "2026-12-14" in listing and "open" in listing
        assert "closed again" in cli("period", "close", "2025", "VPD")
        assert "not reopened" in cli("period", "close", "2025", "VPD", code=1)
        assert "No reopened years" in cli("period", "list")


def test_documents_show_nav_datu_for_years_before_the_first_reporting_year(catalog: Catalog) -> None:
    import io

    from docx import Document
    from openpyxl import load_workbook

    from reporting_forms.exports import export_docx, export_html, export_xlsx

    values = _filed(catalog, "1.3.3", "VPD", 2026)
    compiled = compile_plan(
        catalog, MAIN, values, year=None, as_of=dt.date(2026, 12, 4), window=ReportingWindow(from_year=2026)
    )
    wb = load_workbook(io.BytesIO(export_xlsx(compiled)))
    sheet = wb["1. rīcības virziens"]
    rows = list(sheet.iter_rows(values_only=True))
    header = next(r for r in rows if r[0] == "Nr.p.k.")
    y2025, y2026 = header.index("2025"), header.index("2026")
    lines = [r for r in rows if "1.3.3.1" in r]
    total = next(r for r in lines if r[-1] == "Kopā")
    vpd = next(r for r in lines if r[-1] == "VPD")
    assert total[y2025] == "nav datu" and total[y2026] == 5  # the indicator's line
    assert vpd[y2025] is None and vpd[y2026] == 5  # the institution's line stays empty to fill in
    document = Document(io.BytesIO(export_docx(compiled)))
    docx_text = "\n".join(c.text for t in document.tables for r in t.rows for c in r.cells)
    assert "nav datu" in docx_text
    html = export_html(compiled).decode("utf-8")
    every_year = compile_plan(catalog, MAIN, values, year=None, as_of=dt.date(2026, 12, 4))
    # beyond the summary's status column: one cell per indicator line of the plan in 2025
    rows = sum(len(m.indicators) for m in next(p for p in catalog.plans if p.id == MAIN).measures())
    assert html.count(">nav datu<") - export_html(every_year).decode("utf-8").count(">nav datu<") == rows


@pytest.mark.parametrize(
    ("days", "lv", "en"),
    [
        (1, "atlikusi 1 d.", "1 day left"),
        (21, "atlikusi 21 d.", "21 days left"),
        (11, "atlikušas 11 d.", "11 days left"),
    ],
)
def test_overdue_days_left_agree_with_the_number(days: int, lv: str, en: str) -> None:
    from reporting_forms.texts import text

    item = {
        "year": 2026,
        "plan_id": MAIN,
        "main": True,
        "deadline": dt.date(2026, 12, 31),
        "days_overdue": -days,
        "measures": ["1.1.1"],
    }
    groups = [{"institution": "VPD", "entries": [item]}]
    assert lv in text("lv", "coordinator.overdue", today=dt.date(2026, 12, 1), groups=groups)
    assert en in text("en", "coordinator.overdue", today=dt.date(2026, 12, 1), groups=groups)


async def test_a_comment_typed_in_chat_reaches_every_compiled_file(harness: Harness, tmp_path) -> None:
    """Acceptance: the compiled XLSX, DOCX, HTML and CSV contain a comment typed in chat."""
    import asyncio

    from docx import Document
    from openpyxl import load_workbook

    from reporting_forms.summaries import compile_inputs, render_files
    from services.compilation import load_inputs
    from tests.test_chat_e2e import file_report

    comment = "Konsultācijas notiek visos reģionos; =SUM(A1) paliek teksts"
    anna = await harness.register(2031, "VPD")
    await file_report(anna, "1.3.3", ["30", "10", "20", "40"], comment=comment)
    async with harness.db.session() as s:
        inputs = await load_inputs(s, MAIN)
    compiled = compile_inputs(
        harness.services.catalog, inputs, plan_id=MAIN, year=2026, as_of=dt.date(2026, 11, 20)
    )
    paths = await asyncio.to_thread(render_files, compiled, ("xlsx", "docx", "html", "csv"), tmp_path)
    by_ext = {p.suffix: p for p in paths}
    cells = [
        c.value for ws in load_workbook(by_ext[".xlsx"]).worksheets for row in ws.iter_rows() for c in row
    ]
    assert any(isinstance(v, str) and comment in v for v in cells)
    document = Document(str(by_ext[".docx"]))
    assert any(comment in c.text for t in document.tables for r in t.rows for c in r.cells)
    assert "Konsultācijas notiek visos reģionos" in by_ext[".html"].read_text(encoding="utf-8")
    assert "Konsultācijas notiek visos reģionos" in by_ext[".csv"].read_text(encoding="utf-8-sig")


async def test_a_review_notice_goes_through_the_outbox(harness: Harness) -> None:
    """The decision and its notices commit in one unit of work; the sender is woken after it."""
    from sqlmodel import select

    from storage.outbox import KIND_NOTICE
    from storage.tables import Outbox
    from tests.test_coordinator_chat import file_1_3_3, report_ids

    coordinator = await harness.register(2041, "TM", role="coordinator")
    anna = await harness.register(2042, "VPD")
    await file_1_3_3(anna)
    (rid,) = await report_ids(harness)
    coordinator.send("/review")
    await coordinator.replies(1)
    coordinator.click_text(f"✅ Pieņemt Nr. {rid}")
    await coordinator.replies(2)
    (notice,) = await anna.replies(1)
    assert f"Nr. {rid}" in notice.text and "pieņemta" in notice.text
    async with harness.db.session() as s:
        rows = list((await s.exec(select(Outbox).where(Outbox.kind == KIND_NOTICE))).all())
    assert [(r.chat_id, r.status, r.telegram_message_id) for r in rows] == [(2042, "sent", notice.message_id)]


async def test_after_commit_callbacks_run_only_after_a_commit(db) -> None:
    woken: list[str] = []
    async with db.unit() as unit:
        unit.after_commit(lambda: woken.append("first"))
        assert woken == []
    assert woken == ["first"]
    with pytest.raises(RuntimeError):
        async with db.unit() as unit:
            unit.after_commit(lambda: woken.append("second"))
            raise RuntimeError("rolled back")
    assert woken == ["first"]


def test_compile_uses_the_admins_reporters(cli_env) -> None:
    """``resobot compile`` (like reminders and import) reads the reporters from the database."""
    cli("init")
    cli("plan", "reporters", "1.3.3", "VPD", "IeVP")
    cli("compile", "--year", "2026", "--format", "csv", "--out", "out", "--plan", "RPP")
    text = (cli_env / "out" / "RPP-2025-2027_2026.csv").read_text(encoding="utf-8-sig")
    rows_133 = [line for line in text.splitlines() if "1.3.3.1" in line]
    assert any("IeVP" in line for line in rows_133) and any("VPD" in line for line in rows_133)
    cli("plan", "reporters", "1.3.3", "--reset")
    cli("compile", "--year", "2026", "--format", "csv", "--out", "out2", "--plan", "RPP")
    text = (cli_env / "out2" / "RPP-2025-2027_2026.csv").read_text(encoding="utf-8-sig")
    assert not any("IeVP" in line for line in text.splitlines() if "1.3.3.1" in line)
