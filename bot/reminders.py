"""Reminders in chat: how an outbox row reads (text + buttons), and what its buttons do.

* "Ziņot tagad" opens the /report form at that measure (one button per measure, up to
  ``MAX_REPORT_BUTTONS``; more measures get one "Citi pasākumi…" button that opens the picker).
* "Atgādināt rīt" enqueues the same content for the next working day at the send time
  (a new outbox row, kind ``snooze``, its own dedup key: pressing twice adds nothing).
* "Apturēt atgādinājumus" starts a small flow: measure → period → reason, stored in
  ``reminder_mute``; coordinators see active mutes in their digest.

Rendering is pure (payload dict → text); the sender calls :func:`render_outbox` at send time
in the contact's current language.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)

from bot.access import RequireContact
from bot.config import Settings
from bot.keyboards import DbInt, new_nonce
from bot.render import button
from reporting_forms.answers import clean_text
from reporting_forms.catalog import Catalog
from reporting_forms.reminders import EscalationDigest, natural_key
from reporting_forms.texts import alert, text
from reporting_forms.workdays import next_working_day
from storage.outbox import (
    DOCUMENT_KINDS,
    KIND_DIGEST,
    KIND_NOTICE,
    KIND_SNOOZE,
    KIND_SUMMARY,
    REMINDER_KINDS,
    MuteView,
    NewMessage,
    OutboxRepo,
    ReminderRepo,
    payload_measures,
)
from storage.repositories import Repos
from storage.tables import Contact, Outbox

MESSAGE_LIMIT = 3900  # Telegram allows 4096 characters; leave room for entities and safety
MAX_REPORT_BUTTONS = 6
MAX_MUTE_BUTTONS = 8
NAME_WIDTH = 90
TASK_WIDTH = 120
MISSING_SHOWN = 8
REASON_MIN, REASON_MAX = 3, 300


# ------------------------------------------------------------------ callback data


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


class MuteFlow(StatesGroup):
    choosing_measure = State()
    choosing_period = State()
    typing_reason = State()


MUTE_STATES = StateFilter(*MuteFlow.__states__)
MUTE_STATE_NAMES = frozenset(s.state for s in MuteFlow.__states__)


def _btn(label: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=label, callback_data=data.pack())


# ------------------------------------------------------------------ rendering: reminders


def _shorten(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1].rstrip() + "…"


def _reminder_tasks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    send_date = dt.date.fromisoformat(payload["send_date"])
    tasks = []
    for group in payload.get("tasks", ()):
        items = []
        for item in group["items"]:
            deadline = dt.date.fromisoformat(item["deadline"])
            missing = list(item.get("missing", ()))
            items.append(
                {
                    "measure_id": item["measure_id"],
                    "measure_name": _shorten(item["measure_name"], NAME_WIDTH),
                    "kind": item["kind"],
                    "deadline": deadline,
                    "period_year": item["period_year"],
                    "days_left": (deadline - send_date).days,
                    "missing": missing[:MISSING_SHOWN],
                    "missing_more": max(0, len(missing) - MISSING_SHOWN),
                    "missing_count": len(missing),
                }
            )
        title = _shorten(group["task_title"], TASK_WIDTH)
        tasks.append({"task_id": group["task_id"], "task_title": title, "measures": items})
    return tasks


def _cut(tasks: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    out, left = [], keep
    for task in tasks:
        if left <= 0:
            break
        out.append({**task, "measures": task["measures"][:left]})
        left -= len(out[-1]["measures"])
    return out


def reminder_text(payload: dict[str, Any], lang: str) -> str:
    """The reminder message; shorter forms when the full one would not fit one message."""
    tasks = _reminder_tasks(payload)
    params = {
        "institution": payload.get("institution", ""),
        "kinds": list(payload.get("kinds", ())),
        "snoozed_from": dt.date.fromisoformat(payload["snoozed_from"])
        if payload.get("snoozed_from")
        else None,
    }
    for compact in (False, True):
        body = text(lang, "reminders.reminder", tasks=tasks, compact=compact, more=0, **params)
        if len(body) <= MESSAGE_LIMIT:
            return body
    total = sum(len(t["measures"]) for t in tasks)
    keep = total
    while keep > 1:
        keep = max(1, keep * 3 // 4)
        body = text(
            lang, "reminders.reminder", tasks=_cut(tasks, keep), compact=True, more=total - keep, **params
        )
        if len(body) <= MESSAGE_LIMIT:
            return body
    return body


def reminder_keyboard(row_id: int, payload: dict[str, Any], lang: str) -> InlineKeyboardMarkup:
    codes = payload_measures(payload)
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


# ------------------------------------------------------------------ rendering: the digest


def _digest_institution(abbr: str, entries: Sequence[Any], names: dict[int, str], tz: Any) -> dict[str, Any]:
    groups: dict[tuple[str, str, int], dict[str, Any]] = {}
    reminded: dict[int, set[dt.date]] = defaultdict(set)
    for e in entries:
        key = (e.source.value, e.deadline.isoformat(), e.period_year)
        group = groups.setdefault(
            key,
            {
                "source": e.source.value,
                "deadline": e.deadline.isoformat(),
                "period_year": e.period_year,
                "days_overdue": e.days_overdue,
                "measures": [],
            },
        )
        if e.measure_id not in group["measures"]:
            group["measures"].append(e.measure_id)
        for r in e.reminded:
            reminded[r.contact_id].add(r.sent_at.astimezone(tz).date())
    ordered = sorted(groups.values(), key=lambda g: (-g["days_overdue"], g["source"], g["deadline"]))
    for g in ordered:
        g["measures"].sort(key=natural_key)
    return {
        "abbr": abbr,
        "groups": ordered,
        "reminded": [
            {"name": names.get(cid, f"#{cid}"), "dates": [d.isoformat() for d in sorted(days)]}
            for cid, days in sorted(reminded.items(), key=lambda kv: names.get(kv[0], ""))
        ],
        "nobody": all(e.nobody_to_remind for e in entries),
    }


def digest_payloads(
    digest: EscalationDigest,
    mutes: Sequence[MuteView],
    names: dict[int, str],
    lang: str,
    tz: Any,
) -> list[dict[str, Any]]:
    """The digest as one or more message payloads, each fitting one Telegram message.

    Usually one. Otherwise institutions are packed whole into parts (an institution too long for
    one message is split by its deadline groups, "(turpinājums)"), then the mutes and the blocked
    contacts fill the last part and spill into more parts when they must."""
    institutions = [
        _digest_institution(abbr, entries, names, tz) for abbr, entries in digest.by_institution().items()
    ]
    mute_rows = [
        {
            "contact": m.contact_name,
            "institution": m.institution,
            "measure_id": m.measure_id,
            "until": m.until.isoformat(),
            "reason": _shorten(m.reason, 200),
        }
        for m in mutes
    ]
    blocked = [
        {"name": names.get(c.contact_id, f"#{c.contact_id}"), "institution": c.institution}
        for c in digest.blocked_contacts
    ]

    def fits(part: dict[str, Any]) -> bool:
        return len(digest_text(part, lang)) <= MESSAGE_LIMIT

    whole = _part(digest, institutions, mute_rows, blocked)
    if fits(whole):
        parts = [whole]
    else:
        parts = [_part(digest, [], [], [])]
        for block in _institution_blocks(digest, institutions, fits):
            _pack(parts, "institutions", block, fits, lambda: _part(digest, [], [], []))
        for key, rows in (("mutes", mute_rows), ("blocked", blocked)):
            for row in rows:
                _pack(parts, key, row, fits, lambda: _part(digest, [], [], []))
    for i, p in enumerate(parts, start=1):
        p["part"], p["parts"], p["language"] = i, len(parts), lang
    return parts


def _pack(
    parts: list[dict[str, Any]],
    key: str,
    value: Any,
    fits: Callable[[dict[str, Any]], bool],
    new_part: Callable[[], dict[str, Any]],
) -> None:
    """Append ``value`` to ``parts[-1][key]``, or start a new part when it would not fit."""
    last = parts[-1]
    candidate = {**last, key: [*last[key], value]}
    empty = not (last["institutions"] or last["mutes"] or last["blocked"])
    if empty or fits(candidate):
        parts[-1] = candidate
    else:
        fresh = new_part()
        fresh[key] = [value]
        parts.append(fresh)


def _institution_blocks(
    digest: EscalationDigest, institutions: list[dict[str, Any]], fits: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Institutions as blocks that each fit a message: a long one is cut into its deadline groups,
    and a group longer than a message keeps its first measures ("un vēl N")."""
    blocks = []
    for inst in institutions:
        if fits(_part(digest, [inst], [], [])):
            blocks.append(inst)
            continue
        for i, group in enumerate(inst["groups"]):
            piece = {
                **inst,
                "groups": [group],
                "continued": i > 0,
                "reminded": inst["reminded"] if i == 0 else [],
            }
            while not fits(_part(digest, [piece], [], [])) and len(group["measures"]) > 1:
                shown = group["measures"][: max(1, len(group["measures"]) * 3 // 4)]
                group = {
                    **group,
                    "measures": shown,
                    "more": group.get("more", 0) + len(group["measures"]) - len(shown),
                }
                piece["groups"] = [group]
            blocks.append(piece)
    return blocks


def _part(
    digest: EscalationDigest, institutions: list[dict[str, Any]], mutes: list[Any], blocked: list[Any]
) -> dict[str, Any]:
    return {
        "day": digest.day.isoformat(),
        "overdue_total": len(digest.entries),
        "institutions": institutions,
        "mutes": mutes,
        "blocked": blocked,
        "part": 1,
        "parts": 9,  # a placeholder of the same width while packing
    }


def digest_text(payload: dict[str, Any], lang: str) -> str:
    date = dt.date.fromisoformat
    institutions = [
        {
            **inst,
            "continued": inst.get("continued", False),
            "groups": [
                {**g, "deadline": date(g["deadline"]), "more": g.get("more", 0)} for g in inst["groups"]
            ],
            "reminded": [
                {"name": r["name"], "dates": [date(d) for d in r["dates"]]} for r in inst["reminded"]
            ],
        }
        for inst in payload["institutions"]
    ]
    return text(
        lang,
        "reminders.digest",
        day=date(payload["day"]),
        part=payload["part"],
        parts=payload["parts"],
        institutions=institutions,
        mutes=[{**m, "until": date(m["until"])} for m in payload.get("mutes", ())],
        blocked=payload.get("blocked", ()),
        overdue_total=payload.get("overdue_total", 0),
    )


def render_outbox(
    kind: str, payload: dict[str, Any], lang: str, row_id: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """What an outbox row looks like in chat (the sender's only rendering entry point)."""
    if kind in REMINDER_KINDS:
        return reminder_text(payload, lang), reminder_keyboard(row_id, payload, lang)
    if kind == KIND_DIGEST:
        return digest_text(payload, lang), None
    if kind in (KIND_SUMMARY, KIND_NOTICE):  # rendered in the recipient's language when queued
        return payload["text"], None
    if kind in DOCUMENT_KINDS:  # the file is the message; a caption is optional
        return payload.get("caption", ""), None
    raise ValueError(f"no renderer for outbox kind {kind!r}")


# ------------------------------------------------------------------ snooze and mute rules


def snooze_key(contact_id: int, day: dt.date, original_key: str) -> str:
    blob = json.dumps([contact_id, KIND_SNOOZE, day.isoformat(), original_key], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def mute_until(option: str, today: dt.date, deadline: dt.date | None) -> dt.date:
    """The first day reminders come again. ValueError for an unknown or past option."""
    if option == "2w":
        return today + dt.timedelta(days=14)
    if option == "1m":
        return add_months(today, 1)
    if option == "dl" and deadline is not None and deadline > today:
        return deadline
    raise ValueError(option)


class ReasonError(ValueError):
    """Why a typed mute reason is refused: ``code`` names the message, ``params`` fill it."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def parse_reason(raw: str | None) -> str:
    """A mute reason: one line of 3–300 characters (inner whitespace collapsed)."""
    reason = " ".join(clean_text(raw or "").split())
    if len(reason) < REASON_MIN:
        raise ReasonError("mute_reason_too_short")
    if len(reason) > REASON_MAX:
        raise ReasonError("mute_reason_too_long", length=len(reason))
    return reason


def _measure_deadline(payload: dict[str, Any], code: str, today: dt.date) -> dt.date | None:
    """The nearest future deadline the reminder names for this measure."""
    days = [
        dt.date.fromisoformat(item["deadline"])
        for group in payload.get("tasks", ())
        for item in group["items"]
        if item["measure_id"] == code
    ]
    future = [d for d in days if d > today]
    return min(future) if future else None


def _measure_names(payload: dict[str, Any]) -> dict[str, str]:
    return {
        item["measure_id"]: item["measure_name"]
        for group in payload.get("tasks", ())
        for item in group["items"]
    }


# ------------------------------------------------------------------ handlers


@dataclass
class _Env:
    contact: Contact
    lang: str
    repos: Repos
    state: FSMContext
    settings: Settings

    def today(self) -> dt.date:
        return dt.datetime.now(self.settings.reminder_policy.tz).date()


async def _own_row(env: _Env, row_id: int) -> Outbox | None:
    row = await OutboxRepo(env.repos.session).get(row_id)
    if row is None or row.contact_id != env.contact.id or row.kind not in REMINDER_KINDS:
        return None
    return row


async def on_reminder_button(
    query: CallbackQuery,
    callback_data: ReminderCb,
    state: FSMContext,
    contact: Contact,
    lang: str,
    repos: Repos,
    catalog: Catalog,
    settings: Settings,
) -> None:
    env = _Env(contact, lang, repos, state, settings)
    message = query.message
    row = await _own_row(env, callback_data.o)
    if row is None or message is None or isinstance(message, InaccessibleMessage):
        await query.answer(alert(lang, "reminders.reminder_gone"), show_alert=True)
        return
    await query.answer()
    if callback_data.a == "r":
        await _report_now(env, message, catalog, callback_data.m or None)
    elif callback_data.a == "s":
        await _snooze(env, message, row)
    elif callback_data.a == "m":
        await _start_mute(env, message, row)


async def _report_now(env: _Env, message: Message, catalog: Catalog, code: str | None) -> None:
    """Enter the report flow at ``code`` (None: the measure picker), as ``/report CODE`` would."""
    from bot.routers import report  # the report flow owns the form
    from bot.states import ReportFlow

    inst = await env.repos.people.institution_by_id(env.contact.institution_id)
    ctx = report.Ctx(env.contact, inst.abbr, env.lang, env.repos, catalog, env.state, env.settings)
    if await env.state.get_state() in (ReportFlow.answering.state, ReportFlow.open_draft.state):
        # an unfinished draft: /report's own "continue or start again?" question, never a silent loss
        await report.cmd_report(message, CommandObject(prefix="/", command="report", args=code), ctx)
        return
    await report._begin_picking(ctx, message, code)


async def _snooze(env: _Env, message: Message, row: Outbox) -> None:
    policy = env.settings.reminder_policy
    day = next_working_day(env.today(), policy.country)
    payload = dict(row.payload)
    payload.setdefault("snoozed_from", payload.get("send_date") or env.today().isoformat())
    payload["send_date"] = day.isoformat()
    payload["original_id"] = row.id
    key = snooze_key(env.contact.id, day, row.dedup_key)
    added = await OutboxRepo(env.repos.session).add(
        NewMessage(
            dedup_key=key,
            contact_id=env.contact.id,
            chat_id=row.chat_id,
            kind=KIND_SNOOZE,
            payload=payload,
            send_at=policy.send_at(day),
        )
    )
    await message.answer(
        text(env.lang, "reminders.snoozed" if added else "reminders.snooze_already", when=day)
    )


# -- mute flow


async def _mute_data(state: FSMContext) -> dict[str, Any]:
    return dict((await state.get_data()).get("mute") or {})


async def _set_mute_data(state: FSMContext, **changes: Any) -> dict[str, Any]:
    mute = {**await _mute_data(state), **changes}
    await state.update_data(mute=mute)
    return mute


async def _finish_mute(env: _Env, message: Message) -> None:
    """Leave the flow; a report draft that was open before comes back untouched."""
    data = await env.state.get_data()
    resume = (data.get("mute") or {}).get("resume")
    data.pop("mute", None)
    if resume and data.get("draft"):  # only a report draft is worth coming back to
        await env.state.set_state(resume)
        await env.state.set_data(data)
        await message.answer(text(env.lang, "reminders.mute_report_waiting"))
    else:
        await env.state.clear()


async def _start_mute(env: _Env, message: Message, row: Outbox) -> None:
    current = await env.state.get_state()
    # a second mute button while muting starts over but keeps what to resume afterwards
    resume = (await _mute_data(env.state)).get("resume") if current in MUTE_STATE_NAMES else current
    await env.state.update_data(mute={"n": new_nonce(), "o": row.id, "resume": resume})
    codes = payload_measures(row.payload)
    if len(codes) == 1:
        await _set_mute_data(env.state, measure=codes[0])
        await _ask_period(env, message, row)
        return
    await env.state.set_state(MuteFlow.choosing_measure)
    await _ask_measure(env, message, row)


async def _ask_measure(env: _Env, message: Message, row: Outbox) -> None:
    mute = await _mute_data(env.state)
    names = _measure_names(row.payload)
    codes = list(names)
    shown = codes[:MAX_MUTE_BUTTONS]
    buttons = [_btn(code, MuteCb(n=mute["n"], a="m", v=code)) for code in shown]
    rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    rows.append([_btn(button(env.lang, "reminders.btn_cancel"), MuteCb(n=mute["n"], a="x"))])
    listed = [{"id": c, "name": _shorten(names[c], NAME_WIDTH)} for c in codes]
    body = text(env.lang, "reminders.mute_choose_measure", measures=listed)
    if len(body) > MESSAGE_LIMIT:  # a long reminder: numbers only
        body = text(
            env.lang, "reminders.mute_choose_measure", measures=[{"id": c, "name": ""} for c in codes]
        )
    await message.answer(body, reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


async def _ask_period(env: _Env, message: Message, row: Outbox) -> None:
    mute = await _mute_data(env.state)
    await env.state.set_state(MuteFlow.choosing_period)
    code = mute["measure"]
    deadline = _measure_deadline(row.payload, code, env.today())
    options = [
        _btn(button(env.lang, "reminders.btn_period_2w"), MuteCb(n=mute["n"], a="p", v="2w")),
        _btn(button(env.lang, "reminders.btn_period_1m"), MuteCb(n=mute["n"], a="p", v="1m")),
    ]
    rows = [options]
    if deadline is not None:
        label = button(env.lang, "reminders.btn_period_deadline", deadline=deadline)
        rows.append([_btn(label, MuteCb(n=mute["n"], a="p", v="dl"))])
    rows.append([_btn(button(env.lang, "reminders.btn_cancel"), MuteCb(n=mute["n"], a="x"))])
    await message.answer(
        text(
            env.lang,
            "reminders.mute_choose_period",
            measure_id=code,
            measure_name=_shorten(_measure_names(row.payload).get(code, ""), NAME_WIDTH),
        ),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def _ask_reason(env: _Env, message: Message, notice: str | None = None) -> None:
    mute = await _mute_data(env.state)
    if notice:
        await message.answer(notice)
    await message.answer(
        text(
            env.lang,
            "reminders.mute_ask_reason",
            measure_id=mute["measure"],
            until=dt.date.fromisoformat(mute["until"]),
        )
    )


async def _reask(env: _Env, message: Message, notice: str | None = None) -> None:
    """Bad input: say why, then ask the same question again."""
    state = await env.state.get_state()
    mute = await _mute_data(env.state)
    row = await _own_row(env, int(mute.get("o") or 0))
    if row is None:
        await _finish_mute(env, message)
        await message.answer(text(env.lang, "reminders.reminder_gone"))
        return
    if state == MuteFlow.typing_reason.state:
        await _ask_reason(env, message, notice)
        return
    if notice:
        await message.answer(notice)
    if state == MuteFlow.choosing_measure.state:
        await _ask_measure(env, message, row)
    else:
        await _ask_period(env, message, row)


async def on_mute_button(
    query: CallbackQuery,
    callback_data: MuteCb,
    state: FSMContext,
    contact: Contact,
    lang: str,
    repos: Repos,
    settings: Settings,
) -> None:
    env = _Env(contact, lang, repos, state, settings)
    message = query.message
    mute = await _mute_data(state)
    current = await state.get_state()
    expected = {"m": MuteFlow.choosing_measure.state, "p": MuteFlow.choosing_period.state}
    if (
        message is None
        or isinstance(message, InaccessibleMessage)
        or mute.get("n") != callback_data.n
        or (callback_data.a != "x" and current != expected.get(callback_data.a))
        or (callback_data.a == "x" and current not in MUTE_STATE_NAMES)
    ):
        await query.answer(text(lang, "common.stale_button"))
        return
    await query.answer()
    await message.edit_reply_markup(reply_markup=None)
    if callback_data.a == "x":
        await _finish_mute(env, message)
        await message.answer(text(lang, "reminders.mute_cancelled"))
        return
    row = await _own_row(env, int(mute["o"]))
    if row is None:
        await _finish_mute(env, message)
        await message.answer(text(lang, "reminders.reminder_gone"))
        return
    if callback_data.a == "m":
        if callback_data.v not in payload_measures(row.payload):
            await _reask(
                env, message, text(lang, "reminders.mute_unknown_measure", code=callback_data.v[:40])
            )
            return
        await _set_mute_data(state, measure=callback_data.v)
        await _ask_period(env, message, row)
        return
    try:
        until = mute_until(
            callback_data.v, env.today(), _measure_deadline(row.payload, mute["measure"], env.today())
        )
    except ValueError:
        await _reask(env, message, text(lang, "common.stale_button"))
        return
    await _set_mute_data(state, until=until.isoformat())
    await state.set_state(MuteFlow.typing_reason)
    await _ask_reason(env, message)


async def on_mute_text(
    message: Message, state: FSMContext, contact: Contact, lang: str, repos: Repos, settings: Settings
) -> None:
    env = _Env(contact, lang, repos, state, settings)
    current = await state.get_state()
    mute = await _mute_data(state)
    row = await _own_row(env, int(mute.get("o") or 0))
    if row is None:
        await _finish_mute(env, message)
        await message.answer(text(lang, "reminders.reminder_gone"))
        return
    if current == MuteFlow.choosing_measure.state:
        code = (message.text or "").strip()
        if code not in payload_measures(row.payload):
            await _reask(env, message, text(lang, "reminders.mute_unknown_measure", code=code[:40]))
            return
        await _set_mute_data(state, measure=code)
        await _ask_period(env, message, row)
        return
    if current == MuteFlow.choosing_period.state:
        await _reask(env, message, text(lang, "reminders.mute_use_buttons"))
        return
    try:
        reason = parse_reason(message.text)
    except ReasonError as exc:
        await _reask(env, message, text(lang, f"reminders.{exc.code}", **exc.params))
        return
    until = dt.date.fromisoformat(mute["until"])
    await ReminderRepo(repos.session).add_mute(
        contact_id=contact.id, measure_code=mute["measure"], until=until, reason=reason
    )
    await _finish_mute(env, message)
    await message.answer(
        text(lang, "reminders.mute_saved", measure_id=mute["measure"], until=until, reason=reason)
    )


async def on_mute_not_text(
    message: Message, state: FSMContext, contact: Contact, lang: str, repos: Repos, settings: Settings
) -> None:
    await _reask(_Env(contact, lang, repos, state, settings), message, text(lang, "common.only_text"))


async def on_mute_cancel(
    message: Message, state: FSMContext, contact: Contact, lang: str, repos: Repos, settings: Settings
) -> None:
    await _finish_mute(_Env(contact, lang, repos, state, settings), message)
    await message.answer(text(lang, "reminders.mute_cancelled"))


def router() -> Router:
    r = Router(name="reminders")
    for observer in (r.message, r.callback_query):
        observer.middleware(RequireContact())
    r.callback_query.register(on_reminder_button, ReminderCb.filter())
    r.callback_query.register(on_mute_button, MuteCb.filter())
    r.message.register(on_mute_cancel, MUTE_STATES, Command("cancel"))
    r.message.register(on_mute_text, MUTE_STATES, F.text, ~F.text.startswith("/"))
    r.message.register(on_mute_not_text, MUTE_STATES, ~F.text)
    return r


# ------------------------------------------------------------------ middleware

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UnblockOnContact(BaseMiddleware):
    """A contact flagged ``blocked`` (a 403 on a reminder) who writes to the bot again has
    unblocked it: clear the flag so reminders resume. Runs inside UnitOfWork (same session)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        contact: Contact | None = data.get("contact")
        if contact is not None and contact.blocked:
            contact.blocked = False
        return await handler(event, data)
