"""Updates a stop left unhandled (interrupted_update): kept, handed back at the next start,
handled in order, then forgotten; and purged when nothing ever handled them.

The process-level evidence (SIGTERM, a real bot, both backends) is
tests/reliability/test_sigterm_in_flight.py; here, the pieces on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message, Update

from bot.replay import UpdateReplay
from storage import tables as t
from storage.db import Database
from storage.repositories import Repos
from storage.retention import purge

BOT_ID = 42


def _update(update_id: int, chat: int, text: str) -> Update:
    return Update.model_validate(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 1_764_900_000,
                "chat": {"id": chat, "type": "private"},
                "from": {"id": chat, "is_bot": False, "first_name": "Līga"},
                "text": text,
            },
        }
    )


def _payload(update: Update) -> dict[str, Any]:
    return update.model_dump(mode="json", by_alias=True, exclude_none=True)  # as bot/app.py keeps it


async def _pending(db: Database, bot_id: int = BOT_ID) -> list[int]:
    async with db.session() as s:
        return [update_id for update_id, _ in await Repos(s).interrupted.pending(bot_id)]


async def test_kept_updates_come_back_in_telegrams_order_per_bot_and_are_kept_once(db: Database) -> None:
    later, earlier = _update(12, 501, "3,5"), _update(11, 501, "/report 1.1.1")
    async with db.session() as s:
        assert await Repos(s).interrupted.save(BOT_ID, [(12, _payload(later)), (11, _payload(earlier))]) == 2
        assert await Repos(s).interrupted.save(7, [(11, {"update_id": 11})]) == 1  # another bot's 11
    async with db.session() as s:  # a stop during the replay of the last stop's: kept once
        assert await Repos(s).interrupted.save(BOT_ID, [(11, _payload(earlier))]) == 0
        kept = await Repos(s).interrupted.pending(BOT_ID)
    assert [update_id for update_id, _ in kept] == [11, 12]
    assert Update.model_validate(kept[0][1]) == earlier  # as Telegram sent it, text and all
    async with db.session() as s:
        await Repos(s).interrupted.forget(BOT_ID, 11)
        await Repos(s).interrupted.forget(BOT_ID, 99)  # not kept: nothing to do
    assert await _pending(db) == [12]
    assert await _pending(db, 7) == [11]


async def test_the_replay_handles_kept_updates_in_order_and_forgets_each(db: Database) -> None:
    handled: list[tuple[int, str]] = []
    router = Router()

    @router.message()
    async def record(message: Message) -> None:
        handled.append((message.message_id, message.text or ""))

    dp = Dispatcher()
    dp.include_router(router)
    bot = Bot(f"{BOT_ID}:resume")
    first, second, other = _update(21, 601, "/report 1.1.1"), _update(22, 601, "5"), _update(23, 602, "/help")
    async with db.session() as s:
        await Repos(s).interrupted.save(BOT_ID, [(u.update_id, _payload(u)) for u in (first, second, other)])
    replay = UpdateReplay(dp, bot, db)
    kept = [Update.model_validate(p, context={"bot": bot}) for _, p in await _pending_payloads(db)]
    replay.resume(kept)
    assert replay.holds_chat(601) and replay.holds_chat(602)  # a user's new updates wait behind
    replay.start()
    try:
        for _ in range(100):
            if len(handled) == 3 and not await _pending(db):
                break
            await asyncio.sleep(0.05)
    finally:
        await replay.stop()
        await bot.session.close()
    assert handled == [(21, "/report 1.1.1"), (22, "5"), (23, "/help")]
    assert await _pending(db) == []
    assert not replay.holds_chat(601) and replay.held == 0


async def _pending_payloads(db: Database) -> list[tuple[int, dict[str, Any]]]:
    async with db.session() as s:
        return await Repos(s).interrupted.pending(BOT_ID)


async def test_a_stop_takes_the_held_updates_not_begun_and_the_replay_begins_none(db: Database) -> None:
    handled: list[int] = []
    router = Router()

    @router.message()
    async def record(message: Message) -> None:
        handled.append(message.message_id)

    dp = Dispatcher()
    dp.include_router(router)
    bot = Bot(f"{BOT_ID}:pause")
    replay = UpdateReplay(dp, bot, db)
    replay.resume([_update(31, 701, "a"), _update(32, 702, "b")])
    replay.pause()  # the stop comes before the replay's first turn
    replay.start()
    try:
        await asyncio.sleep(0.8)  # past the replay's first wait (0.5 s)
        released = replay.release()
    finally:
        await replay.stop()
        await bot.session.close()
    assert handled == []
    assert [u.update_id for u in released] == [31, 32]
    assert replay.held == 0 and not replay.holds_chat(701)


async def test_purge_removes_kept_updates_nothing_handled(db: Database) -> None:
    now = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
    async with db.session() as s:
        s.add(
            t.InterruptedUpdate(
                bot_id=BOT_ID, update_id=41, payload={"update_id": 41}, at=now - dt.timedelta(days=100)
            )
        )
        s.add(
            t.InterruptedUpdate(
                bot_id=BOT_ID, update_id=42, payload={"update_id": 42}, at=now - dt.timedelta(days=1)
            )
        )
    result = await purge(db, days=90, now=now)
    assert result.interrupted_updates == 1 and result.counts()["interrupted_updates"] == 1
    assert await _pending(db) == [42]
