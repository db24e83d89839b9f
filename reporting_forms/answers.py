"""Answer parsers ("type factories"): raw chat text in, a valid value out, or ``InvalidAnswer``.

Each parser is pure and total over ``str``: whatever a user types, it either returns a value
or raises ``InvalidAnswer(code, **params)``. The code names the message macro ``error_<code>``
of ``templates/<lang>/answers.j2``; the params are that macro's arguments.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from reporting_forms.texts import Refused

MAX_COUNT_DIGITS = 7
MAX_PERCENT_DECIMALS = 2
PERCENT_MIN, PERCENT_MAX = 0, 100
DEFAULT_MAX_LENGTH = 1000
DATE_EXAMPLE = "31.12.2026"

# Every code a parser here can raise; each has a macro ``error_<code>`` in both languages.
PARSER_ERROR_CODES: tuple[str, ...] = (
    "not_a_number",
    "decimal_not_allowed",
    "negative",
    "too_many_digits",
    "too_many_decimals",
    "out_of_range",
    "not_a_date",
    "no_such_date",
    "date_out_of_range",
    "empty",
    "too_long",
    "choose_button",
)


class InvalidAnswer(Refused):
    """The answer cannot be accepted; ``code`` picks the message ``answers.error_<code>``,
    ``params`` fill it in.

    ``key`` is set when the error concerns a stored answer (``forms.validate_answers``).
    """

    TEMPLATE = "answers.error_"

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, **params)
        self.key: str | None = None


# ---------------------------------------------------------------- numbers

# Thousands may be grouped with a space, a no-break space, a narrow no-break space or a thin space.
_GROUP_SEP = "[ \u00a0\u202f\u2009]"
_DIGITS = "[0-9]"  # ASCII only: \d would also match Arabic-Indic and other digits
_INTEGER = re.compile(rf"{_DIGITS}+|{_DIGITS}{{1,3}}(?:{_GROUP_SEP}{_DIGITS}{{3}})+")
_MINUS = ("-", "\u2212", "\u2013")  # hyphen-minus, minus sign, en dash (phones "smarten" it)


_NUMBER = re.compile(
    rf"(?P<minus>[{''.join(_MINUS)}]?)\s*(?P<int>{_INTEGER.pattern})(?:[.,](?P<frac>{_DIGITS}+))?"
)


@dataclass(frozen=True, slots=True)
class TypedNumber:
    """A number as typed, split: its sign, its whole digits (grouping removed) and its decimals."""

    negative: bool
    whole: str  # ASCII digits
    fraction: str  # ASCII digits; "" without a decimal part


def is_ascii_number(word: str) -> bool:
    """Whether ``word`` is a number in ASCII digits. Arabic-Indic and other Unicode digits,
    which ``str.isdigit`` and ``\\d`` accept, are not: typed years and counts are read in ASCII."""
    return word.isascii() and word.isdigit()


def split_number(raw: str) -> TypedNumber | None:
    """The one number parser (answers, percentages, policy values): an optional minus (hyphen,
    minus sign or en dash), ASCII digits only, thousands grouped by spaces ("1 200"), decimals
    after a comma or a dot. None when ``raw`` is not such a number."""
    m = _NUMBER.fullmatch(raw.strip())
    if m is None:
        return None
    return TypedNumber(bool(m["minus"]), re.sub(_GROUP_SEP, "", m["int"]), m["frac"] or "")


def parse_count(raw: str) -> int:
    """A non-negative whole number of at most 7 digits; "1 200" style grouping allowed."""
    number = split_number(raw)
    if number is None:
        raise InvalidAnswer("not_a_number", kind="count")
    if number.negative:
        raise InvalidAnswer("negative")
    if number.fraction:
        raise InvalidAnswer("decimal_not_allowed")
    if len(number.whole) > MAX_COUNT_DIGITS:
        raise InvalidAnswer("too_many_digits", max_digits=MAX_COUNT_DIGITS)
    return int(number.whole)


_PERCENT_SIGN = re.compile(r"\s*%$")


def _canonical_decimal(int_part: str, frac_part: str) -> Decimal:
    """Decimal without exponent or trailing fractional zeros: "12,50" -> 12.5, "007" -> 7."""
    frac = frac_part.rstrip("0")
    return Decimal(f"{int(int_part)}.{frac}" if frac else str(int(int_part)))


def parse_percent(raw: str) -> Decimal:
    """A percentage 0–100 with at most 2 decimals, comma or dot, "%" sign optional."""
    number = split_number(_PERCENT_SIGN.sub("", raw.strip()))
    if number is None:
        raise InvalidAnswer("not_a_number", kind="percent")
    if len(number.fraction) > MAX_PERCENT_DECIMALS:
        raise InvalidAnswer("too_many_decimals", max_decimals=MAX_PERCENT_DECIMALS)
    value = _canonical_decimal(number.whole, number.fraction)
    if number.negative or not PERCENT_MIN <= value <= PERCENT_MAX:
        raise InvalidAnswer("out_of_range", min=PERCENT_MIN, max=PERCENT_MAX)
    return value


# ---------------------------------------------------------------- dates

_DAY_FIRST = re.compile(r"(?P<d>[0-9]{1,2})\.\s?(?P<m>[0-9]{1,2})\.\s?(?P<y>[0-9]{4})\.?")
_ISO = re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})")


def parse_date(raw: str, *, earliest: dt.date, latest: dt.date) -> dt.date:
    """A date as 31.12.2026, 31.12.2026. or 2026-12-31, within [earliest, latest]. A well-formed
    date the calendar does not have (31.02.2026, 15.13.2026) is ``no_such_date``: the date as
    DD.MM.YYYY, its year and month, and the days in that month (None when the month is not 1–12)."""
    s = raw.strip()
    m = _DAY_FIRST.fullmatch(s) or _ISO.fullmatch(s)
    if m is None:
        raise InvalidAnswer("not_a_date", example=DATE_EXAMPLE)
    year, month, day = int(m["y"]), int(m["m"]), int(m["d"])
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise InvalidAnswer("not_a_date", example=DATE_EXAMPLE)
    days = calendar.monthrange(year, month)[1] if 1 <= month <= 12 else None
    if days is None or not 1 <= day <= days:
        shown = f"{day:02d}.{month:02d}.{year:04d}"
        raise InvalidAnswer("no_such_date", date=shown, year=year, month=month, days=days)
    value = dt.date(year, month, day)
    if not earliest <= value <= latest:
        raise InvalidAnswer("date_out_of_range", earliest=earliest, latest=latest)
    return value


# ---------------------------------------------------------------- text

_KEPT_CONTROLS = frozenset("\n\t")
# Cc: C0/C1 controls (NUL breaks PostgreSQL text); Cs: lone surrogates cannot be encoded as UTF-8.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cs"})


# Invisible characters that change how text reads (Trojan Source): bidi embeddings, overrides
# and isolates, directional marks, zero-width spaces and joiners, word joiner, BOM.
_INVISIBLE = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + [chr(c) for c in range(0x200B, 0x2010)]
    + [chr(c) for c in range(0x2060, 0x2065)]
    + ["\ufeff", "\u061c", "\u180e"]
)


_ZWJ = "\u200d"


def _pictograph(ch: str) -> bool:
    return unicodedata.category(ch) == "So" or ch == "\ufe0f" or 0x1F000 <= ord(ch) <= 0x1FAFF


def _drop_controls(s: str) -> str:
    """Without controls and invisible characters; a zero-width joiner is kept only inside an
    emoji sequence (👩‍💻), where it is part of the picture."""
    out = []
    for i, ch in enumerate(s):
        if ch in _KEPT_CONTROLS:
            out.append(ch)
        elif ch == _ZWJ:
            if 0 < i < len(s) - 1 and _pictograph(s[i - 1]) and _pictograph(s[i + 1]):
                out.append(ch)
        elif unicodedata.category(ch) not in _DROPPED_CATEGORIES and ch not in _INVISIBLE:
            out.append(ch)
    return "".join(out)


def clean_text(raw: str) -> str:
    """User text without control, bidi-override and zero-width characters (see parse_comment)."""
    return _drop_controls(raw)


def parse_comment(raw: str, max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """Free text: control characters (except newline and tab), bidi overrides and zero-width
    characters removed, stripped, 1..max_length."""
    s = _drop_controls(raw).strip()
    if not s:
        raise InvalidAnswer("empty")
    if len(s) > max_length:
        raise InvalidAnswer("too_long", max_length=max_length, length=len(s))
    return s


# ---------------------------------------------------------------- milestone status


class MilestoneStatus(StrEnum):
    DONE = "done"
    IN_PROGRESS = "in_progress"
    NOT_STARTED = "not_started"
    RISK = "risk"


# Labels a user may type instead of pressing a button (the buttons show templates' status_<code>).
STATUS_LABELS: dict[MilestoneStatus, tuple[str, ...]] = {
    MilestoneStatus.DONE: ("izpildīts", "done"),
    MilestoneStatus.IN_PROGRESS: ("procesā", "in progress"),
    MilestoneStatus.NOT_STARTED: ("nav uzsākts", "not started"),
    MilestoneStatus.RISK: ("risks", "risk"),
}


def _fold(s: str) -> str:
    """Case-, diacritic- and separator-insensitive form: "Nav  Uzsākts" == "nav_uzsakts"."""
    decomposed = unicodedata.normalize("NFKD", s.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.replace("_", " ").replace("-", " ").split())


_STATUS_BY_FOLDED: dict[str, MilestoneStatus] = {
    _fold(word): status for status, labels in STATUS_LABELS.items() for word in (status.value, *labels)
}


def parse_milestone_status(raw: str) -> MilestoneStatus:
    """A status code or its Latvian/English label, any case, diacritics optional."""
    status = _STATUS_BY_FOLDED.get(_fold(raw))
    if status is None:
        raise InvalidAnswer("choose_button")
    return status
