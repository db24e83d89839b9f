"""Typed callback data and keyboard factories. Every flow button carries the flow's nonce
(and a question's key), so a button pressed on an old message is recognised as stale."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from typing import Annotated

from aiogram.filters.callback_data import MAX_CALLBACK_LENGTH, CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from pydantic import Field

from bot.render import button
from reporting_forms.forms import FormField
from reporting_forms.payloads import ReminderPayload

MAX_ID = 2**31 - 1  # a database INTEGER: a forged button's id beyond it must not reach a query
# A row id, page or year carried in button data: pressed buttons are user input (they can be
# forged), so an id out of range fails the button's filter and the press gets the stale alert.
DbInt = Annotated[int, Field(ge=0, le=MAX_ID)]


def new_nonce() -> str:
    return secrets.token_hex(3)


class FormCb(CallbackData, prefix="f"):
    """A button of the report form. a: b=back s=skip x=cancel c=confirm e=edit p=pick."""

    n: str
    a: str
    k: str = ""
    v: str = ""


class MeasureCb(CallbackData, prefix="m"):
    """Measure picker: a measure (code), a task's measures (task), or a page of tasks (neither)."""

    n: str
    page: DbInt = 0
    code: str = ""
    task: str = ""


class YearCb(CallbackData, prefix="y"):
    n: str
    year: DbInt


class DraftCb(CallbackData, prefix="d"):
    """An open draft: a=c continue, a=d discard and start again."""

    n: str
    a: str


class MyReportCb(CallbackData, prefix="r"):
    """A report in /myreports: a=c correct, a=h history."""

    a: str
    rid: DbInt


# A validated button whose copies are the keyboards' buttons: ``model_copy`` sets the label and
# the data without pydantic's validation of every field (~2.4 µs a button instead of ~5 µs;
# a question has up to seven). Both are always strings here: the copy is the same model.
_BUTTON = InlineKeyboardButton(text="", callback_data="")


def _btn(label: str, data: CallbackData | str) -> InlineKeyboardButton:
    packed = data if isinstance(data, str) else data.pack()
    if type(label) is not str or type(packed) is not str:  # e.g. a Markup label: validated as before
        return InlineKeyboardButton(text=label, callback_data=packed)
    return _BUTTON.model_copy(update={"text": label, "callback_data": packed})


# Labels of the form's buttons: the same few strings on every question (templates are pure).
_label = functools.lru_cache(maxsize=512)(button)


def _form(n: str, a: str, k: str = "", v: str = "") -> str:
    """``FormCb(n=n, a=a, k=k, v=v).pack()``, the same string without building and dumping a
    model per button (a question has up to seven, a summary card a dozen or more); a value that
    is not a plain string, holds the separator, or makes the data too long goes through aiogram."""
    sep = FormCb.__separator__
    plain = type(n) is str and type(a) is str and type(k) is str and type(v) is str
    if plain and sep not in n + a + k + v:
        data = sep.join((FormCb.__prefix__, n, a, k, v))
        if len(data.encode()) <= MAX_CALLBACK_LENGTH:
            return data
    return FormCb(n=n, a=a, k=k, v=v).pack()


def question_keyboard(lang: str, nonce: str, field: FormField, *, can_go_back: bool) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    choices = [
        _btn(_label(lang, f"answers.status_{code}"), _form(nonce, "p", field.key, code))
        for code in field.buttons
    ]
    rows.extend(choices[i : i + 2] for i in range(0, len(choices), 2))
    nav = []
    if can_go_back:
        nav.append(_btn(_label(lang, "report.btn_back"), _form(nonce, "b", field.key)))
    if field.optional:
        nav.append(_btn(_label(lang, "report.btn_skip"), _form(nonce, "s", field.key)))
    if nav:
        rows.append(nav)
    rows.append([_btn(_label(lang, "report.btn_cancel"), _form(nonce, "x", field.key))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def summary_keyboard(lang: str, nonce: str, keys: Sequence[str]) -> InlineKeyboardMarkup:
    edits = [
        _btn(_label(lang, "report.btn_edit", number=i), _form(nonce, "e", "summary", key))
        for i, key in enumerate(keys, start=1)
    ]
    rows = [edits[i : i + 5] for i in range(0, len(edits), 5)]
    rows.append(
        [
            _btn(_label(lang, "report.btn_back"), _form(nonce, "b", "summary")),
            _btn(_label(lang, "report.btn_confirm"), _form(nonce, "c", "summary")),
        ]
    )
    rows.append([_btn(_label(lang, "report.btn_cancel"), _form(nonce, "x", "summary"))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _cancel_row(lang: str, nonce: str, key: str) -> list[InlineKeyboardButton]:
    return [_btn(_label(lang, "report.btn_cancel"), _form(nonce, "x", key))]


def tasks_keyboard(
    lang: str, nonce: str, tasks: Sequence[tuple[str, str, int]], page: int, pages: int
) -> InlineKeyboardMarkup:
    """One row per task (id, title, number of measures) leading to its measures; paged."""
    rows = [
        [
            _btn(
                button(lang, "report.btn_task", task_id=tid, title=title, count=count),
                MeasureCb(n=nonce, task=tid),
            )
        ]
        for tid, title, count in tasks
    ]
    nav = []
    if page > 0:
        nav.append(_btn(button(lang, "report.btn_prev"), MeasureCb(n=nonce, page=page - 1)))
    if page < pages - 1:
        nav.append(_btn(button(lang, "report.btn_next"), MeasureCb(n=nonce, page=page + 1)))
    if nav:
        rows.append(nav)
    rows.append(_cancel_row(lang, nonce, "pick"))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def measures_keyboard(
    lang: str, nonce: str, measures: Sequence[tuple[str, str]], tasks_page: int | None = None
) -> InlineKeyboardMarkup:
    """One button per measure ("1.3.5 …"); with ``tasks_page``, a button back to that page of tasks."""
    rows = [
        [_btn(button(lang, "report.btn_measure", code=code, name=name), MeasureCb(n=nonce, code=code))]
        for code, name in measures
    ]
    if tasks_page is not None:
        rows.append([_btn(button(lang, "report.btn_tasks"), MeasureCb(n=nonce, page=tasks_page))])
    rows.append(_cancel_row(lang, nonce, "pick"))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def years_keyboard(lang: str, nonce: str, years: Sequence[int]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_btn(button(lang, "report.year_button", year=y), YearCb(n=nonce, year=y)) for y in years],
            [_btn(button(lang, "report.btn_cancel"), FormCb(n=nonce, a="x", k="year"))],
        ]
    )


def draft_keyboard(lang: str, nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _btn(button(lang, "report.btn_continue"), DraftCb(n=nonce, a="c")),
                _btn(button(lang, "report.btn_discard"), DraftCb(n=nonce, a="d")),
            ]
        ]
    )


def my_reports_keyboard(lang: str, report_ids: Sequence[int]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _btn(button(lang, "report.btn_correct", report_id=rid), MyReportCb(a="c", rid=rid)),
                _btn(button(lang, "report.btn_history", report_id=rid), MyReportCb(a="h", rid=rid)),
            ]
            for rid in report_ids
        ]
    )


# ------------------------------------------------------------------ reminders (bot/routers/reminders.py)

MAX_REPORT_BUTTONS = 6


class ReminderCb(CallbackData, prefix="rem"):
    """A button under a reminder. a: r=report now, s=snooze, m=mute; o: the outbox row id;
    m: a measure code (empty: the measure picker)."""

    a: str
    o: DbInt
    m: str = ""


class MuteCb(CallbackData, prefix="mu"):
    """A button of the mute flow. a: m=measure (v=code), p=period (v=2w|1m|dl), x=cancel."""

    n: str
    a: str
    v: str = ""


def reminder_keyboard(row_id: int, payload: ReminderPayload, lang: str) -> InlineKeyboardMarkup:
    """Under a reminder: report now (one button per measure, up to ``MAX_REPORT_BUTTONS``, else
    one "Citi pasākumi…" for the picker), remind tomorrow, stop reminders."""
    codes = payload.measures
    rows: list[list[InlineKeyboardButton]] = []
    if len(codes) == 1:
        rows.append([_btn(button(lang, "reminders.btn_report_now"), ReminderCb(a="r", o=row_id, m=codes[0]))])
    else:
        shown = [
            _btn(button(lang, "reminders.btn_report_measure", code=code), ReminderCb(a="r", o=row_id, m=code))
            for code in codes[:MAX_REPORT_BUTTONS]
        ]
        rows.extend(shown[i : i + 2] for i in range(0, len(shown), 2))
        if len(codes) > MAX_REPORT_BUTTONS:
            rows.append([_btn(button(lang, "reminders.btn_report_other"), ReminderCb(a="r", o=row_id))])
    rows.append(
        [
            _btn(button(lang, "reminders.btn_snooze"), ReminderCb(a="s", o=row_id)),
            _btn(button(lang, "reminders.btn_mute"), ReminderCb(a="m", o=row_id)),
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


# ------------------------------------------------------------------ coordinators (bot/routers/coordinator.py)


class ReviewCb(CallbackData, prefix="rv"):
    """Accept (a=a) or return (a=r) revision ``rev`` of report ``rid``; p: the list page."""

    a: str
    rid: DbInt
    rev: DbInt
    p: DbInt = 0


class ReviewPageCb(CallbackData, prefix="rvp"):
    page: DbInt


class CoordCb(CallbackData, prefix="co"):
    """A button of a coordinator flow: a=i indicator, y year, s skip source, x cancel."""

    n: str
    a: str
    v: str = ""
