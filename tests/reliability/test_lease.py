"""Defect 2 of issue 11: start-up recovery requeued *every* row in ``sending`` — another
instance's in-flight requests too. Now a claim has a lease and only an expired one is
recovered; and only the leader runs the scheduler (its jobs run once)."""

from __future__ import annotations

import asyncio
import datetime as dt

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties

from bot.config import Settings
from bot.scheduler import running_reminders
from bot.services_container import Services
from reporting_forms.catalog import Catalog
from reporting_forms.payloads import ReminderPayload
from storage.db import Database
from storage.outbox import KIND_REMINDER, NewMessage, OutboxRepo
from storage.tables import OutboxStatus, utcnow
from tests.chat_harness import prepare_database

S = OutboxStatus


async def test_recovery_touches_only_expired_claims(db: Database) -> None:
    now = utcnow()
    async with db.session() as s:
        repo = OutboxRepo(s)
        await repo.add_many(
            [
                NewMessage(f"k{i}", None, 5000 + i, KIND_REMINDER, ReminderPayload(now.date()), now)
                for i in range(3)
            ]
        )
        live, expired, legacy = [(await repo.by_key(f"k{i}")).id for i in range(3)]
        assert await repo.claim(live, "other-instance", now + dt.timedelta(seconds=60))
        assert await repo.claim(expired, "dead-instance", now - dt.timedelta(seconds=1))
        assert await repo.claim(legacy)  # no lease at all: counts as expired
    async with db.session() as s:
        assert await OutboxRepo(s).recover_in_flight(max_attempts=5, now=now) == (2, 0)
    async with db.session() as s:
        repo = OutboxRepo(s)
        rows = {i: await repo.get(i) for i in (live, expired, legacy)}
    assert rows[live].status == S.SENDING and rows[live].claimed_by == "other-instance"
    assert rows[expired].status == S.PENDING and rows[expired].claimed_by is None
    assert rows[legacy].status == S.PENDING


async def test_only_the_leader_runs_the_scheduler_and_the_sender(pg_url: str, catalog: Catalog) -> None:
    """Two runtimes (two instances) on one database: one scheduler, one sender; when the
    leader stops, the other one starts its own within a poll."""
    await prepare_database(pg_url, catalog)
    settings = Settings(
        _env_file=None,
        database_url=pg_url,
        telegram_bot_token="42:offline",
        reminders_enabled=False,
        compile_enabled=False,
        leader_poll_seconds=0.2,
    )
    dbs = [Database(pg_url), Database(pg_url)]
    services = [Services(db=d, catalog=catalog, settings=settings) for d in dbs]
    bot = Bot("42:offline", default=DefaultBotProperties(parse_mode="HTML"))
    try:
        first = running_reminders(services[0], bot, plan_on_start=False)
        one = await first.__aenter__()
        async with running_reminders(services[1], bot, plan_on_start=False) as two:
            assert (services[0].is_leader, services[1].is_leader) == (True, False)
            assert one.scheduler is not None and one.scheduler.running
            assert two.scheduler is None and two._sender_task is None
            await first.__aexit__(None, None, None)
            assert services[0].is_leader is False and one.scheduler is None
            for _ in range(600):  # one poll, then its start-up: seconds on a loaded machine
                # the scheduler is made before its jobstore's first connection, then started
                if services[1].is_leader and two.scheduler is not None and two.scheduler.running:
                    break
                await asyncio.sleep(0.05)
            assert services[1].is_leader and two.scheduler is not None and two.scheduler.running
        assert services[1].is_leader is False
    finally:
        await bot.session.close()
        for d in dbs:
            await d.dispose()
