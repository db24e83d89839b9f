"""/mystatus: a registered contact's own institution, compiled — never another institution's data.

The compilation gets only that institution's reports and only the measures it is responsible or
co-responsible for; completeness is its own row. Returned reports are listed with the comment.
"""

from __future__ import annotations

import datetime as dt

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.access import RequireContact
from bot.compile_jobs import (
    MAIN_PLAN,
    InputError,
    Scope,
    check_year,
    chunks,
    compile_inputs,
    load_inputs,
    plan_years,
    summary_message,
)
from bot.config import Settings
from reporting_forms.catalog import Catalog
from reporting_forms.texts import text
from storage.repositories import Repos
from storage.tables import Contact, ReviewState


def default_year(today: dt.date, years: tuple[int, ...]) -> int | None:
    """The current year while it is in the plan period, else the whole period (None)."""
    return today.year if today.year in years else None


async def cmd_mystatus(
    message: Message,
    command: CommandObject,
    contact: Contact,
    lang: str,
    repos: Repos,
    catalog: Catalog,
    settings: Settings,
) -> None:
    institution = await repos.people.institution_by_id(contact.institution_id)
    today = dt.datetime.now(settings.tz).date()
    try:
        raw = (command.args or "").strip()
        year = check_year(int(raw)) if raw.isdigit() else default_year(today, plan_years())
    except InputError as exc:
        await message.answer(exc.message(lang))
        return
    plans = [
        p
        for p in sorted(catalog.plans, key=lambda p: p.id != MAIN_PLAN)
        if any(institution.abbr in m.institutions for m in p.measures())
    ]
    if not plans:
        await message.answer(text(lang, "coordinator.mystatus_none", institution=institution.abbr))
        return
    name = institution.name if lang == "lv" else institution.name_en
    parts = [text(lang, "coordinator.mystatus_header", institution=institution.abbr, name=name)]
    for plan in plans:
        inputs = await load_inputs(repos.session, plan.id, institution=institution.abbr)
        compiled = compile_inputs(
            catalog,
            inputs,
            plan_id=plan.id,
            year=year,
            as_of=today,
            scope=Scope(institution=institution.abbr),
        )
        parts.append(summary_message(lang, compiled))
    returned = [
        {"id": v.id, "measure_code": v.measure_code, "year": v.year, "comment": v.review_comment}
        for v in await repos.reports.views(institution_id=institution.id)
        if v.review_state == ReviewState.RETURNED
    ]
    if returned:
        parts.append(text(lang, "coordinator.mystatus_returned", reports=returned))
    for part in chunks("\n\n".join(parts)):
        await message.answer(part)


def router() -> Router:
    r = Router(name="status")
    r.message.middleware(RequireContact())
    r.message.register(cmd_mystatus, Command("mystatus"))
    return r
