"""Words for the internal keys of the data — metric kinds, report and outbox states, message kinds,
answer fields (``1.1.1.1.date``, ``comment``) and milestone answers (``done``) — wherever a person
reads them: CSV, the CLI tables, the /export files. The words live in ``templates/<lang>/labels.j2``
(and the statuses in ``reports.j2``); no key reaches a Latvian or English reader as it is stored.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from reporting_forms.answers import MilestoneStatus
from reporting_forms.forms import COMMENT_KEY, DATE_SUFFIX
from reporting_forms.texts import format_day, normalise_language, plain


@cache
def _label(lang: str, name: str, arg: str | None = None) -> str:
    params = {} if arg is None else {"name": arg}
    return plain(normalise_language(lang), f"labels.{name}", **params)


def kind_label(lang: str, kind: str) -> str:
    """``people_trained`` → "apmācītie cilvēki"."""
    return _label(lang, "kind", str(kind))


def report_status_label(lang: str, status: str) -> str:
    """``submitted`` → "iesniegta"."""
    return _label(lang, "report_status", str(status))


def message_kind_label(lang: str, kind: str) -> str:
    """An outbox or reminder kind (``deadline``, ``request``, ``digest`` …) as words."""
    return _label(lang, "message_kind", str(kind))


def outbox_status_label(lang: str, status: str) -> str:
    return _label(lang, "outbox_status", str(status))


def role_label(lang: str, role: str) -> str:
    """``coordinator`` → "koordinators" (the words of ``common.role_name``)."""
    return plain(normalise_language(lang), "common.role_name", role=str(role))


def yes_no(lang: str, value: bool) -> str:
    return _label(lang, "yes" if value else "no")


def field_label(lang: str, key: str) -> str:
    """An answer key as a reader sees it: ``1.1.1.1`` stays, ``1.1.1.1.date`` → "1.1.1.1 datums",
    ``comment`` → "Komentārs"."""
    if key == COMMENT_KEY:
        return _label(lang, "field_comment")
    if key.endswith(DATE_SUFFIX):
        return plain(normalise_language(lang), "labels.field_date", indicator=key.removesuffix(DATE_SUFFIX))
    return key


_MILESTONES = frozenset(s.value for s in MilestoneStatus)


def answer_text(lang: str, key: str, value: Any, *, days: bool = False) -> Any:
    """A stored answer as a reader sees it: a milestone status in words ("izpildīts"); with
    ``days`` a date as the day (31.12.2026), else as stored (ISO, for files); numbers and texts as
    they are."""
    if key == COMMENT_KEY or value is None:
        return value
    if key.endswith(DATE_SUFFIX):
        if not days:
            return value
        try:
            return format_day(dt.date.fromisoformat(str(value)), lang, style="short")
        except ValueError:
            return value
    if isinstance(value, str) and value in _MILESTONES:
        return plain(normalise_language(lang), f"reports.status_{value}")
    return value


__all__ = [
    "answer_text",
    "field_label",
    "kind_label",
    "message_kind_label",
    "outbox_status_label",
    "report_status_label",
    "role_label",
    "yes_no",
]
