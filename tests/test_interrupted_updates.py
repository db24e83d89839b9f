"""Updates a stop left unhandled (interrupted_update): kept, handed back at the next start,
handled in order, then forgotten; and purged when nothing ever handled them.

The process-level evidence (SIGTERM, a real bot, both backends) is
tests/reliability/test_sigterm_in_flight.py; here, the pieces on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.types import Message, Update

from bot.app import finish_updates, resume_interrupted
from bot.middlewares import InFlight
from bot.offline import RecordingSession, html_to_rich
from bot.replay import UpdateReplay
from reporting_forms.texts import text
from storage import tables as t
from storage.db import Database
from storage.interrupted import FALLBACK_FILE, keep_in_file, mark_handled, read_file
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


# ---------------------------------------------------------------- the database down at the stop


def test_the_file_keeps_each_bots_updates_and_skips_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "data" / FALLBACK_FILE
    first, second = _update(51, 801, "Komentārs ar garumzīmēm"), _update(52, 801, "7")
    keep_in_file(path, BOT_ID, [(51, _payload(first))])
    keep_in_file(path, 7, [(52, _payload(second))])
    keep_in_file(path, BOT_ID, [(54, _payload(_update(54, 801, "8")))])
    mark_handled(path, BOT_ID, 54)  # a journal's update handled after all
    mark_handled(path, 7, 51)  # another bot's 51: not this one
    with path.open("a", encoding="utf-8") as out:
        out.write('{"bot_id": 42, "update_id": 53, "payl')  # a crash while the line was written
    kept = read_file(path)
    assert {bot: [u for u, _ in items] for bot, items in kept.items()} == {BOT_ID: [51], 7: [52]}
    assert Update.model_validate(kept[BOT_ID][0][1]) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the users' messages: the owner's only
    assert read_file(tmp_path / "none.jsonl") == {}


async def test_a_stop_with_the_database_down_keeps_the_held_updates_in_a_file_and_the_next_start_takes_them(
    db: Database, tmp_path: Path
) -> None:
    """The replay holds two updates (the database went away); the stop cannot reach the
    database, so they go to the data folder's file; the next start moves them into the table,
    removes the file and hands them to its replay."""
    down = Database("postgresql+asyncpg://nobody@127.0.0.1:9/resobot")  # nothing listens there
    bot = Bot(f"{BOT_ID}:outage")
    dp = Dispatcher()
    dp["in_flight"] = InFlight()
    stopping = SimpleNamespace(
        db=down,
        settings=SimpleNamespace(data_dir=tmp_path, stop_grace_seconds=0.1),
        replay=UpdateReplay(dp, bot, down),
    )
    stopping.replay.resume([_update(61, 901, "3,25"), _update(62, 901, "Komentārs")])
    try:
        await finish_updates(dp, stopping, bot)  # type: ignore[arg-type]
    finally:
        await down.dispose()
    assert {b: [u for u, _ in items] for b, items in read_file(tmp_path / FALLBACK_FILE).items()} == {
        BOT_ID: [61, 62]
    }

    starting = SimpleNamespace(
        db=db, settings=SimpleNamespace(data_dir=tmp_path), replay=UpdateReplay(Dispatcher(), bot, db)
    )
    try:
        await resume_interrupted(starting, bot)  # type: ignore[arg-type]
    finally:
        await bot.session.close()
    assert not (tmp_path / FALLBACK_FILE).exists()
    assert await _pending(db) == [61, 62]
    released = starting.replay.release()  # what the replay was handed, in order
    assert [(u.update_id, u.message.text) for u in released] == [(61, "3,25"), (62, "Komentārs")]


# ---------------------------------------------------------------- held updates, written down


async def test_an_update_is_written_down_as_it_is_held_and_the_journal_goes_once_it_was_handled(
    db: Database, tmp_path: Path
) -> None:
    """A process killed during an outage loses nothing it held: each update is in the data
    folder's journal before it is held; once the replay has handled them all, the journal goes."""
    handled: list[str] = []
    carried: list[list[int]] = []  # what a next start would carry forward, as each one is handled
    router = Router()

    @router.message()
    async def record(message: Message) -> None:
        handled.append(message.text or "")
        carried.append([u for u, _ in read_file(journal).get(BOT_ID, [])])

    dp = Dispatcher()
    dp.include_router(router)
    bot = Bot(f"{BOT_ID}:journal", session=RecordingSession())
    replay = UpdateReplay(dp, bot, db, data_dir=tmp_path)
    journal = replay.journal
    assert journal is not None and journal.parent == tmp_path
    first, second = _update(71, 1001, "3,25"), _update(72, 1001, "Komentārs ar garumzīmēm")
    replay.start()  # the database answers again 0.5 s after the first update is held
    try:
        await replay.hold(first)
        await replay.hold(second)
        written = read_file(journal)
        assert {b: [u for u, _ in items] for b, items in written.items()} == {BOT_ID: [71, 72]}
        assert Update.model_validate(written[BOT_ID][1][1]) == second  # as Telegram sent it
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600
        assert [c.text.plain for c in bot.session.calls if c.text is not None] == [  # type: ignore[attr-defined]
            html_to_rich(text("lv", "common.db_unavailable")).plain
        ]  # told once
        for _ in range(100):
            if len(handled) == 2 and not journal.exists():
                break
            await asyncio.sleep(0.05)
    finally:
        await replay.stop()
    assert handled == ["3,25", "Komentārs ar garumzīmēm"]
    assert carried == [[71, 72], [72]]  # the first, once handled, is marked so: never handled twice
    assert not journal.exists() and not (tmp_path / FALLBACK_FILE).exists()


async def test_a_journal_a_killed_process_left_is_handled_at_the_next_start(
    db: Database, tmp_path: Path
) -> None:
    """The next start adds the journal to the file of kept updates before the first update,
    and resume_interrupted takes them into the database and hands them to the replay."""
    bot = Bot(f"{BOT_ID}:killed", session=RecordingSession())
    journal = tmp_path / "held-updates.4711-0a1b2c3d.jsonl"  # what the killed process left
    keep_in_file(journal, BOT_ID, [(81, _payload(_update(81, 1101, "12")))])
    with journal.open("a", encoding="utf-8") as out:
        out.write('{"bot_id": 42, "update_id": 82, "pay')  # killed while writing the next one
    another = tmp_path / "held-updates.815-4e5f6a7b.jsonl"  # an instance sharing the folder
    keep_in_file(another, BOT_ID, [(83, _payload(_update(83, 1102, "Piezīme")))])
    keep_in_file(tmp_path / FALLBACK_FILE, BOT_ID, [(80, _payload(_update(80, 1101, "/report 1.1.1")))])
    replay = UpdateReplay(Dispatcher(), bot, db, data_dir=tmp_path)
    replay.start()
    try:
        assert not journal.exists() and not another.exists()
        assert [u for u, _ in read_file(tmp_path / FALLBACK_FILE)[BOT_ID]] == [80, 81, 83]
        replay.pause()  # handled by the replay or not, here only what it is handed counts
        starting = SimpleNamespace(db=db, settings=SimpleNamespace(data_dir=tmp_path), replay=replay)
        await resume_interrupted(starting, bot)  # type: ignore[arg-type]
    finally:
        await replay.stop()
    assert not (tmp_path / FALLBACK_FILE).exists()
    assert await _pending(db) == [80, 81, 83]
    assert [(u.update_id, u.message.text) for u in replay.release()] == [
        (80, "/report 1.1.1"),
        (81, "12"),
        (83, "Piezīme"),
    ]


async def test_a_stop_keeps_what_the_replay_holds_and_the_journal_goes(db: Database, tmp_path: Path) -> None:
    bot = Bot(f"{BOT_ID}:stop", session=RecordingSession())
    dp = Dispatcher()
    dp["in_flight"] = InFlight()
    replay = UpdateReplay(dp, bot, db, data_dir=tmp_path)
    await replay.hold(_update(91, 1201, "5"))
    assert replay.journal is not None and replay.journal.exists()
    stopping = SimpleNamespace(
        db=db, settings=SimpleNamespace(data_dir=tmp_path, stop_grace_seconds=0.1), replay=replay
    )
    await finish_updates(dp, stopping, bot)  # type: ignore[arg-type]
    assert await _pending(db) == [91]  # kept in the database
    assert not replay.journal.exists()  # so no longer needed written down
