"""The compile schedule: the monthly summary on the first working day of each month and the
annual one on 15 January, at 08:00 in the TIMEZONE setting's zone, for the years of the plan period."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from reporting_forms.calendar import DEFAULT_TZ
from reporting_forms.inputs import plan_years
from reporting_forms.workdays import nth_working_day

COMPILE_AT = dt.time(8, 0)
ANNUAL_ON = (1, 15)  # month, day


@dataclass(frozen=True, order=True)
class CompileRun:
    """A scheduled compilation: when (aware), which kind, which year it compiles."""

    at: dt.datetime
    kind: str  # "monthly" | "annual"
    year: int


def monthly_run(year: int, month: int, tz: ZoneInfo = DEFAULT_TZ) -> CompileRun:
    """First working day of the month at 08:00; it compiles the year of the month just ended."""
    day = nth_working_day(year, month, 1)
    return CompileRun(dt.datetime.combine(day, COMPILE_AT, tz), "monthly", year if month > 1 else year - 1)


def annual_run(year: int, tz: ZoneInfo = DEFAULT_TZ) -> CompileRun:
    """15 January at 08:00: the previous year's annual summary."""
    day = dt.date(year, *ANNUAL_ON)
    return CompileRun(dt.datetime.combine(day, COMPILE_AT, tz), "annual", year - 1)


def compile_runs(start: dt.date, end: dt.date, tz: ZoneInfo = DEFAULT_TZ) -> list[CompileRun]:
    """Every run on a day in [start, end] that compiles a year of the plan period, in time order."""
    years = plan_years()
    runs: list[CompileRun] = []
    for year in range(start.year, end.year + 1):
        runs.extend(monthly_run(year, month, tz) for month in range(1, 13))
        runs.append(annual_run(year, tz))
    return sorted(r for r in runs if start <= r.at.date() <= end and r.year in years)


def next_compile_run(now: dt.datetime, tz: ZoneInfo = DEFAULT_TZ) -> CompileRun | None:
    """The first run at or after ``now`` (aware); None after the plan period's last run."""
    local = now.astimezone(tz)
    later = compile_runs(local.date(), dt.date(plan_years()[-1] + 1, 12, 31), tz)
    return next((r for r in later if r.at >= now), None)


JOB_FORMATS: dict[str, tuple[str, ...]] = {"monthly": ("xlsx", "png"), "annual": ("xlsx", "docx", "png")}


def compile_job_name(kind: str) -> str:
    return f"compile.{kind}"


def due_compile_runs(now: dt.datetime, lookback_days: int, tz: ZoneInfo = DEFAULT_TZ) -> list[CompileRun]:
    """Runs whose time has come within the last ``lookback_days`` days (a run missed while the
    bot was down is done late rather than never), oldest first."""
    local = now.astimezone(tz)
    start = local.date() - dt.timedelta(days=lookback_days)
    return [r for r in compile_runs(start, local.date(), tz) if r.at <= local]
