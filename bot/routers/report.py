"""/report: choose a measure and a period, answer one question per indicator row, review the
summary card, confirm. The draft is written to the database after every step; /myreports
lists reports and reopens one for correction (a new revision)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InaccessibleMessage, Message, TelegramObject

from bot.access import RequireContact
from bot.compile_jobs import draft_warnings
from bot.config import Settings
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
    years_keyboard,
)
from bot.render import button, error_text, question_text, summary_text
from bot.states import ReportFlow
from reporting_forms import forms
from reporting_forms.catalog import Catalog, Measure
from reporting_forms.periods import open_years
from reporting_forms.texts import LANGUAGES, text
from storage.repositories import Repos
from storage.tables import Contact

PAGE_SIZE = 8
IN_FLOW = StateFilter(
    ReportFlow.choosing_measure, ReportFlow.choosing_year, ReportFlow.answering, ReportFlow.open_draft
)


@dataclass
class Ctx:
    """What every step needs, gathered once per update."""

    contact: Contact
    institution: str
    lang: str
    repos: Repos
    catalog: Catalog
    state: FSMContext
    settings: Settings

    def today(self) -> dt.date:
        return dt.datetime.now(self.settings.tz).date()


class WithCtx(BaseMiddleware):
    """Gathers what every step needs into ``ctx`` (after RequireContact let the user in)."""

    async def __call__(self, handler: Any, event: TelegramObject, data: dict[str, Any]) -> Any:
        contact = data.get("contact")
        if contact is not None:
            data["ctx"] = Ctx(
                contact,
                data["institution"].abbr,
                data["lang"],
                data["repos"],
                data["catalog"],
                data["state"],
                data["settings"],
            )
        return await handler(event, data)


def _measures(ctx: Ctx) -> list[tuple[Any, Measure]]:
    """(task, measure) pairs the contact's institution reports on, in plan order."""
    return [(task, m) for _plan, _d, task, m in ctx.catalog.measures_for(ctx.institution)]


def _allowed(ctx: Ctx, code: str) -> Measure | None:
    return next((m for _t, m in _measures(ctx) if m.id == code), None)


# ------------------------------------------------------------------ screens


async def _show_picker(ctx: Ctx, target: Message, page: int, *, edit: bool = False) -> None:
    items = _measures(ctx)
    if not items:
        await ctx.state.clear()
        await target.answer(text(ctx.lang, "report.no_measures", institution=ctx.institution))
        return
    data = await ctx.state.get_data()
    pages = max(1, math.ceil(len(items) / PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    chunk = items[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    groups: list[dict[str, Any]] = []
    for task, m in chunk:
        if not groups or groups[-1]["task_id"] != task.id:
            groups.append({"task_id": task.id, "task_title": task.title, "measures": []})
        groups[-1]["measures"].append({"id": m.id, "name": m.name})
    body = text(
        ctx.lang,
        "report.choose_measure",
        institution=ctx.institution,
        page=page + 1,
        pages=pages,
        groups=groups,
    )
    keyboard = measures_keyboard(ctx.lang, data["nonce"], [(m.id, m.name) for _t, m in chunk], page, pages)
    await ctx.state.update_data(page=page)
    if edit:
        await target.edit_text(body, reply_markup=keyboard)
    else:
        await target.answer(body, reply_markup=keyboard)


async def _begin_picking(ctx: Ctx, message: Message, code: str | None) -> None:
    await ctx.state.set_state(ReportFlow.choosing_measure)
    await ctx.state.set_data({"nonce": new_nonce(), "page": 0})
    if code:
        await _choose_measure(ctx, message, code)
    else:
        await _show_picker(ctx, message, 0)


async def _choose_measure(ctx: Ctx, message: Message, code: str) -> None:
    measure = _allowed(ctx, code.strip())
    if measure is None:
        await message.answer(text(ctx.lang, "report.unknown_measure", code=code.strip()[:40]))
        await _show_picker(ctx, message, (await ctx.state.get_data()).get("page", 0))
        return
    years = open_years(ctx.today())
    if not years:
        await ctx.state.clear()
        await message.answer(text(ctx.lang, "report.no_open_period"))
        return
    if len(years) == 1:
        await _begin_form(ctx, message, measure, years[0])
        return
    await ctx.state.set_state(ReportFlow.choosing_year)
    await ctx.state.update_data(measure_id=measure.id)
    data = await ctx.state.get_data()
    await message.answer(
        text(ctx.lang, "report.choose_year", measure_id=measure.id, measure_name=measure.name, years=years),
        reply_markup=years_keyboard(ctx.lang, data["nonce"], years),
    )


async def _begin_form(
    ctx: Ctx, message: Message, measure: Measure, year: int, report_id: int | None = None
) -> None:
    """A fresh draft, or — when this period already has a submitted report — a correction
    draft holding its current values, opened at the summary card."""
    spec = forms.form_for(measure)
    db_measure = await ctx.repos.catalog.measure(measure.id)
    existing = await ctx.repos.reports.find(db_measure.id, ctx.contact.institution_id, year)
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
    # what the institution reported in earlier years does not change while the form is open
    earlier = await ctx.repos.reports.earlier_values(db_measure.id, ctx.contact.institution_id, year)
    await ctx.state.set_state(ReportFlow.answering)
    await ctx.state.set_data({"nonce": nonce, "draft": draft.to_dict(), "earlier": _years_as_keys(earlier)})
    await _show_step(ctx, message, measure, draft)


def _years_as_keys(earlier: dict[str, dict[int, Any]]) -> dict[str, dict[str, Any]]:
    """JSON object keys are strings."""
    return {code: {str(y): v for y, v in by_year.items()} for code, by_year in earlier.items()}


def _years_from_keys(earlier: dict[str, dict[str, Any]]) -> dict[str, dict[int, Any]]:
    return {code: {int(y): v for y, v in by_year.items()} for code, by_year in earlier.items()}


async def _show_step(
    ctx: Ctx, message: Message, measure: Measure, draft: forms.Draft, notice: str | None = None
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
        await message.answer(
            summary_text(ctx.lang, measure, draft.year, step, await _warnings(ctx, measure, draft)),
            reply_markup=summary_keyboard(ctx.lang, nonce, [r.field.key for r in step.rows]),
        )
        return
    earlier = _years_from_keys(data.get("earlier") or {})
    first = step.field.key == spec.fields[0].key
    await message.answer(
        question_text(ctx.lang, measure, draft.year, step, earlier),
        reply_markup=question_keyboard(ctx.lang, nonce, step.field, can_go_back=not first),
    )


async def _warnings(ctx: Ctx, measure: Measure, draft: forms.Draft) -> list[str]:
    """Validation rules (validation_rules.yaml) on the draft — the whole-row checks with every
    institution's other reports of the row, as the compilation runs them: shown on the summary
    card before confirming, never blocking."""
    from storage.compiled import CompiledRepo  # the compilation's reads (this function only)

    db_measure = await ctx.repos.catalog.measure(measure.id)
    others = await CompiledRepo(ctx.repos.session).row_values_besides(
        db_measure.id, ctx.contact.institution_id, draft.year
    )
    return draft_warnings(ctx.lang, ctx.catalog, measure, draft.year, draft.answers, others)


async def _current(ctx: Ctx) -> tuple[Measure, forms.Draft] | None:
    data = await ctx.state.get_data()
    raw = data.get("draft")
    if not raw:
        return None
    try:
        draft = forms.Draft.from_dict(raw)
        return ctx.catalog.measure(draft.measure_id), draft
    except (forms.DraftError, KeyError):
        return None


async def _reask(ctx: Ctx, message: Message, notice: str | None = None) -> None:
    """Show the current step again (after bad input, a stale button, /help, ...)."""
    current = await _current(ctx)
    state = await ctx.state.get_state()
    if current is not None and state == ReportFlow.answering.state:
        await _show_step(ctx, message, *current, notice=notice)
        return
    if notice:
        await message.answer(notice)
    if state == ReportFlow.choosing_measure.state:
        await _show_picker(ctx, message, (await ctx.state.get_data()).get("page", 0))


async def _submit(ctx: Ctx, message: Message, measure: Measure, draft: forms.Draft) -> None:
    spec = forms.form_for(measure)
    errors = forms.confirm_errors(spec, draft)
    if errors:
        lines = [error_text(ctx.lang, code, params) for code, params in errors]
        await _show_step(
            ctx, message, measure, draft, notice=text(ctx.lang, "report.cannot_confirm", errors=lines)
        )
        return
    forms.validate_answers(spec, draft.answers, year=draft.year)  # never store anything invalid
    db_measure = await ctx.repos.catalog.measure(measure.id)
    report = await ctx.repos.reports.submit(
        measure_id=db_measure.id,
        institution_id=ctx.contact.institution_id,
        year=draft.year,
        answers=dict(draft.answers),
        contact_id=ctx.contact.id,
    )
    await ctx.state.clear()
    when = dt.datetime.now(ctx.settings.tz).strftime("%d.%m.%Y %H:%M")
    await message.answer(
        text(
            ctx.lang,
            "report.receipt",
            report_id=report.id,
            revision=report.revision,
            measure_id=measure.id,
            year=draft.year,
            when=when,
        )
    )


# ------------------------------------------------------------------ handlers: entry


async def cmd_report(message: Message, command: CommandObject, ctx: Ctx) -> None:
    current = await _current(ctx)
    if current is not None and await ctx.state.get_state() in (
        ReportFlow.answering.state,
        ReportFlow.open_draft.state,
    ):
        measure, draft = current
        nonce = new_nonce()
        await ctx.state.set_state(ReportFlow.open_draft)
        await ctx.state.update_data(nonce=nonce, wanted=(command.args or "").strip()[:40])
        await message.answer(
            text(ctx.lang, "report.open_draft", measure_id=measure.id, year=draft.year),
            reply_markup=draft_keyboard(ctx.lang, nonce),
        )
        return
    await _begin_picking(ctx, message, (command.args or "").strip()[:40] or None)


async def cmd_cancel(message: Message, state: FSMContext, lang: str) -> None:
    await state.clear()
    await message.answer(text(lang, "report.cancelled"))


async def cmd_help_in_flow(message: Message, ctx: Ctx) -> None:
    await message.answer(
        text(
            ctx.lang,
            "common.help_registered",
            name=ctx.contact.display_name,
            institution=ctx.institution,
            role=ctx.contact.role,
        )
    )
    await _reask(ctx, message)


async def _live(
    ctx: Ctx, query: CallbackQuery, nonce: str, *states: State, also: bool = True
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


async def on_draft_choice(query: CallbackQuery, callback_data: DraftCb, ctx: Ctx) -> None:
    message = await _live(ctx, query, callback_data.n)
    if message is None:
        return
    data = await ctx.state.get_data()
    await query.answer()
    await message.edit_reply_markup(reply_markup=None)
    if callback_data.a == "c":
        await ctx.state.set_state(ReportFlow.answering)
        await _reask(ctx, message)
        return
    await ctx.state.clear()
    await message.answer(text(ctx.lang, "report.draft_discarded"))
    await _begin_picking(ctx, message, data.get("wanted") or None)


# ------------------------------------------------------------------ handlers: picking


async def on_measure_cb(query: CallbackQuery, callback_data: MeasureCb, ctx: Ctx) -> None:
    message = await _live(ctx, query, callback_data.n, ReportFlow.choosing_measure)
    if message is None:
        return
    await query.answer()
    if not callback_data.code:
        await _show_picker(ctx, message, callback_data.page, edit=True)
        return
    await message.edit_reply_markup(reply_markup=None)
    await _choose_measure(ctx, message, callback_data.code)


async def on_measure_typed(message: Message, ctx: Ctx) -> None:
    await _choose_measure(ctx, message, message.text or "")


async def on_year_cb(query: CallbackQuery, callback_data: YearCb, ctx: Ctx) -> None:
    message = await _live(
        ctx,
        query,
        callback_data.n,
        ReportFlow.choosing_year,
        also=callback_data.year in open_years(ctx.today()),
    )
    if message is None:
        return
    data = await ctx.state.get_data()
    await query.answer()
    await message.edit_reply_markup(reply_markup=None)
    measure = _allowed(ctx, data.get("measure_id", ""))
    if measure is None:
        await _begin_picking(ctx, message, None)
        return
    await _begin_form(ctx, message, measure, callback_data.year)


# ------------------------------------------------------------------ handlers: answering


async def on_answer(message: Message, ctx: Ctx) -> None:
    current = await _current(ctx)
    if current is None:
        await ctx.state.clear()
        await _begin_picking(ctx, message, None)
        return
    typed = TYPED_ACTIONS.get(_letters(message.text or ""))
    if typed is not None:
        await _act(ctx, message, current, typed)
        return
    await _act(ctx, message, current, "p", message.text or "")


async def on_not_text(message: Message, ctx: Ctx) -> None:
    """Stickers, photos, voice, documents...: say what is expected, ask the same again."""
    await _reask(ctx, message, notice=text(ctx.lang, "common.only_text"))


async def on_other_command(message: Message, ctx: Ctx) -> None:
    await _reask(ctx, message)


async def on_edited(message: Message, ctx: Ctx | None = None) -> None:
    """Edits are not answers: say so and show the current step again."""
    if ctx is None:
        return
    await _reask(ctx, message, notice=text(ctx.lang, "common.edited_ignored"))


async def on_form_cb(query: CallbackQuery, callback_data: FormCb, ctx: Ctx) -> None:
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
    await _act(ctx, message, (measure, draft), callback_data.a, callback_data.v)


# A step of the form engine per button action: (spec, draft, button value) -> (draft, step).
STEPS: dict[str, Any] = {
    "b": lambda spec, draft, _v: forms.back(spec, draft),
    "s": lambda spec, draft, _v: forms.skip(spec, draft),
    "e": lambda spec, draft, key: forms.edit(spec, draft, key),
    "p": lambda spec, draft, code: forms.answer(spec, draft, code),
}


async def _act(
    ctx: Ctx, message: Message, current: tuple[Measure, forms.Draft] | None, action: str, value: str = ""
) -> None:
    """Carry out a button action (also when its label was typed instead of pressed)."""
    if action == "x" or current is None:
        await ctx.state.clear()
        await message.answer(text(ctx.lang, "report.cancelled"))
        return
    measure, draft = current
    if action == "c":
        await _submit(ctx, message, measure, draft)
        return
    draft, step = STEPS[action](forms.form_for(measure), draft, value)
    notice = error_text(ctx.lang, step.code, step.params) if isinstance(step, forms.Rejected) else None
    await _show_step(ctx, message, measure, draft, notice=notice)


def _letters(label: str) -> str:
    return "".join(ch for ch in label.casefold() if ch.isalpha())


# Typing a button's label ("Izlaist", "atpakaļ", "Skip") works like pressing it.
TYPED_ACTIONS: dict[str, str] = {
    _letters(button(lang, f"report.{macro}")): action
    for lang in LANGUAGES
    for action, macro in (("s", "btn_skip"), ("b", "btn_back"), ("x", "btn_cancel"), ("c", "btn_confirm"))
}


# ------------------------------------------------------------------ /myreports


async def cmd_myreports(message: Message, contact: Contact, lang: str, repos: Repos) -> None:
    inst = await repos.people.institution_by_id(contact.institution_id)
    views = await repos.reports.views(institution_id=contact.institution_id)
    if not views:
        await message.answer(text(lang, "report.no_reports"))
        return
    for start in range(0, len(views), 10):
        chunk = views[start : start + 10]
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
                "submitted_at": v.submitted_at.strftime("%d.%m.%Y") if v.submitted_at else None,
            }
            for v in chunk
        ]
        await message.answer(
            text(lang, "report.my_reports", institution=inst.abbr, reports=rows),
            reply_markup=my_reports_keyboard(lang, [v.id for v in chunk]),
        )


async def on_myreport_cb(query: CallbackQuery, callback_data: MyReportCb, ctx: Ctx) -> None:
    view = await ctx.repos.reports.view(callback_data.rid)
    message = query.message
    if (
        view is None
        or view.institution != ctx.institution
        or message is None
        or isinstance(message, InaccessibleMessage)
    ):
        await query.answer(text(ctx.lang, "common.stale_button"), show_alert=True)
        return
    await query.answer()
    if callback_data.a == "h":
        contacts = {c.id: c.display_name for c in await ctx.repos.people.contacts()}
        revisions = [
            {
                "revision": r.revision,
                "author": contacts.get(r.submitted_by_contact_id, "—"),
                "when": r.submitted_at.astimezone(ctx.settings.tz).strftime("%d.%m.%Y %H:%M")
                if r.submitted_at.tzinfo
                else r.submitted_at.strftime("%d.%m.%Y %H:%M"),
                "changes": r.changes,
            }
            for r in await ctx.repos.reports.revisions(view.id)
        ]
        await message.answer(
            text(
                ctx.lang,
                "report.history",
                report_id=view.id,
                measure_code=view.measure_code,
                year=view.year,
                revisions=revisions,
            )
        )
        return
    if view.year not in open_years(ctx.today()):
        await message.answer(text(ctx.lang, "report.no_open_period"))
        return
    await ctx.state.set_state(ReportFlow.answering)
    await ctx.state.set_data({"nonce": new_nonce()})
    await _begin_form(ctx, message, ctx.catalog.measure(view.measure_code), view.year)


# ------------------------------------------------------------------ router


def router() -> Router:
    r = Router(name="report")
    for observer in (r.message, r.callback_query):
        observer.middleware(RequireContact())
    for observer in (r.message, r.callback_query, r.edited_message):
        observer.middleware(WithCtx())
    r.message.register(cmd_cancel, Command("cancel"), IN_FLOW)
    r.message.register(cmd_help_in_flow, Command("help"), IN_FLOW)
    r.message.register(cmd_report, Command("report"))
    r.message.register(cmd_myreports, Command("myreports"))
    r.callback_query.register(on_draft_choice, DraftCb.filter())
    r.callback_query.register(on_measure_cb, MeasureCb.filter())
    r.callback_query.register(on_year_cb, YearCb.filter())
    r.callback_query.register(on_form_cb, FormCb.filter())
    r.callback_query.register(on_myreport_cb, MyReportCb.filter())
    r.message.register(on_other_command, IN_FLOW, F.text.startswith("/"))
    r.message.register(on_measure_typed, ReportFlow.choosing_measure, F.text)
    r.message.register(on_answer, ReportFlow.answering, F.text)
    r.message.register(on_not_text, IN_FLOW)
    r.edited_message.register(on_edited)
    return r
