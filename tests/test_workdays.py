"""Latvian working days: tables of concrete dates (checked against `holidays` LV)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import holidays
import pytest

from reporting_forms import workdays
from reporting_forms.workdays import (
    holiday_name,
    is_working_day,
    next_working_day,
    nth_working_day,
    previous_working_day,
)

D = dt.date.fromisoformat

WEEKDAYS = [
    ("2026-11-18", "Wednesday"),
    ("2026-12-01", "Tuesday"),
    ("2026-12-26", "Saturday"),
    ("2026-12-23", "Wednesday"),
    ("2026-12-29", "Tuesday"),
    ("2027-01-15", "Friday"),
    ("2026-01-17", "Saturday"),
]


@pytest.mark.parametrize(("day", "weekday"), WEEKDAYS)
def test_calendar_facts_used_below(day: str, weekday: str) -> None:
    assert D(day).strftime("%A") == weekday


NOT_WORKING = [
    ("2026-11-18", "Proclamation Day (Wednesday)"),
    ("2026-12-24", "Christmas Eve"),
    ("2026-12-25", "Christmas Day"),
    ("2026-12-26", "Second Day of Christmas, also a Saturday"),
    ("2026-12-31", "New Year's Eve"),
    ("2027-01-01", "New Year's Day"),
    ("2025-12-31", "New Year's Eve"),
    ("2026-01-01", "New Year's Day"),
    ("2026-01-02", "day off transferred from Saturday 17 January 2026"),
    ("2026-06-22", "day off transferred from Saturday 27 June 2026"),
    ("2025-05-02", "day off transferred from Saturday 10 May 2025"),
    ("2025-11-17", "day off transferred from Saturday 8 November 2025"),
    ("2025-05-05", "4 May on a Sunday: observed on Monday"),
    ("2026-04-03", "Good Friday"),
    ("2026-04-06", "Easter Monday"),
    ("2026-06-23", "Midsummer Eve"),
    ("2026-06-24", "Midsummer Day"),
    ("2026-12-27", "ordinary Sunday"),
]

WORKING = [
    ("2026-11-17", "Tuesday before Proclamation Day"),
    ("2026-11-19", "Thursday after Proclamation Day"),
    ("2026-12-01", "Tuesday"),
    ("2026-12-23", "Wednesday before Christmas Eve"),
    ("2026-12-29", "Tuesday"),
    ("2026-12-30", "Wednesday"),
    ("2025-12-30", "Tuesday"),
    ("2027-01-04", "first Monday of 2027"),
    ("2026-01-17", "Saturday worked in exchange for 2 January 2026"),
    ("2026-06-27", "Saturday worked in exchange for 22 June 2026"),
    ("2025-05-10", "Saturday worked in exchange for 2 May 2025"),
    ("2025-11-08", "Saturday worked in exchange for 17 November 2025"),
]


@pytest.mark.parametrize(("day", "why"), NOT_WORKING)
def test_not_working_days(day: str, why: str) -> None:
    assert not is_working_day(D(day)), why


@pytest.mark.parametrize(("day", "why"), WORKING)
def test_working_days(day: str, why: str) -> None:
    assert is_working_day(D(day)), why


@pytest.mark.parametrize(
    ("day", "name_part"),
    [("2026-11-18", "Proclamation"), ("2026-01-02", "substituted"), ("2026-12-23", None)],
)
def test_holiday_name(day: str, name_part: str | None) -> None:
    name = holiday_name(D(day))
    assert (name is None) if name_part is None else (name_part in (name or ""))


PREVIOUS = [
    ("2026-12-26", "2026-12-23", "Saturday after Christmas → Wednesday 23 December"),
    ("2026-12-25", "2026-12-23", "Christmas Day"),
    ("2026-12-23", "2026-12-23", "a working day is its own previous working day"),
    ("2026-11-18", "2026-11-17", "Proclamation Day"),
    ("2026-01-01", "2025-12-30", "1 January holiday, 31 December holiday too"),
    ("2026-01-04", "2025-12-30", "Sunday, Saturday, transferred 2 January, 1 January, 31 December"),
    ("2027-01-01", "2026-12-30", "1 January 2027 → 31 December holiday → 30 December"),
    ("2026-03-02", "2026-03-02", "Monday"),
    ("2026-06-28", "2026-06-27", "Sunday → the worked Saturday before it"),
    ("2026-06-24", "2026-06-19", "Midsummer: 24, 23, 22 (transferred) off, 21-20 weekend"),
]


@pytest.mark.parametrize(("day", "expected", "why"), PREVIOUS)
def test_previous_working_day(day: str, expected: str, why: str) -> None:
    assert previous_working_day(D(day)) == D(expected), why


NEXT = [
    ("2026-12-23", "2026-12-28", "snooze on 23 December → Monday 28 December"),
    ("2026-12-28", "2026-12-29", "strictly after: a working day gives the next one"),
    ("2026-12-30", "2027-01-04", "over New Year's Eve, New Year and the weekend"),
    ("2026-11-17", "2026-11-19", "over Proclamation Day"),
    ("2026-01-16", "2026-01-17", "the worked Saturday"),
    ("2026-12-24", "2026-12-28", "from a holiday"),
]


@pytest.mark.parametrize(("day", "expected", "why"), NEXT)
def test_next_working_day(day: str, expected: str, why: str) -> None:
    assert next_working_day(D(day)) == D(expected), why


NTH = [
    (2027, 1, 10, "2027-01-15", "the overdue reminder for report year 2026"),
    (2027, 1, 1, "2027-01-04", "1 January is a holiday, 2-3 January a weekend"),
    (2026, 1, 1, "2026-01-05", "1 January holiday, 2 January transferred day off"),
    (2026, 1, 10, "2026-01-16", "the overdue reminder for report year 2025"),
    (2026, 1, 11, "2026-01-17", "the worked Saturday counts"),
    (2026, 12, 1, "2026-12-01", "1 December 2026 is a Tuesday"),
    (2026, 11, 12, "2026-11-17", "November 2026 before Proclamation Day"),
    (2026, 11, 13, "2026-11-19", "skips Proclamation Day"),
]


@pytest.mark.parametrize(("year", "month", "n", "expected", "why"), NTH)
def test_nth_working_day(year: int, month: int, n: int, expected: str, why: str) -> None:
    assert nth_working_day(year, month, n) == D(expected), why


@pytest.mark.parametrize("n", [0, -1, 24])
def test_nth_working_day_out_of_range(n: int) -> None:
    with pytest.raises(ValueError):
        nth_working_day(2027, 1, n)


def test_agrees_with_holidays_package_every_day_2025_to_2027() -> None:
    cal = holidays.country_holidays("LV", years=range(2025, 2028))
    day = dt.date(2025, 1, 1)
    while day.year < 2028:
        assert is_working_day(day) == cal.is_working_day(day), day
        day += dt.timedelta(days=1)


def test_cached_per_year() -> None:
    workdays._working_set.cache_clear()
    for month in range(1, 13):
        is_working_day(dt.date(2026, month, 1))
    info = workdays._working_set.cache_info()
    assert info.misses == 1
    assert info.hits == 11


@pytest.mark.parametrize("year", range(2024, 2031))
def test_the_calendar_read_from_latvias_module_is_the_one_holidays_gives(year: int) -> None:
    ours = workdays._calendar(year)
    theirs = holidays.country_holidays("LV", years=year)
    assert workdays._country("LV") is not None  # read from its module, not via holidays.countries
    assert dict(ours) == dict(theirs)
    assert ours.weekend_workdays == theirs.weekend_workdays


def test_the_table_is_what_the_installed_holidays_gives() -> None:
    """workdays_lv.json, which the running bot reads instead of importing ``holidays``, is the
    package's answer for every year it holds (after `make lock` moved to another version:
    `.venv/bin/python -m reporting_forms.workdays` writes it again)."""
    assert workdays.TABLE.read_text(encoding="utf-8") == workdays.table_text(workdays.table_from_package())
    assert set(workdays.read_table()) == set(workdays.TABLE_YEARS)  # written from the installed version


@pytest.fixture
def fresh_days() -> Iterator[None]:
    caches = (workdays._table, workdays._working_days, workdays._working_set, workdays._working_days_of_month)
    for fn in caches:
        fn.cache_clear()
    yield
    for fn in caches:
        fn.cache_clear()


def test_the_table_is_what_the_working_days_are_read_from(
    fresh_days: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monday = D("2026-03-02")
    off, worked = workdays.read_table()[2026]
    monkeypatch.setattr(workdays, "_table", lambda country: {2026: (off | {monday}, worked)})
    assert not is_working_day(monday)
    assert is_working_day(D("2027-03-01"))  # a year the table does not hold: the package


def test_a_table_of_another_holidays_version_is_not_used(tmp_path: Path) -> None:
    table = workdays.table_from_package(range(2026, 2027))
    path = tmp_path / "workdays.json"
    path.write_text(workdays.table_text(table), encoding="utf-8")
    assert set(workdays.read_table(path=path)) == {2026}
    path.write_text(workdays.table_text({**table, "holidays": "0.1"}), encoding="utf-8")
    assert workdays.read_table(path=path) == {}
    assert workdays.read_table("EE", path=path) == {}
    assert workdays.read_table(path=tmp_path / "missing.json") == {}
