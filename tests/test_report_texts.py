"""Pure helpers behind the chat's texts: Latvian number agreement, local dates, message
splitting, history rows, and which questions take a typed number."""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from babel.numbers import format_decimal
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render import change_rows, field_label
from bot.routers.report import expects_typed_number
from reporting_forms import forms
from reporting_forms.catalog import Catalog
from reporting_forms.messages import chunks
from reporting_forms.texts import (
    coded_plain,
    format_day,
    format_moment,
    format_number,
    lv_singular,
    takes_singular,
    text,
    to_local,
    unit_for,
)
from tests.fakebotapi import parse_html

RIGA = ZoneInfo("Europe/Riga")


@pytest.mark.parametrize(
    ("plural", "singular"),
    [
        ("programmas", "programma"),
        ("konferences", "konference"),
        ("pasākumi", "pasākums"),
        ("mācību kursi", "mācību kurss"),
        ("probācijas klienti", "probācijas klients"),  # the genitive in front stays
        ("ieslodzījuma vietas", "ieslodzījuma vieta"),
        ("pētnieciskās aktivitātes", "pētnieciskā aktivitāte"),
        ("notiesātās sievietes", "notiesātā sieviete"),
        ("ieslodzītie", "ieslodzītais"),
        ("brīvprātīgie", "brīvprātīgais"),
        ("tiesneši", "tiesnesis"),
        ("pārstāvji", "pārstāvis"),
        ("mācības", "mācības"),  # plural only
        ("%", "%"),
    ],
)
def test_latvian_singular_of_catalog_units(plural: str, singular: str) -> None:
    assert lv_singular(plural) == singular


def test_every_catalog_unit_has_a_singular_that_differs_only_at_the_end(catalog: Catalog) -> None:
    units = {i.unit for _p, _d, _t, m in catalog.measures() for i in m.indicators if i.unit}
    for unit in units:
        single = lv_singular(unit)
        assert single and single.split(" ")[0][:3] == unit.split(" ")[0][:3], unit


@pytest.mark.parametrize(
    ("value", "singular"),
    [(1, True), (21, True), (101, True), (11, False), (111, False), (2, False), (0, False), (1.5, False)],
)
def test_which_numbers_take_the_singular(value: float, singular: bool) -> None:
    assert takes_singular(value) is singular


def test_unit_agrees_with_the_number() -> None:
    assert unit_for("programmas", 1) == "programma"
    assert unit_for("programmas", 21.0) == "programma"
    assert unit_for("programmas", 11) == "programmas"
    assert unit_for("programmas", 1, "en") == "programme"  # English names from units.yaml
    assert unit_for("programmas", 21, "en") == "programmes"
    assert unit_for(None, 1) == ""


def test_naive_times_are_utc_and_shown_in_local_time() -> None:
    naive = dt.datetime(2026, 11, 20, 23, 30)  # SQLite gives naive UTC back
    assert to_local(naive, RIGA) == dt.datetime(2026, 11, 21, 1, 30, tzinfo=RIGA)
    aware = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
    assert format_moment(to_local(aware, RIGA), "lv") == "01.06.2026 12:00"  # summer time
    assert format_moment(to_local(aware, RIGA), "en") == "1 Jun 2026, 12:00"
    assert format_moment(to_local(naive, RIGA), "lv", with_time=False) == "21.11.2026"
    assert format_moment(None) == "—"


def test_chunks_split_at_line_ends_and_drop_nothing() -> None:
    lines = [f"<b>line {i:03d}</b> " + "x" * 90 for i in range(100)]
    parts = chunks("\n".join(lines), limit=1000)
    assert len(parts) > 1 and "\n".join(parts) == "\n".join(lines)
    assert all(len(parse_html(p)[0]) <= 1000 for p in parts)  # counted as Telegram counts
    assert chunks("short") == ["short"]


def test_chunks_cut_a_line_longer_than_a_message_at_spaces() -> None:
    line = " ".join(["vārds"] * 500) + " &amp; beigas"
    parts = chunks(f"virsraksts\n{line}", limit=1000)
    assert all(len(parse_html(p)[0]) <= 1000 for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(f"virsraksts {line}".split())
    assert not any(p.endswith("&") or p.startswith("amp;") for p in parts)  # no entity cut in two
    assert "".join(chunks("y" * 2500, limit=1000)) == "y" * 2500


def test_history_rows_use_the_summary_labels_and_formats(catalog: Catalog) -> None:
    measure = catalog.measure("1.1.1")
    changes = [
        {"field": "comment", "old": None, "new": "Sākts"},
        {"field": "1.1.1.2", "old": 45, "new": 1200},
        {"field": "1.1.1.1", "old": "in_progress", "new": "done"},
        {"field": "1.1.1.1.date", "old": None, "new": "2026-10-15"},
        {"field": "9.9.9", "old": 1, "new": 2},  # a row the form no longer has
    ]
    rows = change_rows("lv", measure, 2026, changes)
    first = field_label("lv", measure, forms.form_for(measure).fields[0])
    assert [r["field"] for r in rows] == [
        first,
        f"{first} — datums",
        "Apmācīti līdz 120 darbinieki",
        "Komentārs",
        "9.9.9",
    ]
    assert [(r["old"], r["new"]) for r in rows] == [
        ("procesā", "izpildīts"),
        (None, "15.10.2026"),
        ("45", "1\xa0200"),
        (None, "Sākts"),
        ("1", "2"),
    ]
    assert change_rows("en", measure, 2026, changes[2:3]) == [
        {
            "field": field_label("en", measure, forms.form_for(measure).fields[0]),
            "old": "in progress",
            "new": "done",
            "comment": None,
        }
    ]


def test_history_message_keeps_tags_within_lines(catalog: Catalog) -> None:
    """chunks() splits at line ends: no tag of the history may span two lines."""
    rows = change_rows("lv", catalog.measure("1.3.11"), 2026, [{"field": "comment", "old": "a", "new": "b"}])
    when = dt.datetime(2026, 11, 20, 11, 30, tzinfo=RIGA)
    body = text(
        "lv",
        "report.history",
        report_id=1,
        measure_code="1.3.11",
        year=2026,
        revisions=[{"revision": 1, "author": "A", "when": when, "changes": rows}],
    )
    for line in body.split("\n"):
        parse_html(line)


def test_which_questions_take_a_typed_number(catalog: Catalog) -> None:
    def data(measure: str, answers: dict, cursor: forms.Cursor) -> dict:
        draft = forms.Draft(measure_id=measure, year=2026, answers=answers, cursor=cursor)
        return {"draft": draft.to_dict()}

    answering = "ReportFlow:answering"
    assert expects_typed_number(catalog, answering, data("1.1.1", {}, 2))  # people trained
    assert expects_typed_number(catalog, answering, data("3.1.5", {}, 0))  # percent
    assert not expects_typed_number(catalog, answering, data("1.1.1", {}, 0))  # milestone: buttons
    assert not expects_typed_number(catalog, answering, data("1.1.1", {"1.1.1.1": "done"}, 1))  # date
    assert not expects_typed_number(catalog, answering, data("1.1.1", {}, 3))  # comment
    assert not expects_typed_number(catalog, answering, data("1.1.1", {}, forms.SUMMARY))
    assert not expects_typed_number(catalog, "ReportFlow:open_draft", data("1.1.1", {}, 2))
    assert not expects_typed_number(catalog, answering, {"draft": {"broken": True}})
    assert not expects_typed_number(catalog, None, {})


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from(list("ab ā\t😀<>&;")), max_size=120)
        | st.sampled_from(["<b>bold</b> x", "&amp;", "", "<i>ī</i>"]),
        max_size=40,
    ),
    st.integers(min_value=20, max_value=300),
)
def test_chunks_properties(lines: list[str], limit: int) -> None:
    """Any text: every part fits (counted as Telegram counts), nothing is lost, and a message
    that fits comes back whole."""
    message = "\n".join(html.escape(line) if "<" not in line or "</" not in line else line for line in lines)
    parts = chunks(message, limit=limit)

    def units(part: str) -> int:  # Telegram counts UTF-16 code units of the visible text
        return len(parse_html(part)[0].encode("utf-16-le")) // 2

    assert all(units(p) <= limit for p in parts)
    assert "".join("".join(parts).split()) == "".join(message.split())
    if units(message) <= limit:
        assert parts == ([message] if message else [])


def test_history_shows_a_review_in_words_with_who_decided() -> None:
    rows = change_rows(
        "lv", None, 2026, [{"field": "review", "old": "pending", "new": "accepted", "by_name": "Inese"}]
    )
    assert rows == [
        {"field": "Pārskatīšana (Inese)", "old": "gaida pārskatīšanu", "new": "pieņemts", "comment": None}
    ]
    (en,) = change_rows(
        "en",
        None,
        2026,
        [{"field": "review", "old": "pending", "new": "returned", "by_name": "X", "comment": "Fix 1.1.1"}],
    )
    assert en["field"] == "Review (X)" and "returned" in en["new"] and en["comment"] == "Fix 1.1.1"


def test_a_coded_message_falls_back_to_the_generic_one_naming_the_code() -> None:
    """texts.coded_plain: the code's own macro with its parameters; an unknown code, or
    parameters the macro does not take, get ``<prefix>generic``."""
    own = coded_plain("lv", "reports.warning_", "trained_above_participants", {"left": 12, "right": 10})
    assert own == "apmācīto skaits (12) pārsniedz dalībnieku skaitu (10)"
    unknown = coded_plain("lv", "reports.warning_", "no_such_check", {})
    assert unknown == "pārbaude „no_such_check” nav izpildīta"
    wrong = coded_plain("lv", "reports.warning_", "trained_above_participants", {"unknown": 1})
    assert wrong == "pārbaude „trained_above_participants” nav izpildīta"
    assert coded_plain("en", "coordinator.import_error_", "no_such_code", {}) == "not accepted (no_such_code)"


@settings(max_examples=300)
@given(
    st.one_of(
        st.integers(-(10**9), 10**9),
        st.floats(-1e9, 1e9, allow_nan=False),
        st.decimals(-(10**6), 10**6, allow_nan=False, allow_infinity=False, places=3),
    ),
    st.sampled_from(["lv", "en"]),
)
def test_a_number_formatted_again_is_formatted_as_babel_formats_it(value: object, lang: str) -> None:
    """format_number keeps what it formatted; equal numbers of other types or precision (1 and
    1.0, Decimal("2.50") and Decimal("2.5")) each get Babel's own result."""
    assert isinstance(value, int | float | Decimal)
    shown = int(value) if isinstance(value, float) and value.is_integer() else value
    expected = format_decimal(shown, locale=lang, decimal_quantization=False)
    assert format_number(value, lang) == expected
    assert format_number(value, lang) == expected  # the kept one


@settings(max_examples=200)
@given(st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31)), st.sampled_from(["lv", "en"]), st.booleans())
def test_a_day_formatted_again_is_formatted_as_babel_formats_it(day: dt.date, lang: str, short: bool) -> None:
    """format_day keeps what it formatted, per day, language and style."""
    pattern = "dd.MM.yyyy" if short else "long"
    expected = format_date(day, format=pattern, locale="lv_LV" if lang == "lv" else "en_GB")
    style = "short" if short else "long"
    assert format_day(day, lang, style) == expected
    assert format_day(day, lang, style) == expected  # the kept one
    assert format_day(day, lang, "long" if short else "short") != expected  # never the other style's
