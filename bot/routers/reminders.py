"""Reminders in chat: what a reminder's buttons do.

* "Ziņot tagad" opens the /report form at that measure (one button per measure, up to
  ``MAX_REPORT_BUTTONS``; more measures get one "Citi pasākumi…" button that opens the picker).
* "Atgādināt rīt" enqueues the same content for the next working day at the send time
  (a new outbox row, kind ``snooze``, its own dedup key: pressing twice adds nothing).
* "Apturēt atgādinājumus" starts a small flow: measure → period → reason, stored in
  ``reminder_mute``; coordinators see active mutes in their digest.

How a reminder reads (text and buttons) is services/reminder_messages.py's and
bot/keyboards.py's: the sender renders outbox rows without this router.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot.access import RequireContact
from bot.context import ContactCtx
from bot.keyboards import MuteCb, ReminderCb, new_nonce
from bot.render import button
from bot.routers import report
from bot.states import MuteFlow, ReportFlow
from reporting_forms.messages import MESSAGE_LIMIT, message_length
from reporting_forms.texts import alert, shorten, text
from services.reminder_messages import (
    NAME_WIDTH,
    ReasonError,
    ReminderRow,
    measure_deadline,
    mute_until,
    own_reminder,
    parse_reason,
    snooze,
)

MAX_MUTE_BUTTONS = 8


MUTE_STATES = StateFilter(*MuteFlow.__states__)
MUTE_STATE_NAMES = frozenset(s.state for s in MuteFlow.__states__)


def _btn(label: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=label, callback_data=data.pack())


# ------------------------------------------------------------------ handlers


async def _own_row(ctx: ContactCtx, row_id: int) -> ReminderRow | None:
    return await own_reminder(ctx.repos, row_id, ctx.contact.id)


async def on_reminder_button(query: CallbackQuery, callback_data: ReminderCb, ctx: ContactCtx) -> None:
    lang = ctx.lang
    message = query.message
    row = await _own_row(ctx, callback_data.o)
    if row is None or message is None or isinstance(message, InaccessibleMessage):
        await query.answer(alert(lang, "reminders.reminder_gone"), show_alert=True)
        return
    await query.answer()
    if callback_data.a == "r":
        await _report_now(ctx, message, callback_data.m or None)
    elif callback_data.a == "s":
        await _snooze(ctx, message, row)
    elif callback_data.a == "m":
        await _start_mute(ctx, message, row)


async def _report_now(ctx: ContactCtx, message: Message, code: str | None) -> None:
    """Enter the report flow at ``code`` (None: the measure picker), as ``/report CODE`` would."""
    if await ctx.state.get_state() in (ReportFlow.answering.state, ReportFlow.open_draft.state):
        # an unfinished draft: /report's own "continue or start again?" question, never a silent loss
        await report.cmd_report(message, CommandObject(prefix="/", command="report", args=code), ctx)
        return
    await report._begin_picking(ctx, message, code)


async def _snooze(ctx: ContactCtx, message: Message, row: ReminderRow) -> None:
    added, day = await snooze(ctx.repos, row, ctx.contact.id, ctx.settings.reminder_policy, ctx.today())
    await message.answer(
        text(ctx.lang, "reminders.snoozed" if added else "reminders.snooze_already", when=day)
    )


# -- mute flow


async def _mute_data(state: FSMContext) -> dict[str, Any]:
    return dict((await state.get_data()).get("mute") or {})


async def _set_mute_data(state: FSMContext, **changes: Any) -> dict[str, Any]:
    mute = {**await _mute_data(state), **changes}
    await state.update_data(mute=mute)
    return mute


async def _finish_mute(ctx: ContactCtx, message: Message) -> None:
    """Leave the flow; a report draft that was open before comes back untouched."""
    data = await ctx.state.get_data()
    resume = (data.get("mute") or {}).get("resume")
    data.pop("mute", None)
    if resume and data.get("draft"):  # only a report draft is worth coming back to
        await ctx.state.set_state(resume)
        await ctx.state.set_data(data)
        await message.answer(text(ctx.lang, "reminders.mute_report_waiting"))
    else:
        await ctx.state.clear()


async def _start_mute(ctx: ContactCtx, message: Message, row: ReminderRow) -> None:
    current = await ctx.state.get_state()
    # a second mute button while muting starts over but keeps what to resume afterwards
    resume = (await _mute_data(ctx.state)).get("resume") if current in MUTE_STATE_NAMES else current
    await ctx.state.update_data(mute={"n": new_nonce(), "o": row.id, "resume": resume})
    codes = row.payload.measures
    if len(codes) == 1:
        await _set_mute_data(ctx.state, measure=codes[0])
        await _ask_period(ctx, message, row)
        return
    await ctx.state.set_state(MuteFlow.choosing_measure)
    await _ask_measure(ctx, message, row)


async def _ask_measure(ctx: ContactCtx, message: Message, row: ReminderRow) -> None:
    mute = await _mute_data(ctx.state)
    names = row.payload.measure_names()
    codes = list(names)
    shown = codes[:MAX_MUTE_BUTTONS]
    buttons = [_btn(code, MuteCb(n=mute["n"], a="m", v=code)) for code in shown]
    rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    rows.append([_btn(button(ctx.lang, "reminders.btn_cancel"), MuteCb(n=mute["n"], a="x"))])
    listed = [{"id": c, "name": shorten(names[c], NAME_WIDTH)} for c in codes]
    body = text(ctx.lang, "reminders.mute_choose_measure", measures=listed)
    if message_length(body) > MESSAGE_LIMIT:  # a long reminder: numbers only
        body = text(
            ctx.lang, "reminders.mute_choose_measure", measures=[{"id": c, "name": ""} for c in codes]
        )
    await message.answer(body, reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


async def _ask_period(ctx: ContactCtx, message: Message, row: ReminderRow) -> None:
    mute = await _mute_data(ctx.state)
    await ctx.state.set_state(MuteFlow.choosing_period)
    code = mute["measure"]
    deadline = measure_deadline(row.payload, code, ctx.today())
    options = [
        _btn(button(ctx.lang, "reminders.btn_period_2w"), MuteCb(n=mute["n"], a="p", v="2w")),
        _btn(button(ctx.lang, "reminders.btn_period_1m"), MuteCb(n=mute["n"], a="p", v="1m")),
    ]
    rows = [options]
    if deadline is not None:
        label = button(ctx.lang, "reminders.btn_period_deadline", deadline=deadline)
        rows.append([_btn(label, MuteCb(n=mute["n"], a="p", v="dl"))])
    rows.append([_btn(button(ctx.lang, "reminders.btn_cancel"), MuteCb(n=mute["n"], a="x"))])
    await message.answer(
        text(
            ctx.lang,
            "reminders.mute_choose_period",
            measure_id=code,
            measure_name=shorten(row.payload.measure_names().get(code, ""), NAME_WIDTH),
        ),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def _ask_reason(ctx: ContactCtx, message: Message, notice: str | None = None) -> None:
    mute = await _mute_data(ctx.state)
    if notice:
        await message.answer(notice)
    await message.answer(
        text(
            ctx.lang,
            "reminders.mute_ask_reason",
            measure_id=mute["measure"],
            until=dt.date.fromisoformat(mute["until"]),
        )
    )


async def _reask(ctx: ContactCtx, message: Message, notice: str | None = None) -> None:
    """Bad input: say why, then ask the same question again."""
    state = await ctx.state.get_state()
    mute = await _mute_data(ctx.state)
    row = await _own_row(ctx, int(mute.get("o") or 0))
    if row is None:
        await _finish_mute(ctx, message)
        await message.answer(text(ctx.lang, "reminders.reminder_gone"))
        return
    if state == MuteFlow.typing_reason.state:
        await _ask_reason(ctx, message, notice)
        return
    if notice:
        await message.answer(notice)
    if state == MuteFlow.choosing_measure.state:
        await _ask_measure(ctx, message, row)
    else:
        await _ask_period(ctx, message, row)


async def on_mute_button(query: CallbackQuery, callback_data: MuteCb, ctx: ContactCtx) -> None:
    lang, state = ctx.lang, ctx.state
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
        await _finish_mute(ctx, message)
        await message.answer(text(lang, "reminders.mute_cancelled"))
        return
    row = await _own_row(ctx, int(mute["o"]))
    if row is None:
        await _finish_mute(ctx, message)
        await message.answer(text(lang, "reminders.reminder_gone"))
        return
    if callback_data.a == "m":
        if callback_data.v not in row.payload.measures:
            await _reask(
                ctx, message, text(lang, "reminders.mute_unknown_measure", code=callback_data.v[:40])
            )
            return
        await _set_mute_data(state, measure=callback_data.v)
        await _ask_period(ctx, message, row)
        return
    try:
        until = mute_until(
            callback_data.v, ctx.today(), measure_deadline(row.payload, mute["measure"], ctx.today())
        )
    except ValueError:
        await _reask(ctx, message, text(lang, "common.stale_button"))
        return
    await _set_mute_data(state, until=until.isoformat())
    await state.set_state(MuteFlow.typing_reason)
    await _ask_reason(ctx, message)


async def on_mute_text(message: Message, ctx: ContactCtx) -> None:
    lang, state, contact, repos = ctx.lang, ctx.state, ctx.contact, ctx.repos
    current = await state.get_state()
    mute = await _mute_data(state)
    row = await _own_row(ctx, int(mute.get("o") or 0))
    if row is None:
        await _finish_mute(ctx, message)
        await message.answer(text(lang, "reminders.reminder_gone"))
        return
    if current == MuteFlow.choosing_measure.state:
        code = (message.text or "").strip()
        if code not in row.payload.measures:
            await _reask(ctx, message, text(lang, "reminders.mute_unknown_measure", code=code[:40]))
            return
        await _set_mute_data(state, measure=code)
        await _ask_period(ctx, message, row)
        return
    if current == MuteFlow.choosing_period.state:
        await _reask(ctx, message, text(lang, "reminders.mute_use_buttons"))
        return
    try:
        reason = parse_reason(message.text)
    except ReasonError as exc:
        await _reask(ctx, message, exc.message(lang))
        return
    until = dt.date.fromisoformat(mute["until"])
    await repos.reminders.add_mute(
        contact_id=contact.id, measure_code=mute["measure"], until=until, reason=reason
    )
    await _finish_mute(ctx, message)
    await message.answer(
        text(lang, "reminders.mute_saved", measure_id=mute["measure"], until=until, reason=reason)
    )


async def on_mute_not_text(message: Message, ctx: ContactCtx) -> None:
    await _reask(ctx, message, text(ctx.lang, "common.only_text"))


async def on_mute_cancel(message: Message, ctx: ContactCtx) -> None:
    await _finish_mute(ctx, message)
    await message.answer(text(ctx.lang, "reminders.mute_cancelled"))


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
