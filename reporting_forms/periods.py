"""Reporting periods: calendar years of the plan; which ones are open for reports today."""

from __future__ import annotations

import datetime as dt

FIRST_YEAR = 2025
LAST_YEAR = 2027
# The previous year stays open for late reports and corrections until this day (month, day).
PREVIOUS_YEAR_OPEN_UNTIL = (3, 31)


def open_years(today: dt.date, first: int = FIRST_YEAR, last: int = LAST_YEAR) -> list[int]:
    """Years a contact may report on today, newest first: the current year, plus the previous
    year until 31 March; only years of the plan."""
    years = [today.year]
    if (today.month, today.day) <= PREVIOUS_YEAR_OPEN_UNTIL:
        years.append(today.year - 1)
    return [y for y in years if first <= y <= last]
