"""TM coordinators (roles coordinator and admin): /summary, /overdue, /review, /export and
/indicator. Contacts get "not available"; unregistered users never reach this router.

/review lists submitted reports waiting for review; "Pieņemt" accepts the revision shown,
"Atgriezt" asks for a comment as the next message. The decision is one conditional UPDATE (two
coordinators cannot both decide; the second hears who did); the institution's contacts are told
once it is committed. A correction (/myreports) makes a new revision that waits for review again.
/indicator enters an actual value of a policy-result indicator: indicator → year → value → source.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    Document,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from aiohttp import ClientError

from bot.access import RequireContact
from bot.config import Settings
from bot.context import ContactCtx
from bot.keyboards import CoordCb, ReviewCb, ReviewPageCb, new_nonce
from bot.render import button, format_stored
from bot.states import IndicatorFlow, ReviewFlow
from reporting_forms import exports  # each format loads on first use (exports.__getattr__)
from reporting_forms.answers import InvalidAnswer, is_ascii_number, parse_comment
from reporting_forms.catalog import Catalog, MetricKind
from reporting_forms.compilation import compile_policy_results
from reporting_forms.exports.revisions import revisions_csv, revisions_xlsx
from reporting_forms.imports import read_workbook
from reporting_forms.inputs import InputError, plan_years
from reporting_forms.messages import chunks
from reporting_forms.payloads import DocumentPayload, NoticePayload
from reporting_forms.policy_values import (
    actual_years,
    find_policy_indicator,
    parse_actual_value,
    parse_actual_year,
    parse_source,
    policy_card,
    policy_indicators,
)
from reporting_forms.summaries import (
    Compiled,
    compile_inputs,
    file_stem,
    missing_reports,
    parse_summary_args,
    render_files,
    summary_message,
)
from reporting_forms.texts import as_plain, format_day, format_number, shorten, text
from services.compilation import load_inputs
from services.imports import import_file, outcome_message
from services.reopening import reopen_year
from storage.db import Unit
from storage.outbox import KIND_FILE, KIND_NOTICE, NewMessage, outbox_key
from storage.repositories import ReportView, Repos, StoredValue
from storage.reviews import REVIEW_FIELD, ReviewError, ReviewResult
from storage.tables import COORDINATOR_ROLES, Contact, ReviewState

if TYPE_CHECKING:
    from bot.services_container import Services

log = logging.getLogger(__name__)
PAGE_SIZE = 5
VALUE_WIDTH = 120
TEXT_WIDTH = 90  # an indicator's text on the review card; shorter when a page would not fit
SHORT_TEXT_WIDTH = 40


MY_FLOWS = StateFilter(ReviewFlow.comment, *IndicatorFlow.__states__)


def expects_typed_number(state: str | None) -> bool:
    """True at /indicator's value question: a typed number is the answer (the offline console
    then reads "1" as the value, not as pressing button [1])."""
    return state == IndicatorFlow.value.state


def _btn(label: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=label, callback_data=data.pack())


def _cancel_row(lang: str, nonce: str) -> list[InlineKeyboardButton]:
    return [_btn(button(lang, "coordinator.btn_cancel"), CoordCb(n=nonce, a="x"))]


async def _leave_flow(state: FSMContext) -> None:
    """Entering a coordinator command ends a coordinator flow (never a report draft)."""
    current = await state.get_state()
    if current in {s.state for s in (ReviewFlow.comment, *IndicatorFlow.__states__)}:
        await state.clear()


async def _send_long(message: Message, body: str) -> None:
    for part in chunks(body):
        await message.answer(part)


def _files_folder(settings: Settings, update: Update) -> Path:
    """Where a command's files wait for the outbox sender: under COMPILED_DIR, a folder per
    moment as a scheduled compilation's (``resobot purge`` removes them once nothing waiting
    in the outbox names them), one per update."""
    stamp = dt.datetime.now(settings.tz).strftime("%Y%m%dT%H%M%S")
    return settings.compiled_dir / stamp / f"update-{update.update_id}"


async def _queue_files(
    services: Services,
    repos: Repos,
    contact: Contact,
    chat_id: int,
    update: Update,
    paths: Sequence[Path],
    caption: str | None = None,
) -> None:
    """The files as outbox documents, in order, the caption on the last, in this update's unit
    of work; the sender is woken once it has committed. The key names the update: asking
    again sends them again, the same update replayed adds nothing."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i, path in enumerate(paths, start=1):
        last = caption if caption and i == len(paths) else ""
        payload = DocumentPayload(str(path), path.name, last)
        key = outbox_key(["file", chat_id, update.update_id, i, path.name])
        rows.append(NewMessage(key, contact.id, chat_id, KIND_FILE, payload, now))
    await repos.outbox.add_many(rows)
    wake_after_commit(repos, services)


# ------------------------------------------------------------------ /summary


def _summary_files(compiled: Compiled, lang: str, folder: Path) -> list[Path]:
    """Blocking (run in a thread): the compiled plan as XLSX, DOCX and the progress chart,
    written into ``folder`` as a scheduled compilation writes its files (render_files)."""
    paths = render_files(compiled, ("xlsx", "docx"), folder, lang=lang)
    progress = folder / f"{file_stem(compiled)}_progress.png"
    exports.progress_chart(compiled.plan, lang=lang, path=progress)
    return [*paths, progress]


async def cmd_summary(
    message: Message, command: CommandObject, event_update: Update, ctx: ContactCtx
) -> None:
    state, contact, lang, repos, catalog, settings, services = (
        ctx.state,
        ctx.contact,
        ctx.lang,
        ctx.repos,
        ctx.catalog,
        ctx.settings,
        ctx.services,
    )
    await _leave_flow(state)
    try:
        request = parse_summary_args(catalog, command.args)
    except InputError as exc:
        await message.answer(f"{exc.message(lang)}\n{text(lang, 'coordinator.summary_usage')}")
        return
    inputs = await load_inputs(repos.session, request.plan_id)
    compiled = compile_inputs(
        catalog,
        inputs,
        plan_id=request.plan_id,
        year=request.year,
        as_of=ctx.today(),
        scope=request.scope,
        timezone=settings.timezone,
    )
    await _send_long(message, summary_message(lang, compiled))
    folder = _files_folder(settings, event_update)
    files = await asyncio.to_thread(_summary_files, compiled, lang, folder)
    caption = text(lang, "coordinator.summary_files")
    await _queue_files(services, repos, contact, message.chat.id, event_update, files, caption)


# ------------------------------------------------------------------ /overdue


async def cmd_overdue(message: Message, ctx: ContactCtx) -> None:
    state, lang, repos, catalog = ctx.state, ctx.lang, ctx.repos, ctx.catalog
    await _leave_flow(state)
    today = ctx.today()
    groups: dict[str, list[dict[str, Any]]] = {}
    for plan in catalog.plans_main_first():
        inputs = await load_inputs(repos.session, plan.id)
        for item in missing_reports(catalog, plan.id, inputs, today=today):
            groups.setdefault(item.institution, []).append(
                {
                    "year": item.year,
                    "plan_id": item.plan_id,
                    "main": item.plan_id == catalog.main_plan.id,
                    "deadline": item.deadline,
                    "days_overdue": item.days_overdue,
                    "measures": item.measures,
                }
            )
    if not groups:
        await message.answer(text(lang, "coordinator.overdue_none", today=today))
        return
    order = [i.abbr for i in catalog.institutions if i.abbr in groups]
    body = text(
        lang,
        "coordinator.overdue",
        today=today,
        groups=[{"institution": inst, "entries": groups[inst]} for inst in order],
    )
    await _send_long(message, body)


# ------------------------------------------------------------------ /reopen


async def cmd_reopen(message: Message, command: CommandObject, ctx: ContactCtx) -> None:
    """``/reopen YEAR VPD``: open a closed year for one institution (its contacts are told)."""
    state, contact, lang, repos, catalog, services = (
        ctx.state,
        ctx.contact,
        ctx.lang,
        ctx.repos,
        ctx.catalog,
        ctx.services,
    )
    await _leave_flow(state)
    years = plan_years()
    words = (command.args or "").split()
    year_words = [w for w in words if is_ascii_number(w)]
    others = [w for w in words if not is_ascii_number(w)]
    if len(year_words) != 1 or len(others) != 1:
        await message.answer(text(lang, "coordinator.reopen_usage", first=years[0], last=years[-1]))
        return
    try:
        done = await reopen_year(
            repos,
            catalog,
            institution=others[0],
            year=int(year_words[0]),
            today=ctx.today(),
            by_contact_id=contact.id,
        )
    except InputError as exc:
        await message.answer(exc.message(lang))
        return
    wake_after_commit(repos, services)  # the notices go out once the reopening is committed
    await message.answer(
        text(
            lang,
            "coordinator.reopen_done",
            institution=done.institution,
            year=done.year,
            until=done.until,
            notified=done.notified,
        )
    )


# ------------------------------------------------------------------ /review


def _value_text(lang: str, value: StoredValue) -> str:
    if value.status is not None:
        shown = button(lang, f"answers.status_{value.status}")
    elif value.value_text is not None:
        shown = value.value_text
    elif value.value_num is not None:
        shown = format_number(value.value_num, lang) + (" %" if value.kind == MetricKind.PERCENT else "")
    else:
        shown = "—"
    if value.value_date is not None:
        shown = f"{shown} ({format_day(value.value_date, lang, 'short')})"
    return shorten(shown, VALUE_WIDTH)


def _review_rows(
    lang: str, view: ReportView, catalog: Catalog, changes: Sequence[dict[str, Any]], width: int | None
) -> list[dict[str, Any]]:
    """One row per indicator of the measure: its text (shortened to ``width``; None: left out),
    the last-year target and unit, the value reported and — from the second revision — what changed
    since the previous one (old → new, the milestone date too)."""
    try:
        measure = catalog.measure(view.measure_code)
    except KeyError:  # the catalog no longer has the measure: the stored values as they are
        return [
            {
                "code": v.indicator_code,
                "text": None,
                "target": None,
                "unit": None,
                "value": _value_text(lang, v),
                "change": None,
                "date_change": None,
            }
            for v in view.values
        ]
    stored = {v.indicator_code: v for v in view.values}
    changed = {
        str(c.get("field")): (c.get("old"), c.get("new")) for c in changes if c.get("field") != REVIEW_FIELD
    }

    def change(key: str) -> dict[str, str] | None:
        if key not in changed:
            return None
        old, new = (format_stored(lang, measure, view.year, key, x) for x in changed[key])
        return {"old": old or "—", "new": new or "—"}

    return [
        {
            "code": ind.id,
            "text": shorten(ind.text, width) if width else None,
            "target": ind.target,
            "unit": ind.unit,
            "value": _value_text(lang, stored[ind.id]) if ind.id in stored else "—",
            "change": change(ind.id),
            "date_change": change(f"{ind.id}.date"),
        }
        for ind in measure.indicators
    ]


def _review_item(
    lang: str,
    view: ReportView,
    settings: Settings,
    catalog: Catalog,
    changes: Sequence[dict[str, Any]],
    width: int | None = TEXT_WIDTH,
) -> dict[str, Any]:
    comment = view.comment or ""
    return {
        "id": view.id,
        "measure_code": view.measure_code,
        "measure_name": view.measure_name,
        "institution": view.institution,
        "year": view.year,
        "revision": view.revision,
        "author": view.author,
        "submitted_at": view.submitted_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")
        if view.submitted_at
        else None,
        "risk_flag": view.risk_flag,
        "answers": _review_rows(lang, view, catalog, changes, width),
        "comment": shorten(comment, 300),
        "comment_changed": "comment" in {str(c.get("field")) for c in changes},
    }


async def _latest_changes(repos: Repos, view: ReportView) -> list[dict[str, Any]]:
    """What the report's latest revision changed against the previous one ([] for the first)."""
    if view.revision <= 1:
        return []
    revisions = await repos.reports.revisions(view.id)
    latest = next((r for r in reversed(revisions) if r.revision == view.revision), None)
    return list(latest.changes) if latest is not None else []


async def _review_page(
    lang: str, repos: Repos, settings: Settings, catalog: Catalog, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    repo = repos.reviews
    total, _ = await repo.pending_reviews(limit=0)
    if total == 0:
        return text(lang, "coordinator.review_none"), None
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    _, ids = await repo.pending_reviews(offset=page * PAGE_SIZE, limit=PAGE_SIZE)
    views = [v for v in [await repos.reports.view(rid) for rid in ids] if v is not None]
    rows = [
        [
            _btn(
                button(lang, "coordinator.btn_accept", report_id=v.id),
                ReviewCb(a="a", rid=v.id, rev=v.revision, p=page),
            ),
            _btn(
                button(lang, "coordinator.btn_return", report_id=v.id),
                ReviewCb(a="r", rid=v.id, rev=v.revision, p=page),
            ),
        ]
        for v in views
    ]
    nav = []
    if page > 0:
        nav.append(_btn(button(lang, "coordinator.btn_prev"), ReviewPageCb(page=page - 1)))
    if page < pages - 1:
        nav.append(_btn(button(lang, "coordinator.btn_next"), ReviewPageCb(page=page + 1)))
    if nav:
        rows.append(nav)
    changes = {v.id: await _latest_changes(repos, v) for v in views}
    for width in (TEXT_WIDTH, SHORT_TEXT_WIDTH, None):  # shorter indicator texts until it fits
        body = text(
            lang,
            "coordinator.review_list",
            total=total,
            page=page + 1,
            pages=pages,
            items=[_review_item(lang, v, settings, catalog, changes[v.id], width) for v in views],
        )
        if len(chunks(body)) == 1:
            break
    return body, InlineKeyboardMarkup(inline_keyboard=rows)


async def cmd_review(message: Message, ctx: ContactCtx) -> None:
    state, lang, repos, settings, catalog = ctx.state, ctx.lang, ctx.repos, ctx.settings, ctx.catalog
    await _leave_flow(state)
    body, keyboard = await _review_page(lang, repos, settings, catalog, 0)
    await message.answer(body, reply_markup=keyboard)


async def _show_page(
    query: CallbackQuery, lang: str, repos: Repos, settings: Settings, catalog: Catalog, page: int
) -> None:
    message = query.message
    if message is None or isinstance(message, InaccessibleMessage):
        return
    body, keyboard = await _review_page(lang, repos, settings, catalog, page)
    try:
        await message.edit_text(body, reply_markup=keyboard)
    except TelegramBadRequest as exc:
        if "not modified" not in str(exc):  # e.g. too old to edit: show the page anew
            await message.answer(body, reply_markup=keyboard)


async def on_review_page(query: CallbackQuery, callback_data: ReviewPageCb, ctx: ContactCtx) -> None:
    lang, repos, settings, catalog = ctx.lang, ctx.repos, ctx.settings, ctx.catalog
    await query.answer()
    await _show_page(query, lang, repos, settings, catalog, callback_data.page)


def _review_error(lang: str, result: ReviewResult) -> str:
    """Why a decision was not recorded, e.g. "already reviewed by Koordinators"."""
    assert result.error is not None
    params = {"by": result.reviewed_by} if result.error is ReviewError.ALREADY else {}
    return text(lang, f"coordinator.review_error_{result.error.value}", **params)


async def _notices(
    repos: Repos, report_id: int, revision: int, reviewer: Contact, state: str, comment: str | None
) -> list[NewMessage]:
    """Outbox rows telling the institution's active contacts (not the reviewer) of the decision,
    each in their language; one per contact, revision and decision (the dedup key)."""
    view = await repos.reports.view(report_id)
    institution = await repos.people.institution(view.institution) if view else None
    if view is None or institution is None:
        return []
    macro = "coordinator.notify_accepted" if state == ReviewState.ACCEPTED else "coordinator.notify_returned"
    params: dict[str, Any] = {
        "report_id": view.id,
        "measure_code": view.measure_code,
        "measure_name": view.measure_name,
        "year": view.year,
        "revision": view.revision,
    }
    if state == ReviewState.RETURNED:
        params["comment"] = comment
    now = dt.datetime.now(dt.UTC)
    return [
        NewMessage(
            outbox_key(["review", report_id, revision, state, contact.id]),
            contact.id,
            contact.telegram_user_id,
            KIND_NOTICE,
            NoticePayload(text(contact.language, macro, **params)),
            now,
        )
        for contact in await repos.people.contacts(institution.id, active_only=True)
        if contact.id != reviewer.id and contact.telegram_user_id is not None and not contact.blocked
    ]


def wake_after_commit(repos: Repos, services: Services) -> None:
    """The rows this update queued go out as soon as its unit of work has committed (never
    before it, never after a rollback): the sender is woken then."""
    if isinstance(repos.source, Unit):
        repos.source.after_commit(services.wake_outbox)
    else:  # a plain session (tests, the CLI): the sender finds them at its next poll
        services.wake_outbox()


async def _decide(
    services: Services,
    repos: Repos,
    contact: Contact,
    lang: str,
    report_id: int,
    revision: int,
    state: str,
    comment: str | None = None,
) -> str:
    """Record the decision (one conditional UPDATE) and, in the same unit of work, queue the
    notices to the institution's contacts in the outbox. Returns the text for the coordinator."""
    result = await repos.reviews.review(
        report_id,
        state=state,
        comment=comment,
        revision=revision,
        reviewer_id=contact.id,
        reviewer=contact.display_name,
    )
    if result.error is not None:
        return _review_error(lang, result)
    notices = await _notices(repos, report_id, revision, contact, state, comment)
    await repos.outbox.add_many(notices)
    wake_after_commit(repos, services)
    return text(lang, "coordinator.review_done", report_id=report_id, state=state, notified=len(notices))


async def on_review(query: CallbackQuery, callback_data: ReviewCb, bot: Bot, ctx: ContactCtx) -> None:
    state, contact, lang, repos, settings, services, catalog = (
        ctx.state,
        ctx.contact,
        ctx.lang,
        ctx.repos,
        ctx.settings,
        ctx.services,
        ctx.catalog,
    )
    message = query.message
    if message is None or isinstance(message, InaccessibleMessage):
        await query.answer(text(lang, "common.stale_button"))
        return
    pending = await repos.reviews.check_pending(callback_data.rid, callback_data.rev)
    if pending.error is not None:
        await query.answer(as_plain(_review_error(lang, pending)), show_alert=True)
        return
    await query.answer()
    if callback_data.a == "a":
        done = await _decide(
            services, repos, contact, lang, callback_data.rid, callback_data.rev, ReviewState.ACCEPTED
        )
        await message.answer(done)
        await _show_page(query, lang, repos, settings, catalog, callback_data.p)
        return
    view = await repos.reports.view(callback_data.rid)
    await state.set_state(ReviewFlow.comment)
    await state.set_data(
        {"nonce": new_nonce(), "rid": callback_data.rid, "rev": callback_data.rev, "page": callback_data.p}
    )
    await message.answer(_ask_comment(lang, view))


def _ask_comment(lang: str, view: ReportView | None) -> str:
    if view is None:
        return text(lang, "coordinator.review_error_not_found")
    return text(
        lang,
        "coordinator.review_ask_comment",
        report_id=view.id,
        measure_code=view.measure_code,
        institution=view.institution,
        year=view.year,
    )


async def on_review_comment(message: Message, bot: Bot, ctx: ContactCtx) -> None:
    state, contact, lang, repos, services = ctx.state, ctx.contact, ctx.lang, ctx.repos, ctx.services
    data = await state.get_data()
    try:
        comment = parse_comment(message.text or "")
    except InvalidAnswer as exc:
        notice = (
            text(lang, "coordinator.review_comment_too_long", **exc.params)
            if exc.code == "too_long"
            else text(lang, "coordinator.review_comment_empty")
        )
        await message.answer(notice)
        await message.answer(_ask_comment(lang, await repos.reports.view(data["rid"])))
        return
    await state.clear()
    done = await _decide(
        services, repos, contact, lang, data["rid"], data["rev"], ReviewState.RETURNED, comment
    )
    await message.answer(done)


async def on_review_not_text(message: Message, ctx: ContactCtx) -> None:
    state, lang, repos = ctx.state, ctx.lang, ctx.repos
    data = await state.get_data()
    await message.answer(text(lang, "coordinator.review_comment_not_text"))
    await message.answer(_ask_comment(lang, await repos.reports.view(data["rid"])))


# ------------------------------------------------------------------ /export


def _export_files(rows: list[Any], lang: str, settings: Settings, stamp: str, folder: Path) -> list[Path]:
    """Blocking (run in a thread): every revision as XLSX and CSV, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    xlsx, csv = folder / f"resobot_revisions_{stamp}.xlsx", folder / f"resobot_revisions_{stamp}.csv"
    xlsx.write_bytes(revisions_xlsx(rows, lang=lang, tz=settings.tz))
    csv.write_bytes(revisions_csv(rows, lang=lang, tz=settings.tz))
    return [xlsx, csv]


async def cmd_export(message: Message, event_update: Update, ctx: ContactCtx) -> None:
    state, contact, lang, repos, settings, services = (
        ctx.state,
        ctx.contact,
        ctx.lang,
        ctx.repos,
        ctx.settings,
        ctx.services,
    )
    await _leave_flow(state)
    rows = await repos.inputs.revision_rows()
    if not rows:
        await message.answer(text(lang, "coordinator.export_none"))
        return
    stamp = dt.datetime.now(settings.tz).strftime("%Y%m%d-%H%M")
    folder = _files_folder(settings, event_update)
    files = await asyncio.to_thread(_export_files, rows, lang, settings, stamp, folder)
    revisions = len({(r.report_id, r.revision) for r in rows})
    caption = text(lang, "coordinator.export_caption", revisions=revisions, rows=len(rows))
    await _queue_files(services, repos, contact, message.chat.id, event_update, files, caption)


# ------------------------------------------------------------------ /indicator


async def _card(lang: str, repos: Repos, catalog: Catalog, plan_id: str, indicator_id: str) -> str:
    actuals = await repos.inputs.policy_actuals(plan_id=plan_id)
    return policy_card(lang, compile_policy_results(catalog, plan_id, actuals), indicator_id)


async def _ask_indicator(message: Message, state: FSMContext, lang: str, catalog: Catalog) -> None:
    nonce = (await state.get_data()).get("nonce") or new_nonce()
    await state.set_state(IndicatorFlow.indicator)
    await state.set_data({"nonce": nonce})
    found = policy_indicators(catalog)
    buttons = [_btn(ind.id, CoordCb(n=nonce, a="i", v=ind.id)) for _, ind in found]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append(_cancel_row(lang, nonce))
    items = [{"id": ind.id, "text": shorten(ind.text, 90)} for _, ind in found]
    await message.answer(
        text(lang, "coordinator.indicator_choose", indicators=items),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def _choose_indicator(
    message: Message, state: FSMContext, lang: str, repos: Repos, catalog: Catalog, raw: str
) -> None:
    try:
        plan_id, indicator = find_policy_indicator(catalog, raw)
    except InputError as exc:
        await message.answer(exc.message(lang))
        await _ask_indicator(message, state, lang, catalog)
        return
    await state.set_state(IndicatorFlow.year)
    await state.update_data(plan_id=plan_id, indicator=indicator.id)
    await _ask_year(message, state, lang, repos, catalog)


async def _ask_year(message: Message, state: FSMContext, lang: str, repos: Repos, catalog: Catalog) -> None:
    data = await state.get_data()
    nonce = data["nonce"]
    first, last = actual_years()
    years = [
        _btn(button(lang, "coordinator.year_button", year=y), CoordCb(n=nonce, a="y", v=str(y)))
        for y in range(first, last + 1)
    ]
    keyboard = InlineKeyboardMarkup(inline_keyboard=[years[:3], years[3:], _cancel_row(lang, nonce)])
    card = await _card(lang, repos, catalog, data["plan_id"], data["indicator"])
    await message.answer(
        f"{card}\n\n{text(lang, 'coordinator.indicator_ask_year', first=first, last=last)}",
        reply_markup=keyboard,
    )


async def _choose_year(
    message: Message, state: FSMContext, lang: str, repos: Repos, catalog: Catalog, raw: str
) -> None:
    try:
        year = parse_actual_year(raw)
    except InputError as exc:
        await message.answer(exc.message(lang))
        await _ask_year(message, state, lang, repos, catalog)
        return
    await state.set_state(IndicatorFlow.value)
    await state.update_data(year=year)
    await _ask_value(message, state, lang, catalog)


def _indicator(catalog: Catalog, data: dict[str, Any]) -> Any:
    return find_policy_indicator(catalog, data["indicator"])[1]


async def _ask_value(message: Message, state: FSMContext, lang: str, catalog: Catalog) -> None:
    data = await state.get_data()
    indicator = _indicator(catalog, data)
    await message.answer(
        text(
            lang,
            "coordinator.indicator_ask_value",
            indicator_id=indicator.id,
            year=data["year"],
            unit=indicator.unit,
            percent=indicator.kind is MetricKind.PERCENT,
        ),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[_cancel_row(lang, data["nonce"])]),
    )


async def _ask_source(message: Message, state: FSMContext, lang: str) -> None:
    data = await state.get_data()
    nonce = data["nonce"]
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [_btn(button(lang, "coordinator.btn_skip"), CoordCb(n=nonce, a="s"))],
            _cancel_row(lang, nonce),
        ]
    )
    await message.answer(
        text(lang, "coordinator.indicator_ask_source", indicator_id=data["indicator"], year=data["year"]),
        reply_markup=keyboard,
    )


async def _save_actual(
    message: Message,
    state: FSMContext,
    contact: Contact,
    lang: str,
    repos: Repos,
    catalog: Catalog,
    source: str | None,
) -> None:
    data = await state.get_data()
    await state.clear()
    try:
        await repos.inputs.set_policy_actual(
            data["indicator"], data["year"], data["value"], source=source, contact_id=contact.id
        )
    except KeyError:
        await message.answer(
            text(lang, "coordinator.indicator_not_in_database", indicator_id=data["indicator"])
        )
        return
    saved = text(
        lang,
        "coordinator.indicator_saved",
        indicator_id=data["indicator"],
        year=data["year"],
        value=data["value"],
        source=source,
    )
    card = await _card(lang, repos, catalog, data["plan_id"], data["indicator"])
    await message.answer(f"{saved}\n\n{card}")


async def cmd_indicator(message: Message, command: CommandObject, ctx: ContactCtx) -> None:
    state, lang, repos, catalog = ctx.state, ctx.lang, ctx.repos, ctx.catalog
    await _leave_flow(state)
    await state.set_data({"nonce": new_nonce()})
    if command.args and command.args.strip():
        await state.set_state(IndicatorFlow.indicator)
        await _choose_indicator(message, state, lang, repos, catalog, command.args.strip())
        return
    await _ask_indicator(message, state, lang, catalog)


async def on_indicator_text(message: Message, ctx: ContactCtx) -> None:
    state, contact, lang, repos, catalog = ctx.state, ctx.contact, ctx.lang, ctx.repos, ctx.catalog
    raw = message.text or ""
    current = await state.get_state()
    if current == IndicatorFlow.indicator.state:
        await _choose_indicator(message, state, lang, repos, catalog, raw)
    elif current == IndicatorFlow.year.state:
        await _choose_year(message, state, lang, repos, catalog, raw)
    elif current == IndicatorFlow.value.state:
        data = await state.get_data()
        try:
            value = parse_actual_value(raw, _indicator(catalog, data).kind)
        except InputError as exc:
            await message.answer(exc.message(lang))
            await _ask_value(message, state, lang, catalog)
            return
        await state.set_state(IndicatorFlow.source)
        await state.update_data(value=value)
        await _ask_source(message, state, lang)
    else:
        try:
            source = parse_source(raw)
        except InputError as exc:
            await message.answer(exc.message(lang))
            await _ask_source(message, state, lang)
            return
        await _save_actual(message, state, contact, lang, repos, catalog, source)


async def _reask_indicator_flow(
    message: Message, state: FSMContext, lang: str, repos: Repos, catalog: Catalog
) -> None:
    current = await state.get_state()
    if current == IndicatorFlow.indicator.state:
        await _ask_indicator(message, state, lang, catalog)
    elif current == IndicatorFlow.year.state:
        await _ask_year(message, state, lang, repos, catalog)
    elif current == IndicatorFlow.value.state:
        await _ask_value(message, state, lang, catalog)
    else:
        await _ask_source(message, state, lang)


async def on_indicator_not_text(message: Message, ctx: ContactCtx) -> None:
    state, lang, repos, catalog = ctx.state, ctx.lang, ctx.repos, ctx.catalog
    await message.answer(text(lang, "common.only_text"))
    await _reask_indicator_flow(message, state, lang, repos, catalog)


async def on_coord_cb(query: CallbackQuery, callback_data: CoordCb, ctx: ContactCtx) -> None:
    state, contact, lang, repos, catalog = ctx.state, ctx.contact, ctx.lang, ctx.repos, ctx.catalog
    message = query.message
    data = await state.get_data()
    expected = {"i": IndicatorFlow.indicator, "y": IndicatorFlow.year, "s": IndicatorFlow.source}
    wanted = expected.get(callback_data.a)
    if (
        message is None
        or isinstance(message, InaccessibleMessage)
        or data.get("nonce") != callback_data.n
        or (wanted is not None and await state.get_state() != wanted.state)
    ):
        await query.answer(text(lang, "common.stale_button"))
        return
    await query.answer()
    await message.edit_reply_markup(reply_markup=None)
    if callback_data.a == "x":
        await state.clear()
        await message.answer(text(lang, "coordinator.flow_cancelled"))
    elif callback_data.a == "i":
        await _choose_indicator(message, state, lang, repos, catalog, callback_data.v)
    elif callback_data.a == "y":
        await _choose_year(message, state, lang, repos, catalog, callback_data.v)
    elif callback_data.a == "s":
        await _save_actual(message, state, contact, lang, repos, catalog, None)


# ------------------------------------------------------------------ flows: cancel, other commands


async def cmd_cancel_flow(message: Message, ctx: ContactCtx) -> None:
    state, lang = ctx.state, ctx.lang
    await state.clear()
    await message.answer(text(lang, "coordinator.flow_cancelled"))


async def on_flow_command(message: Message, ctx: ContactCtx) -> None:
    """Another command in the middle of a flow: say what is expected, ask again."""
    state, lang, repos, catalog = ctx.state, ctx.lang, ctx.repos, ctx.catalog
    await message.answer(text(lang, "coordinator.flow_reask"))
    if await state.get_state() == ReviewFlow.comment.state:
        data = await state.get_data()
        await message.answer(_ask_comment(lang, await repos.reports.view(data["rid"])))
        return
    await _reask_indicator_flow(message, state, lang, repos, catalog)


# ------------------------------------------------------------------ spreadsheet import


IMPORT_MAX_BYTES = 10 * 1024 * 1024  # an export of both plans is well under 1 MB
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _is_xlsx(document: Document) -> bool:
    name = (document.file_name or "").casefold()
    return name.endswith(".xlsx") or (not name and document.mime_type == XLSX_MIME)


async def on_import_document(message: Message, bot: Bot, ctx: ContactCtx) -> None:
    """A file sent outside any flow: a coordinator's XLSX (the bot's own export, filled in) is
    imported — every cell checked, all or nothing, in this update's transaction."""
    contact, lang, repos, catalog = ctx.contact, ctx.lang, ctx.repos, ctx.catalog
    document = message.document
    assert document is not None
    name = document.file_name or "—"
    if contact.role not in COORDINATOR_ROLES:
        await message.answer(text(lang, "coordinator.import_forbidden"))
        return
    if not _is_xlsx(document):
        await message.answer(text(lang, "coordinator.import_not_xlsx", name=name))
        return
    limit_mb = IMPORT_MAX_BYTES // (1024 * 1024)
    if document.file_size is not None and document.file_size > IMPORT_MAX_BYTES:
        await message.answer(text(lang, "coordinator.import_too_large", name=name, limit_mb=limit_mb))
        return
    try:
        downloaded = await bot.download(document)
    except (TimeoutError, TelegramAPIError, OSError, ClientError) as exc:
        log.warning("import: downloading %s failed: %s", name, exc)
        downloaded = None
    if downloaded is None:
        await message.answer(text(lang, "coordinator.import_download_failed", name=name))
        return
    data = downloaded.read()
    if len(data) > IMPORT_MAX_BYTES:
        await message.answer(text(lang, "coordinator.import_too_large", name=name, limit_mb=limit_mb))
        return
    today = ctx.today()
    result = await asyncio.to_thread(read_workbook, data, catalog, today=today)
    outcome = await import_file(
        repos,
        catalog,
        data,
        name=name,
        today=today,
        contact_id=contact.id,
        author=contact.display_name,
        result=result,
    )
    await _send_long(message, outcome_message(lang, outcome))


def import_router() -> Router:
    """Files from registered users outside any flow (after the feature routers, which answer a
    file sent in the middle of a form): a coordinator's XLSX is imported, others are told who may."""
    r = Router(name="coordinator_import")
    r.message.middleware(RequireContact())
    r.message.register(on_import_document, F.document)
    return r


# ------------------------------------------------------------------ router


COMMANDS = ("summary", "overdue", "review", "export", "indicator")


def router() -> Router:
    r = Router(name="coordinator")
    for observer in (r.message, r.callback_query):
        observer.middleware(RequireContact(roles=COORDINATOR_ROLES))
    r.message.register(cmd_cancel_flow, Command("cancel"), MY_FLOWS)
    r.message.register(cmd_summary, Command("summary"))
    r.message.register(cmd_overdue, Command("overdue"))
    r.message.register(cmd_reopen, Command("reopen"))
    r.message.register(cmd_review, Command("review"))
    r.message.register(cmd_export, Command("export"))
    r.message.register(cmd_indicator, Command("indicator"))
    r.callback_query.register(on_review, ReviewCb.filter())
    r.callback_query.register(on_review_page, ReviewPageCb.filter())
    r.callback_query.register(on_coord_cb, CoordCb.filter())
    r.message.register(on_flow_command, MY_FLOWS, F.text.startswith("/"))
    r.message.register(on_review_comment, ReviewFlow.comment, F.text)
    r.message.register(on_review_not_text, ReviewFlow.comment)
    r.message.register(on_indicator_text, StateFilter(*IndicatorFlow.__states__), F.text)
    r.message.register(on_indicator_not_text, StateFilter(*IndicatorFlow.__states__))
    return r
