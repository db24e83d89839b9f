"""One Jinja2 environment for every user-facing text and report layout.

Messages live in ``templates/<lang>/<feature>.j2`` as macros, one macro per message:
``text("lv", "form.error_not_a_number")`` renders macro ``error_not_a_number`` of
``templates/lv/form.j2``. Output is HTML-escaped (Telegram messages use parse mode HTML),
so user text passed as a parameter can never inject markup.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, ClassVar

import babel.core
import jinja2
import yaml
from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.bccache import Bucket

from reporting_forms.calendar import default_calendar

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
LANGUAGES = ("lv", "en")
DEFAULT_LANGUAGE = "lv"


def format_number(value: float | int | Decimal | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """Latvian: 1 200,5 (no-break space groups, decimal comma); English: 1,200.5."""
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _formatted(lang, type(value), str(value), value)


@lru_cache(maxsize=4096)
def _formatted(lang: str, kind: type, shown: str, value: float | int | Decimal) -> str:
    """Babel's formatting (~10 µs) once per number and language: targets, answers and totals
    recur on every question and card. ``kind`` and ``shown`` keep apart numbers that are equal
    but shown differently (Decimal("1.50") and Decimal("1.5"), 1 and 1.5 never collide)."""
    return format_decimal(value, locale=_locale(lang), decimal_quantization=False)


def format_day(value: dt.date | None, lang: str = DEFAULT_LANGUAGE, style: str = "long") -> str:
    """Latvian long form: 2027. gada 31. decembris; short form: 31.12.2027."""
    if value is None:
        return "—"
    return _day(value, lang, style)


@lru_cache(maxsize=1024)
def _day(value: dt.date, lang: str, style: str) -> str:
    """Babel's formatting once per day, language and style (deadlines and dates recur on every
    question and card)."""
    if style == "short":
        return format_date(value, format="dd.MM.yyyy", locale=_locale(lang))
    return format_date(value, format="long", locale=_locale(lang))


# A moment (date and time) and a day as the user reads them: numeric in Latvian, month names in English.
_MOMENT_PATTERNS = {"lv": ("dd.MM.yyyy HH:mm", "dd.MM.yyyy"), "en": ("d MMM yyyy, HH:mm", "d MMM yyyy")}


def to_local(value: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A stored timestamp in local time; naive values are UTC (that is how the database keeps them)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(tz)


def format_moment(value: dt.datetime | None, lang: str = DEFAULT_LANGUAGE, *, with_time: bool = True) -> str:
    """A local date and time: 20.11.2026 11:30 (lv), 20 Nov 2026, 11:30 (en); convert with to_local first."""
    if value is None:
        return "—"
    patterns = _MOMENT_PATTERNS.get(normalise_language(lang), _MOMENT_PATTERNS[DEFAULT_LANGUAGE])
    return format_datetime(value, patterns[0 if with_time else 1], tzinfo=value.tzinfo, locale=_locale(lang))


def plural(
    value: float | int | Decimal | None, singular: str, many: str, lang: str = DEFAULT_LANGUAGE
) -> str:
    """The word agreeing with a number: ``n|plural("kontaktpersonai", "kontaktpersonām", lang)``.
    Latvian: the singular after 1, 21, 101 … (not 11, 111, not fractions); English: after exactly 1."""
    if normalise_language(lang) == "en":
        return singular if value is not None and value == 1 else many
    return singular if takes_singular(value) else many


def takes_singular(value: float | int | Decimal | None) -> bool:
    """Latvian agreement: 1, 21, 101 ... take the singular; 11, 111 and fractions the plural."""
    if value is None or value != int(value):
        return False
    n = abs(int(value))
    return n % 10 == 1 and n % 100 != 11


# Plural → singular where the regular endings do not give the right word.
_LV_SINGULAR_EXCEPTIONS = {"mācības": "mācības", "pārstāvji": "pārstāvis", "tiesneši": "tiesnesis"}
# (plural ending, singular ending): nouns and definite adjectives in the nominative.
_LV_NOUN_ENDINGS = (("ie", "ais"), ("ās", "ā"), ("as", "a"), ("es", "e"), ("i", "s"))
_LV_ADJECTIVE_ENDINGS = (("ie", "ais"), ("ās", "ā"))


def _singular_word(word: str, endings: tuple[tuple[str, str], ...]) -> str:
    if word in _LV_SINGULAR_EXCEPTIONS:
        return _LV_SINGULAR_EXCEPTIONS[word]
    for plural, singular in endings:
        if word.endswith(plural):
            return word[: -len(plural)] + singular
    return word


def lv_singular(unit: str) -> str:
    """The singular of a plural unit from the catalog: "programmas" → "programma",
    "pētnieciskās aktivitātes" → "pētnieciskā aktivitāte", "probācijas klienti" → "probācijas klients"
    (a genitive in front, like "probācijas", stays)."""
    words = unit.split(" ")
    head = _singular_word(words[-1], _LV_NOUN_ENDINGS)
    return " ".join([*(_singular_word(w, _LV_ADJECTIVE_ENDINGS) for w in words[:-1]), head])


UNITS_PATH = Path(__file__).with_name("units.yaml")


@dataclass(frozen=True, slots=True)
class Unit:
    """A catalog unit (Latvian plural, as the plans write it): its English names and what it counts."""

    name: str
    en: tuple[str, str]  # singular, plural
    counts: str  # people | events | consultations | sessions | things | percent


@cache
def units() -> dict[str, Unit]:
    """reporting_forms/units.yaml: every unit of the catalog."""
    raw = yaml.safe_load(UNITS_PATH.read_text(encoding="utf-8")) or {}
    return {name: Unit(name, tuple(item["en"]), item["counts"]) for name, item in raw.items()}


def unit_counts(unit: str | None) -> str | None:
    """What a unit counts (``people``, ``events`` …; see units.yaml), None for no or an unknown unit."""
    found = units().get(unit) if unit else None
    return found.counts if found else None


def unit_for(unit: str | None, value: float | int | Decimal | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """The unit in the user's language, agreeing with the number before it: 1 programma,
    2 programmas, 21 programma; in English 1 programme, 21 programmes (units.yaml). Without a
    number (None), the plural."""
    if not unit:
        return ""
    if normalise_language(lang) == "en":
        found = units().get(unit)
        if found is None:
            return unit
        return found.en[0] if value is not None and value == 1 else found.en[1]
    if takes_singular(value):
        return lv_singular(unit)
    return unit


def unit_name(unit: str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """The unit's plural in the user's language ("mācību kursi" → "training courses")."""
    return unit_for(unit, None, lang)


@cache
def _locale(lang: str) -> Locale:
    """Babel's locale of a language, parsed once (given as a string, Babel parses it, and wraps
    its data anew, on every number and date formatted), with its data loaded.

    To find a locale's parent while loading its data, Babel reads its cross-locale tables
    (``global.dat``: time zones, currencies, likely subtags …) and keeps them, ~1 MB of the
    idle bot's memory. Numbers and dates in a loaded locale never read them, so they are let go
    once the data is in; Babel reads them again should anything ask (issue 12, item 6)."""
    locale = Locale.parse("lv_LV" if lang == "lv" else "en_GB")
    locale.decimal_formats  # noqa: B018  (loads the locale's data)
    babel.core._global_data = None
    return locale


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals["plan_calendar"] = default_calendar  # plan years in texts: plan_calendar().last_year
    env.filters["num"] = format_number
    env.filters["day"] = format_day
    env.filters["moment"] = format_moment
    env.filters["unit_for"] = unit_for
    env.filters["unit_name"] = unit_name
    env.filters["plural"] = plural
    env.filters["shorten"] = shorten
    env.tests["counting"] = lambda unit, what: unit_counts(unit) == what
    env.tests["singular"] = takes_singular
    env.bytecode_cache = _compiled_templates(env)
    return env


class _CompiledTemplates(FileSystemBytecodeCache):
    """The templates' compiled code kept on disk between starts, as Python keeps ``.pyc`` files:
    compiling a message module takes ~40 ms and leaves more memory behind than loading its
    compiled code (0.2–2 ms; every module at start took ~0.3 s and ~5 MB more). Jinja
    checks each entry against its template's source, so an edited template is compiled again;
    the file names carry a digest of the environment's options (:func:`_compiled_templates`).
    A cache that cannot be written only means the templates are compiled at every start."""

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled_templates(env: Environment) -> FileSystemBytecodeCache | None:
    """Jinja's own per-user folder in the system temp directory (made 0700 and checked to be
    the user's: compiled code is executed). Its entries are specific to this environment: the
    Jinja version, the syntax options, filters and tests are part of their names."""
    options = repr(
        (
            jinja2.__version__,
            env.trim_blocks,
            env.lstrip_blocks,
            env.keep_trailing_newline,
            env.newline_sequence,
            sorted(env.filters),
            sorted(env.tests),
            sorted(env.extensions),
        )
    )
    digest = hashlib.sha256(options.encode()).hexdigest()[:12]
    try:
        return _CompiledTemplates(pattern=f"resobot-{digest}-%s.cache")
    except (OSError, RuntimeError):  # no safe temp folder: compile at every start, as before
        return None


def normalise_language(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


@cache
def _messages(lang: str, feature: str) -> Any:
    """The macros of templates/<lang>/<feature>.j2 (evaluated once per process)."""
    return environment().get_template(f"{lang}/{feature}.j2").make_module({"lang": lang})


def preload(languages: Iterable[str] = LANGUAGES) -> None:
    """Load the number and date data of ``languages``' locales now (once per process): Babel
    reads it on first use, 5–8 ms per locale, in the middle of someone's update otherwise. The
    running bot preloads its default language only; the other is loaded by its first message.

    Message modules are not preloaded: each loads with the first message of its feature, in
    0.2–2 ms from the compiled templates (:class:`_CompiledTemplates`), so a bot holds only the
    features its users use — not the console's, nor the coordinators' until one writes
    (~0.7 MB of idle memory; README, Benchmarks)."""
    for lang in languages:
        format_number(1.5, lang)  # babel loads a locale's data on first use
        format_day(dt.date(2000, 1, 1), lang)


def text(lang: str | None, name: str, /, **params: Any) -> str:
    """Render message ``feature.macro`` in ``lang`` (falls back to Latvian)."""
    feature, _, macro = name.partition(".")
    lang = normalise_language(lang)
    module = _messages(lang, feature)
    try:
        fn = getattr(module, macro)
    except AttributeError as exc:
        raise KeyError(f"no message {name!r} in templates/{lang}/{feature}.j2") from exc
    return str(fn(**params)).strip()


class Refused(ValueError):
    """Input that is not accepted, the one refusal error: ``code`` names the message macro
    ``<TEMPLATE><code>`` and ``params`` fill it. Answers (``InvalidAnswer``), a coordinator's
    inputs (``InputError``) and mute reasons (``ReasonError``) are its subclasses."""

    TEMPLATE: ClassVar[str] = ""

    def __init__(self, code: str, /, **params: Any) -> None:
        self.code = code
        self.params: dict[str, Any] = params
        super().__init__(code, params)

    def message(self, lang: str | None) -> str:
        return text(lang, f"{self.TEMPLATE}{self.code}", **self.params)

    def plain_message(self, lang: str | None) -> str:
        """The message as plain text (a CLI line)."""
        return unescape(self.message(lang))


def unescape(message: str) -> str:
    """Rendered Telegram HTML's entities undone (``&amp;`` → ``&``); the one place that does it."""
    return html.unescape(message)


def plain(lang: str | None, name: str, /, **params: Any) -> str:
    """A message as plain text (file cells, CLI lines, button labels): rendered, then unescaped."""
    return unescape(text(lang, name, **params))


def coded_plain(lang: str | None, prefix: str, code: str, params: Mapping[str, Any]) -> str:
    """The plain message of a coded item (a validation warning, an import refusal): macro
    ``<prefix><code>`` with its parameters, else ``<prefix>generic`` naming the code (a code
    without a message of its own, or parameters its message does not take)."""
    try:
        return plain(lang, f"{prefix}{code}", **dict(params))
    except (KeyError, TypeError):
        return plain(lang, f"{prefix}generic", code=code)


def shorten(value: str, width: int) -> str:
    """At most ``width`` characters: cut on a character boundary, trailing spaces dropped, "…"
    added when cut. The one truncation of names, indicator texts, answers and comments."""
    return value if len(value) <= width else value[: width - 1].rstrip() + "…"


_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")


def as_plain(message: str) -> str:
    """A rendered message without its Telegram HTML: tags dropped, entities unescaped (button
    alerts and toasts are plain text: ``<code>`` would be shown literally)."""
    return unescape(_TAG.sub("", message))


def alert(lang: str | None, name: str, /, **params: Any) -> str:
    """Message ``feature.macro`` as plain text, for a button's alert (``answerCallbackQuery``)."""
    return as_plain(text(lang, name, **params))


def render(template: str, /, **params: Any) -> str:
    """Render a whole template file (report layouts)."""
    return environment().get_template(template).render(**params)
