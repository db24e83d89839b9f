"""Tables of accepted and refused answers for every parser, and the messages for every code."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from reporting_forms.answers import (
    DATE_EXAMPLE,
    PARSER_ERROR_CODES,
    InvalidAnswer,
    MilestoneStatus,
    parse_comment,
    parse_count,
    parse_date,
    parse_milestone_status,
    parse_percent,
)
from reporting_forms.forms import ENGINE_ERROR_CODES
from reporting_forms.texts import LANGUAGES, text

EARLIEST, LATEST = dt.date(2025, 1, 1), dt.date(2027, 12, 31)


def _refused(parse: Any, raw: str, **kwargs: Any) -> InvalidAnswer:
    with pytest.raises(InvalidAnswer) as info:
        parse(raw, **kwargs)
    return info.value


# ---------------------------------------------------------------- count


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("7", 7),
        ("1200", 1200),
        ("1 200", 1200),
        ("1\u00a0200", 1200),
        ("1\u202f200", 1200),
        ("1\u2009200", 1200),
        ("  1200 \n", 1200),
        ("1 234 567", 1_234_567),
        ("9999999", 9_999_999),
        ("007", 7),
    ],
)
def test_count_accepts(raw: str, expected: int) -> None:
    assert parse_count(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code", "params"),
    [
        ("1,5", "decimal_not_allowed", {}),
        ("1.5", "decimal_not_allowed", {}),
        ("1 200,5", "decimal_not_allowed", {}),
        ("-3", "negative", {}),
        ("\u22123", "negative", {}),
        ("- 3", "negative", {}),
        ("-1,5", "negative", {}),
        ("abc", "not_a_number", {"kind": "count"}),
        ("12a", "not_a_number", {"kind": "count"}),
        ("", "not_a_number", {"kind": "count"}),
        ("   ", "not_a_number", {"kind": "count"}),
        ("-", "not_a_number", {"kind": "count"}),
        ("+5", "not_a_number", {"kind": "count"}),
        ("1 20 0", "not_a_number", {"kind": "count"}),
        ("12 00", "not_a_number", {"kind": "count"}),
        ("1  200", "not_a_number", {"kind": "count"}),
        ("1_200", "not_a_number", {"kind": "count"}),
        ("\u0661\u0662", "not_a_number", {"kind": "count"}),  # Arabic-Indic digits
        ("１２", "not_a_number", {"kind": "count"}),  # full-width digits
        ("1e3", "not_a_number", {"kind": "count"}),
        ("12\x00", "not_a_number", {"kind": "count"}),
        ("12345678", "too_many_digits", {"max_digits": 7}),
        ("12 345 678", "too_many_digits", {"max_digits": 7}),
        ("1" * 5000, "too_many_digits", {"max_digits": 7}),
    ],
)
def test_count_refuses(raw: str, code: str, params: dict[str, Any]) -> None:
    exc = _refused(parse_count, raw)
    assert (exc.code, exc.params) == (code, params)
    assert isinstance(exc, ValueError)


# ---------------------------------------------------------------- percent


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", Decimal("0")),
        ("100", Decimal("100")),
        ("12,5", Decimal("12.5")),
        ("12.5", Decimal("12.5")),
        ("12,5 %", Decimal("12.5")),
        ("12.5%", Decimal("12.5")),
        ("12,5\u00a0%", Decimal("12.5")),
        ("12,50", Decimal("12.5")),
        ("0,05", Decimal("0.05")),
        ("100,00", Decimal("100")),
        (" 37,25 ", Decimal("37.25")),
        ("007", Decimal("7")),
    ],
)
def test_percent_accepts(raw: str, expected: Decimal) -> None:
    value = parse_percent(raw)
    assert value == expected
    assert str(value) == str(expected)  # canonical: no trailing zeros, no exponent


@pytest.mark.parametrize(
    ("raw", "code", "params"),
    [
        ("12,555", "too_many_decimals", {"max_decimals": 2}),
        ("100,5", "out_of_range", {"min": 0, "max": 100}),
        ("101", "out_of_range", {"min": 0, "max": 100}),
        ("-5", "out_of_range", {"min": 0, "max": 100}),
        ("nan", "not_a_number", {"kind": "percent"}),
        ("inf", "not_a_number", {"kind": "percent"}),
        ("Infinity", "not_a_number", {"kind": "percent"}),
        ("1e2", "not_a_number", {"kind": "percent"}),
        ("", "not_a_number", {"kind": "percent"}),
        ("%", "not_a_number", {"kind": "percent"}),
        ("12,5%%", "not_a_number", {"kind": "percent"}),
        ("12,", "not_a_number", {"kind": "percent"}),
        (",5", "not_a_number", {"kind": "percent"}),
        ("1 2", "not_a_number", {"kind": "percent"}),
        ("puse", "not_a_number", {"kind": "percent"}),
        ("\u0661\u0662", "not_a_number", {"kind": "percent"}),
    ],
)
def test_percent_refuses(raw: str, code: str, params: dict[str, Any]) -> None:
    exc = _refused(parse_percent, raw)
    assert (exc.code, exc.params) == (code, params)


# ---------------------------------------------------------------- date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("31.12.2026", dt.date(2026, 12, 31)),
        ("31.12.2026.", dt.date(2026, 12, 31)),
        ("2026-12-31", dt.date(2026, 12, 31)),
        ("1.2.2026", dt.date(2026, 2, 1)),
        ("01.02.2026", dt.date(2026, 2, 1)),
        (" 31.12.2026 ", dt.date(2026, 12, 31)),
        ("31. 12. 2026.", dt.date(2026, 12, 31)),
        ("01.01.2025", EARLIEST),
        ("31.12.2027", LATEST),
    ],
)
def test_date_accepts(raw: str, expected: dt.date) -> None:
    assert parse_date(raw, earliest=EARLIEST, latest=LATEST) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "31.12.26",
        "31/12/2026",
        "2026-12-1",
        "",
        "rīt",
        "2026",
        "31.12.2026..",
        "0000-01-01",
    ],
)
def test_date_refuses_format(raw: str) -> None:
    exc = _refused(parse_date, raw, earliest=EARLIEST, latest=LATEST)
    assert (exc.code, exc.params) == ("not_a_date", {"example": DATE_EXAMPLE})


@pytest.mark.parametrize(
    ("raw", "params"),
    [
        ("31.02.2026", {"date": "31.02.2026", "year": 2026, "month": 2, "days": 28}),
        ("30.02.2028", {"date": "30.02.2028", "year": 2028, "month": 2, "days": 29}),
        ("31.4.2026", {"date": "31.04.2026", "year": 2026, "month": 4, "days": 30}),
        ("32.01.2026", {"date": "32.01.2026", "year": 2026, "month": 1, "days": 31}),
        ("0.05.2026", {"date": "00.05.2026", "year": 2026, "month": 5, "days": 31}),
        ("2026-02-29", {"date": "29.02.2026", "year": 2026, "month": 2, "days": 28}),
        ("15.13.2026", {"date": "15.13.2026", "year": 2026, "month": 13, "days": None}),
    ],
)
def test_date_that_does_not_exist_is_named(raw: str, params: dict) -> None:
    """A well-formed date that is not in the calendar says so (not a format error)."""
    exc = _refused(parse_date, raw, earliest=EARLIEST, latest=LATEST)
    assert (exc.code, exc.params) == ("no_such_date", params)


def test_no_such_date_messages() -> None:
    exc = _refused(parse_date, "31.02.2026", earliest=EARLIEST, latest=LATEST)
    assert text("lv", "answers.error_no_such_date", **exc.params) == (
        "Datums 31.02.2026 neeksistē: 2026. gada februārī ir 28 dienas. Lūdzu, ievadiet pareizu datumu."
    )
    assert text("en", "answers.error_no_such_date", **exc.params) == (
        "The date 31.02.2026 does not exist: February 2026 has 28 days. Please enter a real date."
    )
    exc = _refused(parse_date, "32.01.2026", earliest=EARLIEST, latest=LATEST)
    assert "2026. gada janvārī ir 31 diena." in text("lv", "answers.error_no_such_date", **exc.params)
    exc = _refused(parse_date, "01.13.2026", earliest=EARLIEST, latest=LATEST)
    assert text("lv", "answers.error_no_such_date", **exc.params) == (
        "Datums 01.13.2026 neeksistē: mēnesis var būt no 1 līdz 12. Lūdzu, ievadiet pareizu datumu."
    )
    assert "the month must be between 1 and 12" in text("en", "answers.error_no_such_date", **exc.params)


@pytest.mark.parametrize("raw", ["31.12.2024", "01.01.2028", "2030-06-01"])
def test_date_refuses_out_of_range(raw: str) -> None:
    exc = _refused(parse_date, raw, earliest=EARLIEST, latest=LATEST)
    assert (exc.code, exc.params) == ("date_out_of_range", {"earliest": EARLIEST, "latest": LATEST})


# ---------------------------------------------------------------- comment


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Labi  ", "Labi"),
        ("Apmācīti 12 darbinieki; ģimenes, šķēršļi, ŽŪĶ", "Apmācīti 12 darbinieki; ģimenes, šķēršļi, ŽŪĶ"),
        ("a\nb\tc", "a\nb\tc"),
        ("a\r\nb", "a\nb"),
        ("x\x00y\x07z\x1b", "xyz"),
        ("\x85C1 control\u009f", "C1 control"),
        ("<b>&amp;</b>", "<b>&amp;</b>"),
        ("👩\u200d💻 ok 🎉", "👩\u200d💻 ok 🎉"),
        ("שלום עולם", "שלום עולם"),
        ("x" * 1000, "x" * 1000),
        ("lone \ud800 surrogate", "lone  surrogate"),
    ],
)
def test_comment_accepts(raw: str, expected: str) -> None:
    assert parse_comment(raw) == expected


@pytest.mark.parametrize(
    ("raw", "max_length", "code", "params"),
    [
        ("", 1000, "empty", {}),
        ("   \n\t ", 1000, "empty", {}),
        ("\x00\x01", 1000, "empty", {}),
        ("x" * 1001, 1000, "too_long", {"max_length": 1000, "length": 1001}),
        ("abcdef", 5, "too_long", {"max_length": 5, "length": 6}),
    ],
)
def test_comment_refuses(raw: str, max_length: int, code: str, params: dict[str, Any]) -> None:
    exc = _refused(parse_comment, raw, max_length=max_length)
    assert (exc.code, exc.params) == (code, params)


# ---------------------------------------------------------------- milestone status


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("done", MilestoneStatus.DONE),
        ("in_progress", MilestoneStatus.IN_PROGRESS),
        ("not_started", MilestoneStatus.NOT_STARTED),
        ("risk", MilestoneStatus.RISK),
        ("Izpildīts", MilestoneStatus.DONE),
        ("IZPILDĪTS", MilestoneStatus.DONE),
        ("izpildits", MilestoneStatus.DONE),
        ("procesā", MilestoneStatus.IN_PROGRESS),
        ("Procesa", MilestoneStatus.IN_PROGRESS),
        ("nav uzsākts", MilestoneStatus.NOT_STARTED),
        ("  Nav   Uzsākts ", MilestoneStatus.NOT_STARTED),
        ("risks", MilestoneStatus.RISK),
        ("In progress", MilestoneStatus.IN_PROGRESS),
        ("Not started", MilestoneStatus.NOT_STARTED),
        ("RISK", MilestoneStatus.RISK),
    ],
)
def test_status_accepts(raw: str, expected: MilestoneStatus) -> None:
    assert parse_milestone_status(raw) is expected


@pytest.mark.parametrize("raw", ["", "jā", "maybe", "izpildīts!", "done done", "1"])
def test_status_refuses(raw: str) -> None:
    exc = _refused(parse_milestone_status, raw)
    assert (exc.code, exc.params) == ("choose_button", {})


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("status", list(MilestoneStatus))
def test_status_button_labels_parse_back(lang: str, status: MilestoneStatus) -> None:
    label = text(lang, f"answers.status_{status.value}")
    assert label
    assert parse_milestone_status(label) is status


# ---------------------------------------------------------------- messages for every code

# One refusal per code, as raised, so the macro is rendered with the real params.
RAISED: list[tuple[str, InvalidAnswer]] = [
    ("not_a_number", _refused(parse_count, "abc")),
    ("not_a_number", _refused(parse_percent, "abc")),
    ("decimal_not_allowed", _refused(parse_count, "1,5")),
    ("negative", _refused(parse_count, "-1")),
    ("too_many_digits", _refused(parse_count, "123456789")),
    ("too_many_decimals", _refused(parse_percent, "1,234")),
    ("out_of_range", _refused(parse_percent, "101")),
    ("not_a_date", _refused(parse_date, "x", earliest=EARLIEST, latest=LATEST)),
    ("date_out_of_range", _refused(parse_date, "01.01.2000", earliest=EARLIEST, latest=LATEST)),
    ("no_such_date", _refused(parse_date, "31.02.2026", earliest=EARLIEST, latest=LATEST)),
    ("empty", _refused(parse_comment, " ")),
    ("too_long", _refused(parse_comment, "x" * 1200)),
    ("choose_button", _refused(parse_milestone_status, "?")),
]


def test_raised_table_covers_every_parser_code() -> None:
    assert {code for code, _ in RAISED} == set(PARSER_ERROR_CODES)
    assert all(code == exc.code for code, exc in RAISED)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(("code", "exc"), RAISED, ids=[f"{c}-{i}" for i, (c, _) in enumerate(RAISED)])
def test_every_parser_error_renders(lang: str, code: str, exc: InvalidAnswer) -> None:
    message = text(lang, f"answers.error_{code}", **exc.params)
    assert message and "None" not in message


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("code", PARSER_ERROR_CODES + ENGINE_ERROR_CODES)
def test_every_code_has_a_macro_with_defaults(lang: str, code: str) -> None:
    assert text(lang, f"answers.error_{code}")


def test_latvian_messages_use_diacritics() -> None:
    assert text("lv", "answers.error_not_a_number") == "Lūdzu, ievadiet veselu skaitli, piemēram, 120."
    assert text("lv", "answers.error_too_many_digits", max_digits=7).endswith("7.")
    assert "1\u00a0000" in text("lv", "answers.error_too_long", max_length=1000, length=1200)
    assert "1,000" in text("en", "answers.error_too_long", max_length=1000, length=1200)


def test_user_text_in_params_is_escaped() -> None:
    assert "&lt;b&gt;" in text("en", "answers.error_unknown_field", key="<b>")
