"""One source per calendar fact (issue 12, item 3): the plan period and the main plan come from
the catalog (``reporting_forms.calendar.PlanCalendar``), the time zone from the TIMEZONE setting
(default ``DEFAULT_TIMEZONE``), and no module of bot/, services/ or reporting_forms/ names them
in code."""

from __future__ import annotations

import ast
import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from reporting_forms.calendar import DEFAULT_TIMEZONE, default_calendar, plan_calendar
from reporting_forms.catalog import PLANS_DIR, CatalogError, default_catalog, load_catalog_at
from reporting_forms.compilation import ReportedValue, default_status_rules
from reporting_forms.exports.revisions import RevisionRow, revisions_csv
from reporting_forms.inputs import check_year, plan_years, resolve_plan
from reporting_forms.periods import ReportingWindow, open_years
from reporting_forms.policy_values import actual_years, parse_actual_year
from reporting_forms.reminder_policy import load_policy
from reporting_forms.schedule import next_compile_run
from reporting_forms.summaries import CompileInputs, compile_inputs, parse_summary_args
from services.reminder_planner import ReminderPlanner

ROOT = Path(__file__).resolve().parents[1]
TOKYO = "Asia/Tokyo"


# ---------------------------------------------------------------- the plan period and main plan


def test_the_calendar_is_the_main_plans_declared_period() -> None:
    catalog = default_catalog()
    calendar = default_calendar()
    main = catalog.main_plan
    assert main.main and calendar.main_plan == main.id
    assert main.period is not None and main.guidelines_period is not None
    assert calendar.years == main.period.years == (2025, 2026, 2027)
    assert calendar.guideline_years == main.guidelines_period.years == tuple(range(2022, 2028))
    assert calendar.history_years == (2022, 2023, 2024)
    # every reader asks the calendar
    assert plan_years() == calendar.years
    rules = default_status_rules()
    assert (rules.period.start, rules.period.end) == (calendar.period.start, calendar.period.end)
    assert rules.history_years == calendar.history_years
    cycle = load_policy().cycle
    assert tuple(cycle.years) == calendar.years
    assert ReportingWindow().from_year == calendar.first_year
    assert actual_years() == (calendar.guideline_years[0], calendar.guideline_years[-1])
    assert open_years(dt.date(calendar.last_year + 1, 2, 1)) == [calendar.last_year]
    assert open_years(dt.date(calendar.last_year + 2, 2, 1)) == []


def test_the_main_plan_is_what_the_catalog_says() -> None:
    catalog = default_catalog()
    assert resolve_plan(catalog, None) == catalog.main_plan.id
    assert resolve_plan(catalog, "rpp") == catalog.main_plan.id
    assert resolve_plan(catalog, "NH") != catalog.main_plan.id
    assert parse_summary_args(catalog, "").plan_id == catalog.main_plan.id
    assert catalog.plans_main_first()[0] is catalog.main_plan
    assert catalog.plans[0] is not catalog.main_plan  # files load in name order: the flag decides


def _copy_plans(tmp_path: Path) -> Path:
    folder = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_changed_period_in_the_yaml_changes_the_calendar(tmp_path: Path) -> None:
    folder = _copy_plans(tmp_path)
    _edit(
        folder / "resocialisation_2025_2027.yaml",
        "period: {start: 2025-01-01, end: 2027-12-31}",
        "period: {start: 2025-01-01, end: 2028-12-31}",
    )
    calendar = plan_calendar(load_catalog_at(folder))
    assert calendar.years == (2025, 2026, 2027, 2028)
    assert calendar.last_year == 2028


def test_two_main_plans_are_refused(tmp_path: Path) -> None:
    folder = _copy_plans(tmp_path)
    _edit(folder / "informal_hierarchy.yaml", "alias: NH\n", "alias: NH\nmain: true\n")
    with pytest.raises(CatalogError, match="main: true on more than one plan"):
        load_catalog_at(folder)


def test_a_main_plan_without_a_period_is_refused(tmp_path: Path) -> None:
    folder = _copy_plans(tmp_path)
    _edit(folder / "resocialisation_2025_2027.yaml", "period: {start: 2025-01-01, end: 2027-12-31}\n", "")
    with pytest.raises(CatalogError, match="needs a period"):
        load_catalog_at(folder)


def test_years_outside_the_calendar_are_refused() -> None:
    calendar = default_calendar()
    with pytest.raises(ValueError, match="year_outside_plan"):
        check_year(calendar.last_year + 1)
    assert parse_actual_year(str(calendar.guideline_years[0])) == calendar.guideline_years[0]
    with pytest.raises(ValueError, match="bad_year"):
        parse_actual_year(str(calendar.guideline_years[0] - 1))
    Settings(_env_file=None, reporting_from_year=calendar.last_year)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="a year of the plan"):
        Settings(_env_file=None, reporting_from_year=calendar.last_year + 1)  # type: ignore[call-arg]


# ---------------------------------------------------------------- the time zone


def _settings(monkeypatch: pytest.MonkeyPatch, zone: str | None) -> Settings:
    if zone is None:
        monkeypatch.delenv("TIMEZONE", raising=False)
    else:
        monkeypatch.setenv("TIMEZONE", zone)
    monkeypatch.delenv("REMINDER_POLICY_OVERRIDES", raising=False)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_default_time_zone_is_one_constant(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch, None)
    assert settings.timezone == DEFAULT_TIMEZONE
    assert settings.reminder_policy.timezone == DEFAULT_TIMEZONE
    assert load_policy().timezone == default_status_rules().timezone == DEFAULT_TIMEZONE


def _compiled_on_time(settings: Settings) -> tuple[str, int]:
    """A report for 2025 sent at 23:30 on 31 December in Rīga (06:30 on 1 January in Tokyo)."""
    sent = dt.datetime(2025, 12, 31, 21, 30, tzinfo=dt.UTC)
    values = [
        ReportedValue(1, "1.1.2", ind, "VPD", 2025, 5, None, None, 1, sent, "accepted")
        for ind in ("1.1.2.1", "1.1.2.2")
    ]
    compiled = compile_inputs(
        default_catalog(),
        CompileInputs(values=values, first_submitted={}),
        plan_id=default_calendar().main_plan,
        year=2025,
        as_of=dt.date(2026, 6, 1),
        timezone=settings.timezone,
    ).plan
    row = next(r for r in compiled.completeness.rows if r.institution == "VPD" and r.year == 2025)
    return compiled.timezone, row.on_time


def test_the_timezone_setting_reaches_every_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    riga, tokyo = _settings(monkeypatch, None), _settings(monkeypatch, TOKYO)
    assert tokyo.tz == ZoneInfo(TOKYO)

    # reminders: the policy the scheduler, the sender and the planner use
    assert tokyo.reminder_policy.tz == ZoneInfo(TOKYO)
    # the planning day: 20:00 UTC is still 1 December in Rīga, already 2 December in Tokyo
    now = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC)
    planner: Any = ReminderPlanner
    assert planner(None, riga.reminder_policy, ()).today(now) == dt.date(2026, 12, 1)
    assert planner(None, tokyo.reminder_policy, ()).today(now) == dt.date(2026, 12, 2)
    # a reminder's send moment
    day = dt.date(2026, 12, 1)
    assert tokyo.reminder_policy.send_at(day).utcoffset() == dt.timedelta(hours=9)

    # the compile schedule (bot/scheduler.py passes the policy's zone): 08:00 local
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    run_riga = next_compile_run(start, riga.reminder_policy.tz)
    run_tokyo = next_compile_run(start, tokyo.reminder_policy.tz)
    assert run_riga is not None and run_tokyo is not None
    assert run_tokyo.at.time() == run_riga.at.time() == dt.time(8, 0)
    assert run_tokyo.at.utcoffset() == dt.timedelta(hours=9)

    # revision export times (the /export handler passes settings.tz)
    row = RevisionRow(
        1, "1.1.2", "VPD", 2025, 1, "K", dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC), "f", 1, "accepted"
    )
    assert "2026-03-01 14:00" in revisions_csv([row], tz=riga.tz).decode("utf-8-sig")
    assert "2026-03-01 21:00" in revisions_csv([row], tz=tokyo.tz).decode("utf-8-sig")

    # compilations: report dates (on time or late) are judged in the setting's zone
    assert _compiled_on_time(riga) == (DEFAULT_TIMEZONE, 1)
    assert _compiled_on_time(tokyo) == (TOKYO, 0)


# ---------------------------------------------------------------- no literal anywhere else

FACTS = re.compile(r"\b(?:2022|2025|2027)\b|Europe/Riga|RPP-20\d\d")
YEAR_INTS = {2022, 2025, 2027}
ONE_SOURCE = {("reporting_forms/calendar.py", DEFAULT_TIMEZONE)}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _tree_hits(tree: ast.AST, name: str) -> list[tuple[int, object]]:
    """(line, value) of every plan-year int and every string naming a plan year, the default
    zone or the main plan's id, docstrings aside."""
    docs = _docstrings(tree)
    hits: list[tuple[int, object]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docs:
            continue
        value = node.value
        year = isinstance(value, int) and not isinstance(value, bool) and value in YEAR_INTS
        named = isinstance(value, str) and bool(FACTS.search(value)) and (name, value) not in ONE_SOURCE
        if year or named:
            hits.append((node.lineno, value))
    return hits


def test_no_plan_year_time_zone_or_main_plan_literal_outside_the_one_source() -> None:
    found = []
    for package in ("bot", "services", "reporting_forms"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += [f"{name}:{line}: {value!r}" for line, value in _tree_hits(tree, name)]
    assert found == []


def test_no_plan_year_in_the_templates() -> None:
    """Texts name plan years through ``plan_calendar()`` (a Jinja global), never literally."""
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{n}: {line.strip()[:60]}"
        for path in sorted((ROOT / "templates").rglob("*.j2"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if FACTS.search(line)
    ]
    assert found == []


def test_the_scan_finds_a_literal() -> None:
    source = (
        'X = 2027\nZONE = "Europe/Riga"\n'
        'def f() -> str:\n    """2025 in a docstring."""\n    return "RPP-2025-2027"\n'
    )
    hits = _tree_hits(ast.parse(source), "bot/example.py")
    assert [value for _, value in hits] == [2027, "Europe/Riga", "RPP-2025-2027"]
    assert _tree_hits(ast.parse('Z = "Europe/Riga"\n'), "reporting_forms/calendar.py") == []
