"""One Jinja2 environment for every user-facing text and report layout.

Messages live in ``templates/<lang>/<feature>.j2`` as macros, one macro per message:
``text("lv", "form.error_not_a_number")`` renders macro ``error_not_a_number`` of
``templates/lv/form.j2``. Output is HTML-escaped (Telegram messages use parse mode HTML),
so user text passed as a parameter can never inject markup.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
LANGUAGES = ("lv", "en")
DEFAULT_LANGUAGE = "lv"


def format_number(value: float | int | Decimal | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """Latvian: 1 200,5 (no-break space groups, decimal comma); English: 1,200.5."""
    if value is None:
        return "—"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return format_decimal(value, locale=_locale(lang), decimal_quantization=False)


def format_day(value: dt.date | None, lang: str = DEFAULT_LANGUAGE, style: str = "long") -> str:
    """Latvian long form: 2027. gada 31. decembris; short form: 31.12.2027."""
    if value is None:
        return "—"
    if style == "short":
        return format_date(value, format="dd.MM.yyyy", locale=_locale(lang))
    return format_date(value, format="long", locale=_locale(lang))


def _locale(lang: str) -> str:
    return "lv_LV" if lang == "lv" else "en_GB"


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
    env.filters["num"] = format_number
    env.filters["day"] = format_day
    return env


def normalise_language(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


@cache
def _messages(lang: str, feature: str) -> Any:
    """The macros of templates/<lang>/<feature>.j2 (evaluated once per process)."""
    return environment().get_template(f"{lang}/{feature}.j2").make_module({"lang": lang})


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


def render(template: str, /, **params: Any) -> str:
    """Render a whole template file (report layouts)."""
    return environment().get_template(template).render(**params)
