"""/mystatus: a registered contact's own institution, compiled — never another institution's data.

First what is still due (measure, year, deadline: the reports the bot chases the institution for);
then the compilation of only that institution's reports over the measures it is named in, with
completeness its own row; then reports returned for correction, with the comment. Mid-form the
report router answers it too and asks the same step again (the draft stays).
"""

from __future__ import annotations

import datetime as dt

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.access import RequireContact
from bot.context import ContactCtx
from reporting_forms.answers import is_ascii_number
from reporting_forms.inputs import InputError, check_year, plan_years
from reporting_forms.messages import chunks
from reporting_forms.summaries import Scope, compile_inputs, missing_reports, summary_message
from reporting_forms.texts import text
from services.compilation import load_inputs
from storage.tables import ReviewState


def default_year(today: dt.date, years: tuple[int, ...]) -> int | None:
    """The current year while it is in the plan period, else the whole period (None)."""
    return today.year if today.year in years else None


async def mystatus_parts(args: str | None, ctx: ContactCtx) -> list[str]:
    """The /mystatus answer: what is still due (measure, year, deadline), the compiled state of
    the institution's own reports, and reports returned for correction."""
    lang, repos, catalog, institution = ctx.lang, ctx.repos, ctx.catalog, ctx.institution
    today = ctx.today()
    try:
        raw = (args or "").strip()
        year = check_year(int(raw)) if is_ascii_number(raw) else default_year(today, plan_years())
    except InputError as exc:
        return [exc.message(lang)]
    plans = [
        p for p in catalog.plans_main_first() if any(institution.abbr in m.institutions for m in p.measures())
    ]
    if not plans:
        return [text(lang, "coordinator.mystatus_none", institution=institution.abbr)]
    name = institution.name if lang == "lv" else institution.name_en
    parts = [text(lang, "coordinator.mystatus_header", institution=institution.abbr, name=name)]
    due: list[dict[str, object]] = []
    for plan in plans:
        inputs = await load_inputs(repos.session, plan.id, institution=institution.abbr)
        for item in missing_reports(catalog, plan.id, inputs, today=today):
            if item.institution != institution.abbr:
                continue
            due.extend(
                {
                    "measure_id": measure_id,
                    "measure_name": catalog.measure(measure_id).name,
                    "year": item.year,
                    "deadline": item.deadline,
                    "days_overdue": item.days_overdue,
                }
                for measure_id in item.measures
            )
        compiled = compile_inputs(
            catalog,
            inputs,
            plan_id=plan.id,
            year=year,
            as_of=today,
            scope=Scope(institution=institution.abbr),
            timezone=ctx.settings.timezone,
        )
        parts.append(summary_message(lang, compiled))
    parts.insert(1, text(lang, "coordinator.mystatus_due", items=due))
    returned = [
        {"id": v.id, "measure_code": v.measure_code, "year": v.year, "comment": v.review_comment}
        for v in await repos.reports.views(institution_id=institution.id)
        if v.review_state == ReviewState.RETURNED
    ]
    if returned:
        parts.append(text(lang, "coordinator.mystatus_returned", reports=returned))
    return chunks("\n\n".join(parts))


async def cmd_mystatus(message: Message, command: CommandObject, ctx: ContactCtx) -> None:
    for part in await mystatus_parts(command.args, ctx):
        await message.answer(part)


def router() -> Router:
    r = Router(name="status")
    r.message.middleware(RequireContact())
    r.message.register(cmd_mystatus, Command("mystatus"))
    return r
