"""The plan calendar: the one source of the reporting period, the main plan and the default
time zone.

The period comes from the catalog: the plan flagged ``main: true`` declares its ``period`` (the
years contacts report on, reminders and compilations run for, and the tables show) and its
``guidelines_period`` (the policy guidelines' years: policy-result actuals may be entered for
them; those before the plan's own period are the passports' history). Nothing else in the code
names a plan year or the main plan's id.

The time zone is a setting (``TIMEZONE``); ``DEFAULT_TIMEZONE`` is its default and the default
of the pure functions that take a ``tz`` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

from reporting_forms.catalog import Catalog, CatalogError, Plan, PlanPeriod, default_catalog

DEFAULT_TIMEZONE = "Europe/Riga"
DEFAULT_TZ = ZoneInfo(DEFAULT_TIMEZONE)


@dataclass(frozen=True, slots=True)
class PlanCalendar:
    """The main plan's id and period, and its guidelines' period."""

    main_plan: str
    period: PlanPeriod
    guidelines: PlanPeriod

    @property
    def years(self) -> tuple[int, ...]:
        """The plan's years (report years, table columns)."""
        return self.period.years

    @property
    def first_year(self) -> int:
        return self.period.start.year

    @property
    def last_year(self) -> int:
        """The plan's last year: the year of the indicator rows' targets."""
        return self.period.end.year

    @property
    def guideline_years(self) -> tuple[int, ...]:
        """The guidelines' years: policy-result actuals may be entered for them."""
        return self.guidelines.years

    @property
    def history_years(self) -> tuple[int, ...]:
        """The guidelines' years before the plan's own period (the passports' history)."""
        return tuple(y for y in self.guideline_years if y < self.first_year)

    def in_plan(self, year: int) -> bool:
        return self.first_year <= year <= self.last_year


def plan_calendar(catalog: Catalog) -> PlanCalendar:
    """The calendar of a catalog's main plan. Raises CatalogError when it declares no period."""
    plan: Plan = catalog.main_plan
    if plan.period is None:
        raise CatalogError(plan.source, plan.id, "the main plan needs a period (start, end)")
    return PlanCalendar(plan.id, plan.period, plan.guidelines_period or plan.period)


@cache
def default_calendar() -> PlanCalendar:
    """The packaged catalog's calendar."""
    return plan_calendar(default_catalog())
