"""/report: choose a measure and a period, answer one question per indicator row, review the
summary card, confirm. The draft is written to the database after every step; /myreports
lists reports and reopens one for correction (a new revision)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message

from bot.access import RequireContact
from bot.context import ContactCtx, Ctx
from bot.filters import COMMAND_TEXT, TYPED
from bot.keyboards import (
    DraftCb,
    FormCb,
    MeasureCb,
    MyReportCb,
    YearCb,
    draft_keyboard,
    measures_keyboard,
    my_reports_keyboard,
    new_nonce,
    question_keyboard,
    summary_keyboard,
    tasks_keyboard,
    years_keyboard,
)
from bot.render import button, change_rows, error_text, question_text, summary_text
from bot.routers import status
from bot.routers.start import switch_language
from bot.states import ReportFlow
from reporting_forms import forms
from reporting_forms.catalog import Catalog, Measure, Task
from reporting_forms.compilation import default_status_rules
from reporting_forms.draft_warnings import draft_warnings
from reporting_forms.messages import chunks
from reporting_forms.periods import filed_late
from reporting_forms.texts import LANGUAGES, alert, text, to_local
from storage.compile_inputs import row_values_besides

PAGE_SIZE = 8  # tasks per page of the picker; an institution with this few measures sees them at once
IN_FLOW = StateFilter(
    ReportFlow.choosing_measure, ReportFlow.choosing_year, ReportFlow.answering, ReportFlow.open_draft
)

# Questions whose answer is a typed number (the offline console then reads "1" as the answer).
NUMERIC_KINDS = frozenset({forms.FieldKind.COUNT, forms.FieldKind.PERCENT})


def _measures(ctx: ContactCtx) -> list[tuple[Task, Measure]]:
    """(task, measure) pairs the contact's institution reports on, in plan order."""
    return [(task, m) for _plan, _d, task, m in ctx.catalog.measures_for(ctx.institution.abbr)]


def _example(ctx: ContactCtx) -> str:
    """A measure id to show as the example of a typed id: one the contact can pick (never the
    refused one), the institution's first in plan order."""
    mine = _measures(ctx)
    return mine[0][1].id if mine else ""


def _allowed(ctx: ContactCtx, code: str) -> Measure | None:
    return ctx.catalog.measure_of(ctx.institution.abbr, code) if isinstance(code, str) else None


def _task_groups(ctx: ContactCtx) -> list[tuple[Task, list[Measure]]]:
    groups: list[tuple[Task, list[Measure]]] = []
    for task, m in _measures(ctx):
        if not groups or groups[-1][0].id != task.id:
            groups.append((task, []))
        groups[-1][1].append(m)
    return groups


def expects_typed_number(catalog: Catalog, state: str | None, data: Mapping[str, Any]) -> bool:
    """True when the current step is a count or percent question: a typed number answers it.
    (The offline console asks, to tell an answer "1" from pressing button [1].)"""
    if state != ReportFlow.answering.state or not data.get("draft"):
        return False
    try:
        draft = forms.Draft.from_dict(data["draft"])
        _, step = forms.resume(forms.form_for(catalog.measure(draft.measure_id)), draft)
    except (forms.DraftError, KeyError, ValueError):
        return False
    return isinstance(step, forms.Ask) and step.field.kind in NUMERIC_KINDS


async def _send(message: Message, body: str, keyboard: InlineKeyboardMarkup | None = None) -> None:
    """A message in as many parts as Telegram needs; the keyboard goes under the last part."""
    parts = chunks(body)
    for part in parts[:-1]:
        await message.answer(part)
    await message.answer(parts[-1], reply_markup=keyboard)


# ------------------------------------------------------------------ screens


async def _show_picker(
    ctx: ContactCtx, target: Message, page: int = 0, task: str | None = None, *, edit: bool = False
) -> None:
    """Tasks (paged, one button each) → a task's measures; few measures: all of them at once."""
    groups = _task_groups(ctx)
    if not groups:
        await ctx.state.clear()
        await target.answer(text(ctx.lang, "report.no_measures", institution=ctx.institution.abbr))
        return
    nonce = (await ctx.state.get_data())["nonce"]
    pages = max(1, math.ceil(len(groups) / PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    chosen = [g for g in groups if g[0].id == task]
    everything = sum(len(ms) for _t, ms in groups) <= PAGE_SIZE
    if chosen or everything:
        shown = chosen or groups
        body = text(
            ctx.lang,
            "report.choose_measure",
            institution=ctx.institution.abbr,
            example=_example(ctx),
            groups=[
                {
                    "task_id": t.id,
                    "task_title": t.title,
                    "measures": [{"id": m.id, "name": m.name} for m in ms],
                }
                for t, ms in shown
            ],
        )
        keyboard = measures_keyboard(
            ctx.lang, nonce, [(m.id, m.name) for _t, ms in shown for m in ms], None if everything else page
        )
    else:
        on_page = groups[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        body = text(
            ctx.lang,
            "report.choose_task",
            institution=ctx.institution.abbr,
            example=_example(ctx),
            page=page + 1,
            pages=pages,
            tasks=[{"id": t.id, "title": t.title, "count": len(ms)} for t, ms in on_page],
        )
        keyboard = tasks_keyboard(
            ctx.lang, nonce, [(t.id, t.title, len(ms)) for t, ms in on_page], page, pages
        )
    await ctx.state.update_data(page=page, task=chosen[0][0].id if chosen else None)
    if edit:
        try:
            await target.edit_text(body, reply_markup=keyboard)
            return
        except TelegramBadRequest as exc:
            if "not modified" in str(exc):  # the same button twice
                return
    await target.answer(body, reply_markup=keyboard)


async def _begin_picking(ctx: ContactCtx, message: Message, code: str | None) -> None:
    await ctx.state.set_state(ReportFlow.choosing_measure)
    await ctx.state.set_data({"nonce": new_nonce(), "page": 0})
    if code:
        await _choose_measure(ctx, message, code)
    else:
        await _show_picker(ctx, message)


async def _choose_measure(ctx: ContactCtx, message: Message, code: str) -> None:
    measure = _allowed(ctx, code.strip())
    if measure is None:
        await message.answer(
            text(ctx.lang, "report.unknown_measure", code=code.strip()[:40], example=_example(ctx))
        )
        data = await ctx.state.get_data()
        await _show_picker(ctx, message, data.get("page", 0), data.get("task"))
        return
    years = ctx.open_years()
    if not years:
        await ctx.state.clear()
        await message.answer(text(ctx.lang, "report.no_open_period"))
        return
    if len(years) == 1:
        await _begin_form(ctx, message, measure, years[0])
        return
    await ctx.state.set_state(ReportFlow.choosing_year)
    await ctx.state.update_data(measure_id=measure.id)
    await _show_years(ctx, message)


async def _show_years(ctx: ContactCtx, message: Message) -> None:
    data = await ctx.state.get_data()
    measure = _allowed(ctx, data.get("measure_id", ""))
    years = ctx.open_years()
    if measure is None or not years:
        await _begin_picking(ctx, message, None)
        return
    await message.answer(
        text(ctx.lang, "report.choose_year", measure_id=measure.id, measure_name=measure.name, years=years),
        reply_markup=years_keyboard(ctx.lang, data["nonce"], years),
    )


async def _begin_form(
    ctx: ContactCtx, message: Message, measure: Measure, year: int, report_id: int | None = None
) -> None:
    """A fresh draft, or — when this period already has a submitted report — a correction
    draft holding its current values, opened at the summary card."""
    spec = forms.form_for(measure)
    measure_row = await _measure_row(ctx, measure)
    # the year's report, and what the institution reported in earlier years (which does not
    # change while the form is open): one read
    opening = await ctx.repos.reports.opening(measure_row, ctx.contact.institution_id, year)
    existing = opening.existing
    if existing is not None and existing.revision > 0:
        view = await ctx.repos.reports.view(existing.id)
        draft, _ = forms.resume(
            spec, forms.Draft(measure_id=measure.id, year=year, answers=view.answers(), cursor=forms.SUMMARY)
        )
        await message.answer(
            text(ctx.lang, "report.correcting", report_id=existing.id, revision=existing.revision)
        )
    else:
        draft, _ = forms.start(spec, year)
    data = await ctx.state.get_data()
    nonce = data.get("nonce") or new_nonce()
    await ctx.state.set_state(ReportFlow.answering)
    await ctx.state.set_data(
        {
            "nonce": nonce,
            "draft": draft.to_dict(),
            "earlier": _years_as_keys(opening.earlier),
            "inst": ctx.contact.institution_id,  # whose draft it is: re-checked on resume and submit
        }
    )
    await _show_step(ctx, message, measure, draft)


async def _measure_row(ctx: ContactCtx, measure: Measure) -> int:
    """The measure's row id in the database (the catalog is loaded by ``resobot init``)."""
    found = await ctx.repos.catalog.measure_id(measure.id)
    if found is None:
        raise LookupError(f"measure {measure.id} is not in the database; run `resobot init`")
    return found


def _years_as_keys(earlier: dict[str, dict[int, Any]]) -> dict[str, dict[str, Any]]:
    """JSON object keys are strings."""
    return {code: {str(y): v for y, v in by_year.items()} for code, by_year in earlier.items()}


def _years_from_keys(earlier: dict[str, dict[str, Any]]) -> dict[str, dict[int, Any]]:
    return {code: {int(y): v for y, v in by_year.items()} for code, by_year in earlier.items()}


async def _show_step(
    ctx: ContactCtx, message: Message, measure: Measure, draft: forms.Draft, notice: str | None = None
) -> None:
    """Save the draft, then show its current step (question or summary)."""
    spec = forms.form_for(measure)
    draft, step = forms.resume(spec, draft)
    data = await ctx.state.get_data()
    await ctx.state.update_data(draft=draft.to_dict())
    nonce = data["nonce"]
    if notice:
        await message.answer(notice)
    if isinstance(step, forms.Summary):
        await _send(
            message,
            summary_text(ctx.lang, measure, draft.year, step, await _warnings(ctx, measure, draft)),
            summary_keyboard(ctx.lang, nonce, [r.field.key for r in step.rows]),
        )
        return
    earlier = _years_from_keys(data.get("earlier") or {})
    # editing from the summary: "Atpakaļ" returns to the card unchanged, also from the first field
    can_go_back = step.field.key != spec.fields[0].key or draft.return_to_summary
    await _send(
        message,
        question_text(ctx.lang, measure, draft.year, step, earlier),
        question_keyboard(ctx.lang, nonce, step.field, can_go_back=can_go_back),
    )


async def _warnings(ctx: ContactCtx, measure: Measure, draft: forms.Draft) -> list[str]:
    """Validation rules (validation_rules.yaml) on the draft — the whole-row checks with every
    institution's other reports of the row, as the compilation runs them: shown on the summary
    card before confirming, never blocking."""
    others = await row_values_besides(
        ctx.repos.source, await _measure_row(ctx, measure), ctx.contact.institution_id, draft.year
    )
    return draft_warnings(ctx.lang, ctx.catalog, measure, draft.year, draft.answers, others)


async def _current(ctx: ContactCtx) -> tuple[Measure, forms.Draft] | None:
    data = await ctx.state.get_data()
    raw = data.get("draft")
    if not raw:
        return None
    try:
        draft = forms.Draft.from_dict(raw)
        return ctx.catalog.measure(draft.measure_id), draft
    except (forms.DraftError, KeyError):
        return None


async def _keep(ctx: ContactCtx, message: Message, measure: Measure) -> bool:
    """Whether the open draft still belongs to the contact's institution. One that does not
    (the contact moved to another institution with /start CODE, or the measure is not theirs)
    is deleted, with a message saying why; False then."""
    started_by = (await ctx.state.get_data()).get("inst")
    moved = started_by is not None and started_by != ctx.contact.institution_id
    if not moved and _allowed(ctx, measure.id) is not None:
        return True
    await ctx.state.clear()
    await message.answer(
        text(
            ctx.lang,
            "report.draft_not_yours",
            measure_id=measure.id,
            institution=ctx.institution.abbr,
            moved=moved,
        )
    )
    return False


async def _show_draft_offer(ctx: ContactCtx, message: Message) -> None:
    current = await _current(ctx)
    if current is None:
        await _begin_picking(ctx, message, None)
        return
    measure, draft = current
    if not await _keep(ctx, message, measure):
        return
    nonce = (await ctx.state.get_data())["nonce"]
    await message.answer(
        text(ctx.lang, "report.open_draft", measure_id=measure.id, year=draft.year),
        reply_markup=draft_keyboard(ctx.lang, nonce),
    )


async def _offer_draft(ctx: ContactCtx, message: Message, after: dict[str, Any]) -> None:
    """An unfinished draft is open: continue it, or delete it and then do ``after``
    ({"measure": code} — /report CODE, {"report": id} — correct that report, {} — the picker)."""
    await ctx.state.set_state(ReportFlow.open_draft)
    await ctx.state.update_data(nonce=new_nonce(), after=after)
    await _show_draft_offer(ctx, message)


async def _reask(ctx: ContactCtx, message: Message, notice: str | None = None) -> None:
    """Show the current step again, with its buttons (after bad input, a stale button, /help, ...)."""
    state = await ctx.state.get_state()
    if notice:
        await message.answer(notice)
    if state == ReportFlow.answering.state:
        current = await _current(ctx)
        if current is None:
            await _begin_picking(ctx, message, None)
        elif await _keep(ctx, message, current[0]):
            await _show_step(ctx, message, *current)
    elif state == ReportFlow.choosing_measure.state:
        data = await ctx.state.get_data()
        await _show_picker(ctx, message, data.get("page", 0), data.get("task"))
    elif state == ReportFlow.choosing_year.state:
        await _show_years(ctx, message)
    elif state == ReportFlow.open_draft.state:
        await _show_draft_offer(ctx, message)


async def _submit(ctx: ContactCtx, message: Message, measure: Measure, draft: forms.Draft) -> None:
    if not await _keep(ctx, message, measure):  # never a report for an institution not responsible
        return
    spec = forms.form_for(measure)
    errors = forms.confirm_errors(spec, draft)
    if errors:
        lines = [error_text(ctx.lang, code, params) for code, params in errors]
        await _show_step(
            ctx, message, measure, draft, notice=text(ctx.lang, "report.cannot_confirm", errors=lines)
        )
        return
    forms.validate_answers(spec, draft.answers, year=draft.year)  # never store anything invalid
    report = await ctx.repos.reports.submit(
        measure_id=await _measure_row(ctx, measure),
        institution_id=ctx.contact.institution_id,
        year=draft.year,
        answers=dict(draft.answers),
        contact_id=ctx.contact.id,
    )
    await ctx.state.clear()
    await message.answer(
        text(
            ctx.lang,
            "report.receipt",
            report_id=report.id,
            revision=report.revision,
            measure_id=measure.id,
            year=draft.year,
            when=to_local(report.submitted_at or dt.datetime.now(dt.UTC), ctx.settings.tz),
        )
    )


# ------------------------------------------------------------------ handlers: entry


async def cmd_report(message: Message, command: CommandObject, ctx: ContactCtx) -> None:
    wanted = (command.args or "").strip()[:40]
    current = await _current(ctx)
    open_draft = current is not None and await ctx.state.get_state() in (
        ReportFlow.answering.state,
        ReportFlow.open_draft.state,
    )
    if open_draft and current is not None and await _keep(ctx, message, current[0]):
        await _offer_draft(ctx, message, {"measure": wanted} if wanted else {})
        return
    await _begin_picking(ctx, message, wanted or None)


async def _cancel(ctx: ContactCtx, message: Message) -> None:
    """End the report flow: the draft is deleted — or, at the picker and the year choice, there
    was none yet, and the message says so."""
    had_draft = await _current(ctx) is not None
    await ctx.state.clear()
    await message.answer(text(ctx.lang, "report.cancelled" if had_draft else "report.cancelled_no_draft"))


async def cmd_cancel(message: Message, ctx: ContactCtx) -> None:
    await _cancel(ctx, message)


async def _step_name(ctx: ContactCtx) -> tuple[str, str | None]:
    """What the user is looking at: measure, year, draft, question (with its field kind) or summary."""
    state = await ctx.state.get_state()
    if state == ReportFlow.choosing_measure.state:
        return "measure", None
    if state == ReportFlow.choosing_year.state:
        return "year", None
    if state == ReportFlow.open_draft.state:
        return "draft", None
    current = await _current(ctx)
    if current is None:
        return "measure", None
    _, step = forms.resume(forms.form_for(current[0]), current[1])
    if isinstance(step, forms.Ask):
        return "question", step.field.kind.value
    return "summary", None


async def cmd_help_in_flow(message: Message, ctx: ContactCtx) -> None:
    """/help during a report: what this step expects, then the same step again."""
    step, kind = await _step_name(ctx)
    await message.answer(text(ctx.lang, "report.step_help", step=step, kind=kind, example=_example(ctx)))
    await _reask(ctx, message)


async def cmd_language_in_flow(message: Message, ctx: ContactCtx, bot: Bot) -> None:
    """/language during a report: switch, then the same step in the new language."""
    lang = await switch_language(message, ctx.contact, bot)
    await _reask(dataclasses.replace(ctx, lang=lang), message)


async def _live(
    ctx: ContactCtx, query: CallbackQuery, nonce: str, *states: State, also: bool = True
) -> Message | None:
    """The message of a button that still belongs to the current flow (its nonce, one of
    ``states`` when given, and ``also``); otherwise tell the user it is stale and return None."""
    message = query.message
    data = await ctx.state.get_data()
    if (
        isinstance(message, InaccessibleMessage)
        or message is None
        or data.get("nonce") != nonce
        or (states and await ctx.state.get_state() not in {st.state for st in states})
        or not also
    ):
        await query.answer(text(ctx.lang, "common.stale_button"))
        return None
    return message


async def _draft_choice(ctx: ContactCtx, message: Message, action: str) -> None:
    """c: continue the open draft; d: delete it and do what was asked meanwhile."""
    data = await ctx.state.get_data()
    if action == "c":
        await ctx.state.set_state(ReportFlow.answering)
        await _reask(ctx, message)
        return
    after = data.get("after") or ({"measure": data["wanted"]} if data.get("wanted") else {})
    await ctx.state.clear()
    await message.answer(text(ctx.lang, "report.draft_discarded"))
    if after.get("report"):
        await _open_correction(ctx, message, int(after["report"]))
        return
    await _begin_picking(ctx, message, after.get("measure") or None)


async def on_draft_choice(query: CallbackQuery, callback_data: DraftCb, ctx: ContactCtx) -> None:
    message = await _live(ctx, query, callback_data.n, ReportFlow.open_draft)
    if message is None:
        return
    await query.answer()
    await message.edit_reply_markup(reply_markup=None)
    await _draft_choice(ctx, message, callback_data.a)


async def on_draft_typed(message: Message, ctx: ContactCtx) -> None:
    """Text at "Vai turpināt?": a typed button label works like the button; else ask again."""
    action = TYPED_DRAFT_ACTIONS.get(_letters(message.text or ""))
    if action == "x":
        await _act(ctx, message, None, "x")
    elif action is not None:
        await _draft_choice(ctx, message, action)
    else:
        await _reask(ctx, message, notice=text(ctx.lang, "report.draft_typed"))


# ------------------------------------------------------------------ handlers: picking


async def on_measure_cb(query: CallbackQuery, callback_data: MeasureCb, ctx: ContactCtx) -> None:
    message = await _live(ctx, query, callback_data.n, ReportFlow.choosing_measure)
    if message is None:
        return
    await query.answer()
    if not callback_data.code:
        await _show_picker(ctx, message, callback_data.page, callback_data.task or None, edit=True)
        return
    await message.edit_reply_markup(reply_markup=None)
    await _choose_measure(ctx, message, callback_data.code)


async def on_measure_typed(message: Message, ctx: ContactCtx) -> None:
    if TYPED_ACTIONS.get(_letters(message.text or "")) == "x":
        await _act(ctx, message, None, "x")
        return
    await _choose_measure(ctx, message, message.text or "")


async def on_year_cb(query: CallbackQuery, callback_data: YearCb, ctx: ContactCtx) -> None:
    message = await _live(
        ctx,
        query,
        callback_data.n,
        ReportFlow.choosing_year,
        also=callback_data.year in ctx.open_years(),
    )
    if message is None:
        return
    await query.answer()
    await message.edit_reply_markup(reply_markup=None)
    await _choose_year(ctx, message, callback_data.year)


async def _choose_year(ctx: ContactCtx, message: Message, year: int) -> None:
    measure = _allowed(ctx, (await ctx.state.get_data()).get("measure_id", ""))
    if measure is None:
        await _begin_picking(ctx, message, None)
        return
    await _begin_form(ctx, message, measure, year)


_YEAR = re.compile(r"\s*([0-9]{4})\.?(\s*(gads|g\.))?\s*", re.IGNORECASE)


async def on_year_typed(message: Message, ctx: ContactCtx) -> None:
    """Text at the year choice: an open year ("2026", "2026. gads") chooses it; else ask again."""
    raw = message.text or ""
    if TYPED_ACTIONS.get(_letters(raw)) == "x":
        await _act(ctx, message, None, "x")
        return
    years = ctx.open_years()
    match = _YEAR.fullmatch(raw)
    if match and int(match.group(1)) in years:
        await _choose_year(ctx, message, int(match.group(1)))
        return
    await _reask(ctx, message, notice=text(ctx.lang, "report.year_typed", years=years or [ctx.today().year]))


# ------------------------------------------------------------------ handlers: answering


async def on_answer(message: Message, ctx: ContactCtx) -> None:
    current = await _current(ctx)
    if current is None:
        await ctx.state.clear()
        await _begin_picking(ctx, message, None)
        return
    typed = TYPED_ACTIONS.get(_letters(message.text or ""))
    if typed == "x":
        await _act(ctx, message, None, "x")
        return
    if not await _keep(ctx, message, current[0]):
        return
    if typed is not None:
        await _act(ctx, message, current, typed)
        return
    await _act(ctx, message, current, "p", message.text or "")


async def on_not_text(message: Message, ctx: ContactCtx) -> None:
    """Stickers, photos, voice, documents...: say what is expected, ask the same again."""
    await _reask(ctx, message, notice=text(ctx.lang, "common.only_text"))


async def cmd_mystatus_in_flow(message: Message, command: CommandObject, ctx: ContactCtx) -> None:
    """/mystatus during a report: the status, then the same step again (the draft stays)."""
    parts = await status.mystatus_parts(command.args, ctx)
    for part in parts:
        await message.answer(part)
    await _reask(ctx, message)


async def on_other_command(message: Message, ctx: ContactCtx) -> None:
    """Another command in the middle of a form: say why it does not run, then the same step."""
    command = (message.text or "").split(maxsplit=1)[0].split("@", 1)[0][:40]
    await _reask(ctx, message, notice=text(ctx.lang, "common.command_in_flow", command=command))


async def on_edited(message: Message, ctx: Ctx) -> None:
    """Edits are not answers: say so and show the current step again (a registered sender's)."""
    member = ctx.of_contact()
    if member is None:
        return
    await _reask(member, message, notice=text(member.lang, "common.edited_ignored"))


async def on_form_cb(query: CallbackQuery, callback_data: FormCb, ctx: ContactCtx) -> None:
    message = await _live(ctx, query, callback_data.n)
    if message is None:
        return
    if callback_data.a == "x":
        await query.answer()
        await message.edit_reply_markup(reply_markup=None)
        await _act(ctx, message, None, "x")
        return
    current = await _current(ctx)
    if current is None or await ctx.state.get_state() != ReportFlow.answering.state:
        await query.answer(text(ctx.lang, "common.stale_button"))
        return
    measure, draft = current
    spec = forms.form_for(measure)
    draft, _ = forms.resume(spec, draft)
    on_key = forms.SUMMARY if draft.cursor == forms.SUMMARY else spec.fields[draft.cursor].key
    if callback_data.k != on_key:  # a button of an earlier question or card
        await query.answer(text(ctx.lang, "common.stale_button"))
        await _reask(ctx, message)
        return
    await query.answer()
    await message.edit_reply_markup(reply_markup=None)
    if not await _keep(ctx, message, measure):
        return
    await _act(ctx, message, (measure, draft), callback_data.a, callback_data.v)


# A step of the form engine per button action: (spec, draft, button value) -> (draft, step).
STEPS: dict[str, Any] = {
    "b": lambda spec, draft, _v: forms.back(spec, draft),
    "s": lambda spec, draft, _v: forms.skip(spec, draft),
    "e": lambda spec, draft, key: forms.edit(spec, draft, key),
    "p": lambda spec, draft, code: forms.answer(spec, draft, code),
}


async def _act(
    ctx: ContactCtx,
    message: Message,
    current: tuple[Measure, forms.Draft] | None,
    action: str,
    value: str = "",
) -> None:
    """Carry out a button action (also when its label was typed instead of pressed)."""
    if action == "x" or current is None:
        await _cancel(ctx, message)
        return
    measure, draft = current
    if action == "c":
        await _submit(ctx, message, measure, draft)
        return
    draft, step = STEPS[action](forms.form_for(measure), draft, value)
    notice = error_text(ctx.lang, step.code, step.params) if isinstance(step, forms.Rejected) else None
    await _show_step(ctx, message, measure, draft, notice=notice)


def _letters(label: str) -> str:
    return "".join(filter(str.isalpha, label.casefold()))


# Typing a button's label ("Izlaist", "atpakaļ", "Skip") works like pressing it.
TYPED_ACTIONS: dict[str, str] = {
    _letters(button(lang, f"report.{macro}")): action
    for lang in LANGUAGES
    for action, macro in (("s", "btn_skip"), ("b", "btn_back"), ("x", "btn_cancel"), ("c", "btn_confirm"))
}
TYPED_DRAFT_ACTIONS: dict[str, str] = {
    _letters(button(lang, f"report.{macro}")): action
    for lang in LANGUAGES
    for action, macro in (("c", "btn_continue"), ("d", "btn_discard"), ("x", "btn_cancel"))
}


# ------------------------------------------------------------------ /myreports


async def cmd_myreports(message: Message, ctx: ContactCtx) -> None:
    contact, lang, repos, settings, inst = ctx.contact, ctx.lang, ctx.repos, ctx.settings, ctx.institution
    views = await repos.reports.views(institution_id=contact.institution_id)
    if not views:
        await message.answer(text(lang, "report.no_reports"))
        return
    grace = default_status_rules().report_grace_days
    for start in range(0, len(views), 10):
        batch = views[start : start + 10]
        rows = [
            {
                "id": v.id,
                "measure_code": v.measure_code,
                "year": v.year,
                "status": v.status,
                "revision": v.revision,
                "review_state": v.review_state,
                "author": v.author,
                "review_comment": v.review_comment,
                "submitted_at": to_local(v.submitted_at, settings.tz) if v.submitted_at else None,
                "late": filed_late(v.year, v.first_submitted_at, settings.tz, grace),
            }
            for v in batch
        ]
        await _send(
            message,
            text(lang, "report.my_reports", institution=inst.abbr, reports=rows),
            my_reports_keyboard(lang, [v.id for v in batch]),
        )


def _catalog_measure(catalog: Catalog, code: str) -> Measure | None:
    try:
        return catalog.measure(code)
    except KeyError:
        return None


async def _history(ctx: ContactCtx, message: Message, view: Any) -> None:
    measure = _catalog_measure(ctx.catalog, view.measure_code)
    contacts = {c.id: c.display_name for c in await ctx.repos.people.contacts()}
    revisions = [
        {
            "revision": r.revision,
            "author": contacts.get(r.submitted_by_contact_id, "—"),
            "when": to_local(r.submitted_at, ctx.settings.tz),
            "changes": change_rows(ctx.lang, measure, view.year, r.changes),
        }
        for r in await ctx.repos.reports.revisions(view.id)
    ]
    await _send(
        message,
        text(
            ctx.lang,
            "report.history",
            report_id=view.id,
            measure_code=view.measure_code,
            year=view.year,
            revisions=revisions,
        ),
    )


async def _open_correction(ctx: ContactCtx, message: Message, report_id: int) -> None:
    """Reopen a submitted report of the contact's institution as a correction draft."""
    view = await ctx.repos.reports.view(report_id)
    measure = _allowed(ctx, view.measure_code) if view is not None else None
    if view is None or view.institution != ctx.institution.abbr or measure is None:
        await message.answer(text(ctx.lang, "common.stale_button"))
        return
    if view.year not in ctx.open_years():
        await message.answer(text(ctx.lang, "report.no_open_period"))
        return
    await ctx.state.set_state(ReportFlow.answering)
    await ctx.state.set_data({"nonce": new_nonce()})
    await _begin_form(ctx, message, measure, view.year)


async def on_myreport_cb(query: CallbackQuery, callback_data: MyReportCb, ctx: ContactCtx) -> None:
    view = await ctx.repos.reports.view(callback_data.rid)
    message = query.message
    if (
        view is None
        or view.institution != ctx.institution.abbr
        or message is None
        or isinstance(message, InaccessibleMessage)
    ):
        await query.answer(alert(ctx.lang, "common.stale_button"), show_alert=True)
        return
    await query.answer()
    if callback_data.a == "h":
        await _history(ctx, message, view)
        return
    current = await _current(ctx)
    if current is not None and await ctx.state.get_state() in (
        ReportFlow.answering.state,
        ReportFlow.open_draft.state,
    ):
        measure, draft = current
        if await _keep(ctx, message, measure):
            if (measure.id, draft.year) == (view.measure_code, view.year):  # already correcting it
                await ctx.state.set_state(ReportFlow.answering)
                await _reask(ctx, message)
            else:  # never silently lose another draft
                await _offer_draft(ctx, message, {"report": view.id})
            return
    await _open_correction(ctx, message, view.id)


# ------------------------------------------------------------------ router


def router() -> Router:
    r = Router(name="report")
    for observer in (r.message, r.callback_query):
        observer.middleware(RequireContact())
    # Text typed at a step first, the answer (the most frequent update) first of all: a command
    # never gets there (TYPED), so it reaches the commands below as before, and a typed
    # answer is matched after two handler checks instead of twelve (~10 µs each,
    # bench/bench_chat.py).
    r.message.register(on_answer, ReportFlow.answering, TYPED)
    r.message.register(on_measure_typed, ReportFlow.choosing_measure, TYPED)
    r.message.register(on_year_typed, ReportFlow.choosing_year, TYPED)
    r.message.register(on_draft_typed, ReportFlow.open_draft, TYPED)
    r.message.register(cmd_cancel, Command("cancel"), IN_FLOW)
    r.message.register(cmd_help_in_flow, Command("help"), IN_FLOW)
    r.message.register(cmd_language_in_flow, Command("language"), IN_FLOW)
    r.message.register(cmd_mystatus_in_flow, Command("mystatus"), IN_FLOW)
    r.message.register(cmd_report, Command("report"))
    r.message.register(cmd_myreports, Command("myreports"))
    r.callback_query.register(on_draft_choice, DraftCb.filter())
    r.callback_query.register(on_measure_cb, MeasureCb.filter())
    r.callback_query.register(on_year_cb, YearCb.filter())
    r.callback_query.register(on_form_cb, FormCb.filter())
    r.callback_query.register(on_myreport_cb, MyReportCb.filter())
    r.message.register(on_other_command, IN_FLOW, COMMAND_TEXT)
    r.message.register(on_not_text, IN_FLOW)
    r.edited_message.register(on_edited)
    return r
