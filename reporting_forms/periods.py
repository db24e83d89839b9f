"""Reporting periods: calendar years of the plan (``reporting_forms.calendar``); which ones are
open for reports today."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo

from reporting_forms.calendar import default_calendar

# The previous year stays open for late reports and corrections until this day (month, day).
PREVIOUS_YEAR_OPEN_UNTIL = (3, 31)


def open_years(today: dt.date, first: int | None = None, last: int | None = None) -> list[int]:
    """Years a contact may report on today, newest first: the current year, plus the previous
    year until 31 March; only years of the plan (``first``..``last``, default the calendar's)."""
    calendar = default_calendar()
    first = calendar.first_year if first is None else first
    last = calendar.last_year if last is None else last
    years = [today.year]
    if (today.month, today.day) <= PREVIOUS_YEAR_OPEN_UNTIL:
        years.append(today.year - 1)
    return [y for y in years if first <= y <= last]


def filing_years(today: dt.date, reopened: Mapping[int, dt.date]) -> list[int]:
    """Years an institution's contacts may file today, newest first: the open periods
    (:func:`open_years`) and the years reopened for it (year → its last day) until that day."""
    years = open_years(today)
    extra = [year for year, until in reopened.items() if year not in years and today <= until]
    return years + sorted(extra, reverse=True)


def report_deadline(year: int, grace_days: int = 0) -> dt.date:
    """The day a year's reports are due: 31 December, plus the grace days (status_rules.yaml)."""
    return dt.date(year, 12, 31) + dt.timedelta(days=grace_days)


def filed_late(year: int, first_submitted: dt.datetime | None, tz: tzinfo, grace_days: int = 0) -> bool:
    """A report first submitted after its year's deadline (local time): late filing, e.g. a year
    reopened by a coordinator."""
    if first_submitted is None:
        return False
    local = first_submitted.astimezone(tz).date() if first_submitted.tzinfo else first_submitted.date()
    return local > report_deadline(year, grace_days)


def is_closed(year: int, today: dt.date) -> bool:
    """A year is closed for filing after 31 March of the next year (``PREVIOUS_YEAR_OPEN_UNTIL``)."""
    return today > dt.date(year + 1, *PREVIOUS_YEAR_OPEN_UNTIL)


@dataclass(frozen=True, slots=True)
class ReportingWindow:
    """Which (institution, year) reports the bot expects and chases.

    ``from_year`` is the first year the bot chases (``REPORTING_FROM_YEAR``, stored at the first
    ``resobot init``): earlier years are neither reminded nor overdue nor counted in completeness
    (documents show them as "nav datu"). A coordinator can reopen a closed year for one
    institution (``/reopen YEAR VPD``): ``reopened`` maps (institution, year) to the last day it
    stays open; its contacts may then file it (late), and it is expected and chased until then.
    """

    from_year: int = field(default_factory=lambda: default_calendar().first_year)
    reopened: Mapping[tuple[str, int], dt.date] = field(default_factory=dict)

    def expected(self, institution: str, year: int) -> bool:
        """Counted in completeness and timeliness: a year from ``from_year`` on, or one reopened
        for the institution."""
        return year >= self.from_year or (institution, year) in self.reopened

    def reopened_on(self, institution: str, year: int, today: dt.date) -> bool:
        until = self.reopened.get((institution, year))
        return until is not None and today <= until

    def open_years(self, today: dt.date, institution: str) -> list[int]:
        """Years the institution's contacts may file today, newest first: the open periods
        (``open_years``) and the years reopened for it."""
        mine = {year: until for (inst, year), until in self.reopened.items() if inst == institution}
        return filing_years(today, mine)

    def chased(self, institution: str, year: int, today: dt.date) -> bool:
        """Reminded, listed by /overdue and in the digest: expected, and not yet closed for
        filing (a closed year is not chased for ever) or reopened for the institution."""
        if not self.expected(institution, year):
            return False
        return not is_closed(year, today) or self.reopened_on(institution, year, today)

    def no_data(self, institutions: Iterable[str], year: int) -> bool:
        """A year nobody of ``institutions`` is expected to report on: "nav datu" in documents."""
        return not any(self.expected(inst, year) for inst in institutions)


def reopen_refusal(year: int, today: dt.date, plan_years: Iterable[int]) -> str | None:
    """Why ``year`` cannot be reopened today (a message code), or None. Only a plan year that
    has ended and is closed for filing (``is_closed``) can be reopened."""
    if year not in tuple(plan_years):
        return "year_outside_plan"
    if year >= today.year:
        return "reopen_not_ended"
    if not is_closed(year, today):
        return "reopen_still_open"
    return None
