"""Latvian working days, from the ``holidays`` package, cached per year.

A working day is Monday–Friday that is not a public holiday or a transferred day off,
plus any Saturday the Cabinet declared a working day in exchange for a day off
(e.g. Saturday 17 January 2026 pays for Friday 2 January 2026). ``holidays`` lists the
days off as holidays and the worked Saturdays in ``weekend_workdays``.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from functools import cache
from pathlib import Path

import holidays
from holidays.registry import COUNTRIES

COUNTRY = "LV"
_ONE_DAY = dt.timedelta(days=1)


@cache
def _country(country: str) -> type[holidays.HolidayBase] | None:
    """The country's calendar class, read from its own module of ``holidays.countries``.

    ``holidays.country_holidays`` imports that package, and with it the modules of all ~250
    countries (~5 MB of the idle bot's memory, issue 12 item 6), to use one. None when the
    package is not laid out as expected: :func:`_calendar` then asks ``holidays`` the usual way."""
    for module, (name, *codes) in COUNTRIES.items():
        if country not in codes:
            continue
        path = Path(holidays.__file__).parent / "countries" / f"{module}.py"
        spec = importlib.util.spec_from_file_location(f"holidays.countries.{module}", path)
        if spec is None or spec.loader is None or not path.is_file():
            return None
        found = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(found)
        entity = getattr(found, name, None)
        return entity if isinstance(entity, type) and issubclass(entity, holidays.HolidayBase) else None
    return None


@cache
def _calendar(year: int, country: str = COUNTRY) -> holidays.HolidayBase:
    entity = _country(country)
    if entity is None:
        return holidays.country_holidays(country, years=year)
    return entity(years=year)


@cache
def _working_days(year: int, country: str = COUNTRY) -> tuple[dt.date, ...]:
    """Every working day of ``year`` in order."""
    cal = _calendar(year, country)
    extra = {d for d in cal.weekend_workdays if d.year == year}
    day, days = dt.date(year, 1, 1), []
    while day.year == year:
        if (day.weekday() < 5 and day not in cal) or day in extra:
            days.append(day)
        day += _ONE_DAY
    return tuple(days)


@cache
def _working_set(year: int, country: str = COUNTRY) -> frozenset[dt.date]:
    return frozenset(_working_days(year, country))


def is_working_day(d: dt.date, country: str = COUNTRY) -> bool:
    return d in _working_set(d.year, country)


def previous_working_day(d: dt.date, country: str = COUNTRY) -> dt.date:
    """``d`` itself if it is a working day, else the closest working day before it."""
    while not is_working_day(d, country):
        d -= _ONE_DAY
    return d


def next_working_day(d: dt.date, country: str = COUNTRY) -> dt.date:
    """The first working day strictly after ``d`` (for "Atgādināt rīt" snoozes)."""
    d += _ONE_DAY
    while not is_working_day(d, country):
        d += _ONE_DAY
    return d


@cache
def _working_days_of_month(year: int, month: int, country: str = COUNTRY) -> tuple[dt.date, ...]:
    return tuple(d for d in _working_days(year, country) if d.month == month)


def nth_working_day(year: int, month: int, n: int, country: str = COUNTRY) -> dt.date:
    """The ``n``-th (1-based) working day of the month. ValueError if the month has fewer."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    days = _working_days_of_month(year, month, country)
    if n > len(days):
        raise ValueError(f"{year}-{month:02d} has only {len(days)} working days, asked for #{n}")
    return days[n - 1]


def holiday_name(d: dt.date, country: str = COUNTRY) -> str | None:
    """The public holiday / day-off name of ``d`` (English, from ``holidays``), or None."""
    return _calendar(d.year, country).get(d)
