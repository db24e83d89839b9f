"""Latvian working days, from the ``holidays`` package, cached per year.

A working day is Monday–Friday that is not a public holiday or a transferred day off,
plus any Saturday the Cabinet declared a working day in exchange for a day off
(e.g. Saturday 17 January 2026 pays for Friday 2 January 2026). ``holidays`` lists the
days off as holidays and the worked Saturdays in ``weekend_workdays``.

The running bot needs these days at start (it plans today's reminders) but not the package:
importing ``holidays`` takes ~4 MB of the idle bot's memory (its calendars of every kind, the
country registry, dateutil; issue 12 item 6). So Latvia's days off and worked Saturdays of
``TABLE_YEARS``, as the package gives them, are kept in ``workdays_lv.json`` with the package
version they were read from, and used while that version is the one installed; anything else —
another version, year or country, a holiday's name — asks the package itself.
tests/test_workdays.py checks the file against the package; ``make lock`` (which may move to a
newer ``holidays``) writes it again: ``python -m reporting_forms.workdays``.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import importlib.util
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import holidays

COUNTRY = "LV"
_ONE_DAY = dt.timedelta(days=1)
TABLE = Path(__file__).with_name("workdays_lv.json")
TABLE_YEARS = range(2020, 2041)


def holidays_version() -> str | None:
    """The installed ``holidays`` version (read from its metadata: the package is not imported)."""
    try:
        return importlib.metadata.version("holidays")
    except importlib.metadata.PackageNotFoundError:
        return None


def read_table(
    country: str = COUNTRY, path: Path = TABLE
) -> dict[int, tuple[frozenset[dt.date], frozenset[dt.date]]]:
    """(days off, worked weekend days) per year from ``path`` — empty when it was written from
    another ``holidays`` version than the installed one, is for another country, or is missing."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if raw.get("country") != country or raw.get("holidays") != holidays_version():
        return {}
    day = dt.date.fromisoformat
    return {
        int(year): (frozenset(map(day, days["off"])), frozenset(map(day, days["worked"])))
        for year, days in raw["years"].items()
    }


def table_from_package(years: Iterable[int] = TABLE_YEARS, country: str = COUNTRY) -> dict[str, Any]:
    """What ``workdays_lv.json`` holds, read from the installed ``holidays``."""
    found: dict[str, Any] = {}
    for year in years:
        off, worked = _days_from_package(year, country)
        found[str(year)] = {"off": sorted(map(str, off)), "worked": sorted(map(str, worked))}
    return {"country": country, "holidays": holidays_version(), "years": found}


def table_text(table: dict[str, Any]) -> str:
    """The table as JSON, one year a line."""
    years = [f"  {json.dumps(year)}: {json.dumps(days)}" for year, days in table["years"].items()]
    return (
        "{\n"
        f' "country": {json.dumps(table["country"])},\n'
        f' "holidays": {json.dumps(table["holidays"])},\n'
        ' "years": {\n' + ",\n".join(years) + "\n }\n}\n"
    )


@cache
def _country(country: str) -> type[holidays.HolidayBase] | None:
    """The country's calendar class, read from its own module of ``holidays.countries``.

    ``holidays.country_holidays`` imports that package, and with it the modules of all ~250
    countries (~5 MB of the idle bot's memory, issue 12 item 6), to use one. None when the
    package is not laid out as expected: :func:`_calendar` then asks ``holidays`` the usual way."""
    import holidays
    from holidays.registry import COUNTRIES

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
    import holidays

    entity = _country(country)
    if entity is None:
        return holidays.country_holidays(country, years=year)
    return entity(years=year)


def _days_from_package(year: int, country: str) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    cal = _calendar(year, country)
    return (
        frozenset(d for d in cal if d.year == year),
        frozenset(d for d in cal.weekend_workdays if d.year == year),
    )


@cache
def _table(country: str) -> dict[int, tuple[frozenset[dt.date], frozenset[dt.date]]]:
    return read_table(country) if country == COUNTRY else {}


def _days_off(year: int, country: str) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """(days off, worked weekend days) of ``year``: from the table when it holds the year for
    the installed ``holidays``, else from the package."""
    found = _table(country).get(year)
    return found if found is not None else _days_from_package(year, country)


@cache
def _working_days(year: int, country: str = COUNTRY) -> tuple[dt.date, ...]:
    """Every working day of ``year`` in order."""
    off, extra = _days_off(year, country)
    day, days = dt.date(year, 1, 1), []
    while day.year == year:
        if (day.weekday() < 5 and day not in off) or day in extra:
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


if __name__ == "__main__":  # python -m reporting_forms.workdays: write the table again
    TABLE.write_text(table_text(table_from_package()), encoding="utf-8")
    print(f"{TABLE}: {COUNTRY} {TABLE_YEARS.start}–{TABLE_YEARS.stop - 1}, holidays {holidays_version()}")
