"""Runs the real bot (the production Dispatcher, long polling) against the fake Bot API."""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode

from bot.app import build_dispatcher, finish_updates
from bot.config import Settings
from bot.sender import sending
from bot.services_container import Services
from bot.throttle import Throttle, install
from reporting_forms.catalog import Catalog
from storage.db import Database
from storage.repositories import Repos
from tests.fakebotapi import FakeBotAPI

CHAT_NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)  # the chat tests' clock: a working day
HARNESS_RATE = 200.0  # messages/s, overall and per chat, in the running bot of the chat tests


@dataclass
class Harness:
    server: FakeBotAPI
    db: Database
    services: Services
    bot: Bot  # the running bot (its request middleware: bot/throttle.py)

    async def invite(
        self,
        institution: str,
        role: str = "contact",
        *,
        expires_in: dt.timedelta | None = None,
        now: dt.datetime | None = None,
    ) -> str:
        async with self.db.session() as s:
            repos = Repos(s)
            inst = await repos.people.institution(institution)
            return await repos.people.create_invite(
                institution_id=inst.id, role=role, expires_in=expires_in or dt.timedelta(days=14), now=now
            )

    async def register(
        self,
        user_id: int,
        institution: str,
        role: str = "contact",
        name: str = "Anna",
        language_code: str = "lv",
    ):
        user = self.server.user(user_id, first_name=name, language_code=language_code)
        user.send(f"/start {await self.invite(institution, role)}")
        await user.replies(1)
        return user


async def prepare_database(url: str, catalog: Catalog) -> None:
    db = Database(url)
    async with db.session() as s:
        await Repos(s).catalog.sync(catalog)
    await db.dispose()


@contextlib.asynccontextmanager
async def running_bot(server: FakeBotAPI, url: str, catalog: Catalog) -> AsyncIterator[Harness]:
    """One bot process lifetime: a Database, a Dispatcher, polling. Leaving the block = stopping."""
    with tempfile.TemporaryDirectory(prefix="resobot-compiled-") as compiled:
        async with _running_bot(server, url, catalog, Path(compiled)) as harness:
            yield harness


@contextlib.asynccontextmanager
async def _running_bot(
    server: FakeBotAPI, url: str, catalog: Catalog, compiled: Path
) -> AsyncIterator[Harness]:
    settings = Settings(
        database_url=url,
        telegram_bot_token=server.token,
        telegram_api_base=server.base_url,
        outbox_global_rate=HARNESS_RATE,
        outbox_per_chat_rate=HARNESS_RATE,
        compiled_dir=compiled,  # the files /summary and /export queue in the outbox
        data_dir=compiled.parent / "data",  # not the project's var/
        _env_file=None,
    )
    db = Database(url)
    services = Services(db=db, catalog=catalog, settings=settings)
    dp = build_dispatcher(services)
    bot = server.make_bot(default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    # the production request middleware (rate limits, 429 retries), with the limits of these
    # settings: generous (HARNESS_RATE), so a scripted user typing at machine speed is not
    # slowed to Telegram's one message per second (tests/test_throttle.py tests the limits)
    install(bot, Throttle.from_settings(settings))
    try:
        # the outbox sender, as the running bot has it: notices (reviews, reopened years) go
        # out through the outbox once the update that queued them has committed
        async with sending(services, bot):
            async with server.polling(dp, bot):
                yield Harness(server, db, services, bot)
            # as the running bot stops: updates still being handled finish first, and one cut
            # off is kept for a next start (bot/app.py)
            await finish_updates(dp, services, bot)
    finally:
        await bot.session.close()
        await db.dispose()
