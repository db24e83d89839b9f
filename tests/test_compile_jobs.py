"""The pure helpers of the compilations (reporting_forms: inputs, summaries, schedule,
policy values, draft warnings, messages) as tables of cases (schedule, input parsing, scopes,
warnings, message splitting, lv/en templates) and the scheduled job against a database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from bot.config import Settings
from bot.services_container import Services
from reporting_forms.calendar import default_calendar
from reporting_forms.catalog import Catalog, MetricKind
from reporting_forms.compilation import PolicyActual, compile_policy_results
from reporting_forms.draft_warnings import draft_warnings
from reporting_forms.inputs import InputError, parse_formats
from reporting_forms.messages import chunks
from reporting_forms.policy_values import parse_actual_value, parse_actual_year, policy_card
from reporting_forms.schedule import CompileRun, annual_run, compile_runs, monthly_run, next_compile_run
from reporting_forms.summaries import Scope, parse_summary_args, scoped_plan
from reporting_forms.texts import _messages
from services.compilation import compile_for_coordinators
from storage.db import Database
from storage.repositories import Repos
from tests.chat_harness import prepare_database

RIGA = ZoneInfo("Europe/Riga")
MAIN_PLAN = default_calendar().main_plan
HIERARCHY_PLAN = "NH-2024"


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=RIGA)


# ---------------------------------------------------------------- the schedule


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2026, 1, CompileRun(at(2026, 1, 5, 8), "monthly", 2025)),  # 1–2 Jan off, 3–4 weekend
        (2026, 2, CompileRun(at(2026, 2, 2, 8), "monthly", 2026)),
        (2026, 11, CompileRun(at(2026, 11, 2, 8), "monthly", 2026)),  # 1 November is a Sunday
        (2027, 5, CompileRun(at(2027, 5, 3, 8), "monthly", 2027)),  # 1 May holiday, weekend
    ],
)
def test_monthly_run_is_the_first_working_day_at_8(year: int, month: int, expected: CompileRun) -> None:
    assert monthly_run(year, month) == expected


def test_annual_run_on_15_january() -> None:
    assert annual_run(2027) == CompileRun(at(2027, 1, 15, 8), "annual", 2026)


def test_runs_only_for_years_of_the_plan() -> None:
    runs = compile_runs(dt.date(2025, 1, 1), dt.date(2028, 12, 31))
    assert runs[0] == CompileRun(at(2025, 2, 3, 8), "monthly", 2025)  # January 2025 would compile 2024
    assert runs[-2:] == [
        CompileRun(at(2028, 1, 3, 8), "monthly", 2027),
        CompileRun(at(2028, 1, 15, 8), "annual", 2027),
    ]
    assert [r.kind for r in runs].count("annual") == 3  # 2026, 2027, 2028
    assert all(r.at.time() == dt.time(8) for r in runs)


def test_next_run() -> None:
    assert next_compile_run(at(2026, 11, 20, 9)) == CompileRun(at(2026, 12, 1, 8), "monthly", 2026)
    assert next_compile_run(at(2026, 12, 1, 8)) == CompileRun(at(2026, 12, 1, 8), "monthly", 2026)
    assert next_compile_run(at(2027, 1, 6, 12)) == CompileRun(at(2027, 1, 15, 8), "annual", 2026)
    assert next_compile_run(at(2028, 1, 16)) is None


# ---------------------------------------------------------------- input parsing


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("15,4", MetricKind.PERCENT, 15.4),
        ("15.4 %", MetricKind.PERCENT, 15.4),
        ("1 200", MetricKind.COUNT, 1200.0),
        ("1\u00a0200,5", MetricKind.COUNT, 1200.5),
        ("0", MetricKind.COUNT, 0.0),
        ("100", MetricKind.PERCENT, 100.0),
    ],
)
def test_actual_values(raw: str, kind: MetricKind, expected: float) -> None:
    assert parse_actual_value(raw, kind) == expected


@pytest.mark.parametrize(
    ("raw", "kind", "code"),
    [
        ("abc", MetricKind.COUNT, "not_a_number"),
        ("", MetricKind.COUNT, "not_a_number"),
        ("1,2,3", MetricKind.COUNT, "not_a_number"),
        ("-5", MetricKind.COUNT, "negative"),
        ("100,5", MetricKind.PERCENT, "percent_above_100"),
        ("1,12345", MetricKind.COUNT, "too_many_decimals"),
    ],
)
def test_bad_actual_values(raw: str, kind: MetricKind, code: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_actual_value(raw, kind)
    assert exc.value.code == code


@pytest.mark.parametrize(
    ("raw", "ok"), [("2022", True), ("2027.", True), ("2021", False), ("2028", False), ("x", False)]
)
def test_actual_years(raw: str, ok: bool) -> None:
    if ok:
        assert 2022 <= parse_actual_year(raw) <= 2027
    else:
        with pytest.raises(InputError):
            parse_actual_year(raw)


def test_formats() -> None:
    assert parse_formats("xlsx, DOCX,xlsx,.png") == ("xlsx", "docx", "png")
    with pytest.raises(InputError, match="unknown_format"):
        parse_formats("xlsx,pdf")
    with pytest.raises(InputError):
        parse_formats(" , ")


@pytest.mark.parametrize(
    ("args", "plan", "year", "scope"),
    [
        (None, MAIN_PLAN, None, Scope()),
        ("2026 vpd", MAIN_PLAN, 2026, Scope(institution="VPD")),
        ("1.2 2025", MAIN_PLAN, 2025, Scope(task="1.2")),
        ("3", MAIN_PLAN, None, Scope(direction="3")),
        ("NH", HIERARCHY_PLAN, None, Scope()),
        ("nh.2 IeVP", HIERARCHY_PLAN, None, Scope(institution="IeVP", direction="NH.2")),
    ],
)
def test_summary_arguments(
    catalog: Catalog, args: str | None, plan: str, year: int | None, scope: Scope
) -> None:
    request = parse_summary_args(catalog, args)
    assert (request.plan_id, request.year, request.scope) == (plan, year, scope)


@pytest.mark.parametrize(
    ("args", "code"), [("2024", "year_outside_plan"), ("1.1.1", "unknown_scope"), ("XYZ", "unknown_scope")]
)
def test_bad_summary_arguments(catalog: Catalog, args: str, code: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_summary_args(catalog, args)
    assert exc.value.code == code


def test_scoped_plan_keeps_only_the_institutions_measures(catalog: Catalog) -> None:
    plan = next(p for p in catalog.plans if p.id == MAIN_PLAN)
    lm = scoped_plan(plan, Scope(institution="LM"))
    assert sorted(m.id for m in lm.measures()) == ["2.5.1", "2.6.1", "4.5.1", "4.5.2"]
    task = scoped_plan(plan, Scope(task="1.2"))
    assert [t.id for d in task.directions for t in d.tasks] == ["1.2"]
    assert scoped_plan(plan, Scope()) is plan


# ---------------------------------------------------------------- warnings, message parts, templates


def test_draft_warnings_use_the_rows_other_reports(catalog: Catalog) -> None:
    measure = catalog.measure("1.1.1")  # 1.1.1.2 people trained, target 120
    assert draft_warnings("lv", catalog, measure, 2026, {"1.1.1.2": 100}, {}) == []
    found = draft_warnings(
        "lv", catalog, measure, 2026, {"1.1.1.2": 100}, {"1.1.1.2": {2025: 300, 2027: 999}}
    )
    assert found == ["kopējā vērtība 400 vairāk nekā 3 reizes pārsniedz mērķi (120)"]
    assert draft_warnings("en", catalog, measure, 2026, {"1.1.1.1": "risk"}, {}) == []
    # another institution's report of the same year is part of the row, as when compiling
    found = draft_warnings("en", catalog, measure, 2026, {"1.1.1.2": 100}, {"1.1.1.2": {2026: 270}})
    assert found == ["cumulative value 370 is above 3 × the target (120)"]
    # ... but others' rows the draft leaves empty are not this contact's warning
    assert draft_warnings("lv", catalog, measure, 2026, {}, {"1.1.1.2": {2025: 999}}) == []


def test_policy_card_shows_an_entered_history_value(catalog: Catalog) -> None:
    actuals = [PolicyActual("PR1.RR2", 2023, 13.4, "IS PLUS", "K", dt.datetime(2026, 2, 1, tzinfo=RIGA))]
    table = compile_policy_results(catalog, MAIN_PLAN, actuals)
    card = policy_card("lv", table, "PR1.RR2")
    assert "2022: 12 (pase)" in card and "2023: 13,4 (ievadīts, avots: IS PLUS; pasē: 13)" in card
    assert "2023: 13.4 (entered, source: IS PLUS; passport: 13)" in policy_card("en", table, "PR1.RR2")


def test_chunks_split_at_line_ends() -> None:
    message = "\n".join(f"line {i:03d} " + "x" * 90 for i in range(100))
    parts = chunks(message, limit=1000)
    assert all(len(p) <= 1000 for p in parts)
    assert "\n".join(parts) == message
    assert chunks("short") == ["short"]


@pytest.mark.parametrize("feature", ["coordinator"])
def test_lv_and_en_have_the_same_macros(feature: str) -> None:
    lv, en = _messages("lv", feature), _messages("en", feature)

    def macros(module: object) -> dict[str, tuple[str, ...]]:
        return {
            name: tuple(getattr(module, name).arguments)
            for name in dir(module)
            if not name.startswith("_")
            and callable(getattr(module, name))
            and hasattr(getattr(module, name), "arguments")
        }

    assert macros(lv) == macros(en)
    assert len(macros(lv)) > 40


# ---------------------------------------------------------------- the scheduled job


async def test_compile_for_coordinators(sqlite_url: str, catalog: Catalog, tmp_path) -> None:
    await prepare_database(sqlite_url, catalog)
    db = Database(sqlite_url)
    try:
        async with db.session() as s:
            repos = Repos(s)
            tm = await repos.people.institution("TM")
            vpd = await repos.people.institution("VPD")
            lv = await repos.people.add_contact(
                display_name="K", institution_id=tm.id, role="coordinator", telegram_user_id=11
            )
            en = await repos.people.add_contact(
                display_name="A", institution_id=tm.id, role="admin", telegram_user_id=12, language="en"
            )
            await repos.people.add_contact(display_name="C", institution_id=vpd.id, telegram_user_id=13)
            await repos.people.add_contact(
                display_name="N", institution_id=tm.id, role="coordinator"
            )  # no chat
            m = await repos.catalog.measure("1.3.3")
            await repos.reports.submit(
                measure_id=m.id, institution_id=vpd.id, year=2026, answers={"1.3.3.1": 30}, contact_id=None
            )
        settings = Settings(database_url=sqlite_url, _env_file=None)
        services = Services(db=db, catalog=catalog, settings=settings)
        now = at(2026, 12, 1, 8)
        sent = await compile_for_coordinators(services, year=2026, kind="monthly", now=now, out_root=tmp_path)
        assert [(c, chat) for c, chat, _, _ in sent] == [(lv.id, 11), (en.id, 12)]
        _, _, text_lv, files_lv = sent[0]
        assert "Mēneša kopsavilkums" in text_lv and "VPD: 1/30" in text_lv and "NH-2024" in text_lv
        assert [p.name for p in files_lv] == [
            "RPP-2025-2027_2026.xlsx",
            "RPP-2025-2027_2026_progress.png",
            "RPP-2025-2027_2026_completeness.png",
            "NH-2024_2026.xlsx",
        ]
        assert all(p.parent == tmp_path / "20261201T080000" / "lv" for p in files_lv)
        ws = load_workbook(files_lv[0])["1. rīcības virziens"]
        assert any(ws.cell(r, 9).value == 30 for r in range(1, ws.max_row + 1))
        assert "Monthly summary" in sent[1][2] and sent[1][3][0].parent.name == "en"
        annual = await compile_for_coordinators(
            services, year=2026, kind="annual", now=now, out_root=tmp_path / "a"
        )
        assert "Gada kopsavilkums par 2026. gadu" in annual[0][2]
        assert any(p.suffix == ".docx" for p in annual[0][3])
        with pytest.raises(ValueError):
            await compile_for_coordinators(services, year=2026, kind="weekly")
        with pytest.raises(InputError):
            await compile_for_coordinators(services, year=2030, kind="annual")
    finally:
        await db.dispose()
