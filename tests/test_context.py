"""The per-update context (bot/context.py): WithContext builds one ``ctx`` from what UnitOfWork
read; RequireContact's routers get it narrowed to a registered contact."""

from __future__ import annotations

import datetime as dt
import io
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlmodel
import time_machine
from aiogram import Bot, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.types import Message
from rich.console import Console

from bot.access import RequireContact
from bot.app import build_dispatcher
from bot.config import Settings
from bot.console import ConsoleChat
from bot.context import ContactCtx, Ctx, WithContext
from bot.offline import RecordingSession
from bot.services_container import Services
from reporting_forms.catalog import Catalog
from storage.db import Database
from storage.repositories import Repos
from storage.tables import Contact, ConversationState, Institution

SERVICES = cast(
    Services, SimpleNamespace(catalog="catalog", settings=SimpleNamespace(tz=ZoneInfo("Europe/Riga")))
)
REPOS = cast(Repos, object())
STATE: Any = object()
CONTACT = Contact(id=7, telegram_user_id=70, display_name="Anna", institution_id=3)
INSTITUTION = Institution(id=3, abbr="VPD", name="Valsts policija", name_en="State Police")


async def test_with_context_puts_one_ctx_for_the_handler() -> None:
    seen: list[Ctx] = []

    async def handler(event: object, data: dict[str, Any]) -> str:
        seen.append(data["ctx"])
        return "handled"

    reopened = {2025: dt.date(2027, 3, 1)}
    data = {"repos": REPOS, "lang": "en", "state": STATE, "contact": CONTACT, "institution": INSTITUTION}
    data["reopened"] = reopened
    assert await WithContext(SERVICES)(handler, cast(Any, object()), data) == "handled"
    (ctx,) = seen
    assert (ctx.services, ctx.repos, ctx.lang, ctx.state) == (SERVICES, REPOS, "en", STATE)
    assert (ctx.contact, ctx.institution, ctx.catalog) == (CONTACT, INSTITUTION, "catalog")
    assert ctx.reopened == reopened

    seen.clear()  # an unregistered sender: no contact, no institution; the language UnitOfWork chose
    await WithContext(SERVICES)(handler, cast(Any, object()), {"repos": REPOS, "lang": "lv"})
    assert seen[0].contact is None and seen[0].state is None and seen[0].lang == "lv"


def test_of_contact_narrows_only_a_registered_sender_with_a_conversation() -> None:
    ctx = Ctx(SERVICES, REPOS, "lv", STATE, CONTACT, INSTITUTION)
    member = ctx.of_contact()
    assert isinstance(member, ContactCtx)
    assert (member.contact, member.institution, member.state, member.repos) == (
        CONTACT,
        INSTITUTION,
        STATE,
        REPOS,
    )
    assert Ctx(SERVICES, REPOS, "lv", STATE, None, None).of_contact() is None
    assert Ctx(SERVICES, REPOS, "lv", None, CONTACT, INSTITUTION).of_contact() is None


def test_today_is_the_settings_time_zone_date() -> None:
    ctx = Ctx(SERVICES, REPOS, "lv", STATE, None, None)
    with time_machine.travel(dt.datetime(2026, 12, 31, 22, 30, tzinfo=dt.UTC), tick=False):
        assert ctx.today() == dt.date(2027, 1, 1)  # already the new year in Riga


def test_a_contacts_open_years_are_the_open_periods_and_its_reopened_years_until_their_day() -> None:
    """ContactCtx.open_years: no read of its own — the years reopened for the contact's
    institution came with the contact (UnitOfWork), and narrowing keeps them."""
    reopened = {2024: dt.date(2027, 1, 15), 2025: dt.date(2027, 3, 1), 2023: dt.date(2026, 12, 1)}
    member = Ctx(SERVICES, REPOS, "lv", STATE, CONTACT, INSTITUTION, reopened).of_contact()
    assert member is not None and member.reopened == reopened
    with time_machine.travel(dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        assert member.open_years() == [2027, 2026, 2025, 2024]  # 2023's day has passed
    with time_machine.travel(dt.datetime(2027, 2, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        assert member.open_years() == [2027, 2026, 2025]
    with time_machine.travel(dt.datetime(2027, 4, 10, 9, 0, tzinfo=dt.UTC), tick=False):
        assert member.open_years() == [2027]  # 2026 closed on 31 March


async def test_a_dispatcher_with_routers_of_its_own_keeps_the_bots_middlewares(
    sqlite_url: str, catalog: Catalog
) -> None:
    """build_dispatcher(services, routers=...) (bench/bench_chat.py's stack lane): the given
    router, and no feature router, behind the same unit of work, duplicate check and context —
    its handler gets a ContactCtx, and what it stores in the FSM commits with the update."""
    db = Database(sqlite_url)
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        inst = await repos.people.institution("VPD")
        assert inst is not None
        await repos.people.add_contact(display_name="Anna", institution_id=inst.id, telegram_user_id=70)
    seen: list[Ctx] = []

    async def own(message: Message, ctx: ContactCtx) -> None:
        seen.append(ctx)
        await ctx.state.update_data({str(message.message_id): message.text})
        await message.answer("ok")

    def router() -> Router:
        r = Router(name="own")
        r.message.middleware(RequireContact())
        r.message.register(own)
        return r

    services = Services(db=db, catalog=catalog, settings=Settings(database_url=sqlite_url, _env_file=None))
    dp = build_dispatcher(services, routers=[router])
    bot = Bot("42:test", session=RecordingSession(), default=DefaultBotProperties(parse_mode="HTML"))
    user = {"id": 70, "first_name": "Anna", "language_code": "lv"}
    chat = ConsoleChat(dp, bot, user=user, console=Console(file=io.StringIO()), input_fn=lambda _p: "")
    update = chat.message_update("/report 1.1.1")  # a feature router's command: not here
    await chat.feed(update)
    await chat.feed(update)  # delivered again: dropped before any router
    assert chat.errors == []
    assert len(seen) == 1 and isinstance(seen[0], ContactCtx) and seen[0].contact.display_name == "Anna"
    assert [c.text.plain for c in chat.session.calls if c.text is not None] == ["ok"]
    async with db.session() as s:
        (data,) = (await s.exec(sqlmodel.select(ConversationState.data))).all()
    assert data == {str(update.message.message_id): "/report 1.1.1"}  # type: ignore[union-attr]
    await db.dispose()
