"""The outbox sender against the fake Bot API: rate limits, 429, 403, 5xx, timeouts, quiet hours."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.config import Settings
from bot.sender import Sender, backoff
from reporting_forms.catalog import Catalog
from storage.db import Database
from storage.outbox import KIND_DIGEST, KIND_DOCUMENT, KIND_FILE, KIND_REMINDER, NewMessage, OutboxRepo
from storage.repositories import Repos
from storage.tables import Contact, Outbox, OutboxStatus
from tests.chat_harness import prepare_database
from tests.fakebotapi import FakeBotAPI

RIGA = ZoneInfo("Europe/Riga")
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=RIGA)
S = OutboxStatus


def reminder_payload(measure: str = "1.1.1") -> dict:
    return {
        "institution": "VPD",
        "language": "lv",
        "send_date": "2026-12-01",
        "kinds": ["request"],
        "tasks": [
            {
                "task_id": "1.1",
                "task_title": "Uzdevums",
                "items": [
                    {
                        "measure_id": measure,
                        "measure_name": "Pasākums",
                        "kind": "request",
                        "deadline": "2026-12-31",
                        "period_year": 2026,
                        "missing": [f"{measure}.1"],
                        "offset_days": None,
                    }
                ],
            }
        ],
    }


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
async def db(sqlite_url: str, catalog: Catalog) -> AsyncIterator[Database]:
    await prepare_database(sqlite_url, catalog)
    database = Database(sqlite_url)
    yield database
    await database.dispose()


def settings_for(server: FakeBotAPI, db: Database, **overrides: object) -> Settings:
    values: dict = {
        "database_url": db.url,
        "telegram_bot_token": server.token,
        "telegram_api_base": server.base_url,
        "outbox_global_rate": 200.0,
        "outbox_per_chat_rate": 200.0,
        "outbox_backoff_seconds": 0.05,
        "outbox_backoff_max_seconds": 0.2,
        "outbox_max_attempts": 3,
        "outbox_request_timeout": 1.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
async def make_sender(server: FakeBotAPI, db: Database):
    bots = []

    def make(**overrides: object) -> Sender:
        bot = server.make_bot()
        bots.append(bot)
        return Sender(db, bot, settings_for(server, db, **overrides))

    yield make
    for bot in bots:
        await bot.session.close()


async def contacts(db: Database, n: int, inst: str = "VPD", first_chat: int = 7001) -> list[tuple[int, int]]:
    """n contacts; returns (contact_id, chat_id) pairs."""
    out = []
    async with db.session() as s:
        repos = Repos(s)
        institution = await repos.people.institution(inst)
        for i in range(n):
            c = await repos.people.add_contact(
                display_name=f"C{i}", institution_id=institution.id, telegram_user_id=first_chat + i
            )
            out.append((c.id, first_chat + i))
    return out


async def enqueue(
    db: Database, people: list[tuple[int, int]], per_contact: int = 1, at: dt.datetime = NOW
) -> None:
    async with db.session() as s:
        await OutboxRepo(s).add_many(
            [
                NewMessage(f"k{cid}-{i}", cid, chat, KIND_REMINDER, reminder_payload(f"1.1.{i + 1}"), at)
                for cid, chat in people
                for i in range(per_contact)
            ]
        )


async def rows(db: Database) -> list[Outbox]:
    async with db.session() as s:
        return await OutboxRepo(s).for_period(
            [KIND_REMINDER, KIND_DIGEST], NOW - dt.timedelta(days=3), NOW + dt.timedelta(days=3)
        )


async def settle(sender: Sender, db: Database, timeout: float = 10.0) -> None:
    """Drain until no row is pending (retries included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(r.status == S.PENDING for r in await rows(db)):
        assert loop.time() < deadline, [(r.id, r.status, r.last_error) for r in await rows(db)]
        await sender.drain_once()
        await asyncio.sleep(0.02)


async def test_sends_every_due_row_once_with_buttons(clock, server, db, make_sender) -> None:
    people = await contacts(db, 3)
    await enqueue(db, people)
    sender = make_sender()
    stats = await sender.drain_once()
    assert stats.sent == 3
    assert (await sender.drain_once()).sent == 0, "nothing is sent twice"
    for (_cid, chat), row in zip(people, await rows(db), strict=True):
        (out,) = server.sent_to(chat)
        assert row.status == S.SENT and row.telegram_message_id == out.message_id and row.attempts == 1
        assert "Atgādinājums par gada atskaiti" in out.text
        assert out.button_texts == ["Ziņot tagad", "Atgādināt rīt", "Apturēt atgādinājumus"]


async def test_future_rows_wait(clock, server, db, make_sender) -> None:
    people = await contacts(db, 1)
    await enqueue(db, people, at=NOW + dt.timedelta(hours=1))
    assert (await make_sender().drain_once()).sent == 0
    assert server.sent_to(people[0][1]) == []


async def test_429_is_honoured(clock, server, db, make_sender) -> None:
    server.rate_limit(per_second=2, retry_after=1)
    people = await contacts(db, 5)
    await enqueue(db, people)
    sender = make_sender()
    await settle(sender, db)
    assert server.stats["429"] >= 1 and sender.totals.rate_limited == server.stats["429"]
    assert sender.throttle.retried == 0, "a claimed row is not retried inside the middleware"
    for _cid, chat in people:
        assert len(server.sent_to(chat)) == 1
    # retry_after is waited out: a sender that retried at once would collect dozens of 429s
    assert server.stats["429"] <= 5 and server.stats["sendMessage"] <= 10, server.stats
    times = [o.at for o in server.outputs]
    assert max(b - a for a, b in pairwise(times)) >= 0.95, times
    assert all(r.attempts == 1 for r in await rows(db)), "a 429 does not use up an attempt"


async def test_403_marks_the_contact_blocked(clock, server, db, make_sender) -> None:
    (anna, anna_chat), (bob, bob_chat) = await contacts(db, 2)
    await enqueue(db, [(anna, anna_chat), (bob, bob_chat)], per_contact=2)
    server.block(anna_chat)
    sender = make_sender(outbox_per_chat_rate=50.0)
    await settle(sender, db)
    by_contact = {}
    for r in await rows(db):
        by_contact.setdefault(r.contact_id, set()).add(r.status)
    assert by_contact == {anna: {S.BLOCKED}, bob: {S.SENT}}
    async with db.session() as s:
        assert (await s.get(Contact, anna)).blocked and not (await s.get(Contact, bob)).blocked
    assert server.stats["403"] == 1, "the second row to a blocked contact is not even tried"
    await enqueue(db, [(anna, anna_chat)], per_contact=3)  # a new row to a known-blocked contact
    await sender.drain_once()
    assert server.stats["403"] == 1 and all(r.status != S.PENDING for r in await rows(db))


async def test_5xx_is_retried_with_backoff_then_fails(clock, server, db, make_sender) -> None:
    (anna, anna_chat), (bob, bob_chat) = await contacts(db, 2)
    await enqueue(db, [(anna, anna_chat)])
    server.fail_next("sendMessage", 502, times=2)
    sender = make_sender()
    await settle(sender, db)
    (row,) = await rows(db)
    assert (row.status, row.attempts) == (S.SENT, 3) and len(server.sent_to(anna_chat)) == 1
    assert sender.totals.retried == 2

    await enqueue(db, [(bob, bob_chat)])
    server.fail_next("sendMessage", 500, times=5)
    await settle(sender, db)
    bob_row = next(r for r in await rows(db) if r.contact_id == bob)
    assert (bob_row.status, bob_row.attempts) == (S.FAILED, 3) and "after 3 attempts" in bob_row.last_error
    assert server.sent_to(bob_chat) == []


async def test_a_timeout_is_retried(clock, server, db, make_sender) -> None:
    people = await contacts(db, 1)
    await enqueue(db, people)
    server.delay("sendMessage", 3.0)  # longer than the 1 s request timeout; never processed
    sender = make_sender()
    stats = await sender.drain_once()
    assert stats.retried == 1 and server.sent_to(people[0][1]) == []
    server.delay("sendMessage", None)
    await settle(sender, db)
    (row,) = await rows(db)
    assert (row.status, row.attempts) == (S.SENT, 2) and len(server.sent_to(people[0][1])) == 1


async def test_bad_request_fails_at_once(clock, server, db, make_sender) -> None:
    people = await contacts(db, 1)
    await enqueue(db, people)
    server.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    await make_sender().drain_once()
    (row,) = await rows(db)
    assert (row.status, row.attempts) == (S.FAILED, 1) and "chat not found" in row.last_error


async def test_per_chat_and_global_rates(clock, server, db, make_sender) -> None:
    (one,) = await contacts(db, 1)
    await enqueue(db, [one], per_contact=3)
    await make_sender(outbox_per_chat_rate=5.0).drain_once()
    times = [o.at for o in server.sent_to(one[1])]
    assert len(times) == 3 and all(b - a >= 0.15 for a, b in pairwise(times)), times

    many = await contacts(db, 8, first_chat=8001)
    await enqueue(db, many)
    start = len(server.outputs)
    await make_sender(outbox_global_rate=20.0).drain_once()
    times = [o.at for o in server.outputs[start:]]
    assert len(times) == 8 and all(b - a >= 0.03 for a, b in pairwise(times)), times
    assert times[-1] - times[0] >= 7 * 0.05 - 0.02, "8 starts at 20/s span at least 0.35 s"


async def test_quiet_hours_hold_reminders(server, db, make_sender) -> None:
    people = await contacts(db, 1)
    with time_machine.travel(dt.datetime(2026, 12, 1, 21, 0, tzinfo=RIGA), tick=True):
        await enqueue(db, people, at=dt.datetime(2026, 12, 1, 21, 0, tzinfo=RIGA))
        sender = make_sender()
        assert (await sender.drain_once()).sent == 0
    with time_machine.travel(dt.datetime(2026, 12, 2, 9, 30, tzinfo=RIGA), tick=True):
        # the next morning the evening's row is of a past day: the sender never sends it late;
        # it stays pending for the planner, which folds it into the day's reminder
        stats = await sender.drain_once()
        assert (stats.sent, stats.cancelled) == (0, 0)
        assert [r.status for r in await rows(db)] == [S.PENDING]
    assert server.sent_to(people[0][1]) == []


async def test_a_batch_running_into_quiet_hours_stops_at_20_00(server, db, make_sender) -> None:
    people = await contacts(db, 12)
    evening = dt.datetime(2026, 12, 1, 19, 59, 59, 400_000, tzinfo=RIGA)
    with time_machine.travel(evening, tick=True):
        await enqueue(db, people, at=dt.datetime(2026, 12, 1, 9, 0, tzinfo=RIGA))
        stats = await make_sender(outbox_global_rate=4.0).drain_once()  # 12 rows take ~3 s
        assert 1 <= stats.sent < 12
        sent_times = [dt.datetime.fromtimestamp(o.message["date"], RIGA).time() for o in server.outputs]
        assert all(t < dt.time(20) for t in sent_times), sent_times
        held = [r for r in await rows(db) if r.status == S.PENDING]
        assert len(held) == 12 - stats.sent
        assert {r.attempts for r in held} == {0}, "held back before the claim: no attempt used"


async def test_inactive_contact_is_cancelled_and_render_failure_fails(clock, server, db, make_sender) -> None:
    (anna, anna_chat), (bob, bob_chat) = await contacts(db, 2)
    await enqueue(db, [(anna, anna_chat)])
    async with db.session() as s:
        (await s.get(Contact, anna)).active = False
        await OutboxRepo(s).add(NewMessage("broken", bob, bob_chat, KIND_REMINDER, {"tasks": []}, NOW))
    stats = await make_sender().drain_once()
    assert (stats.cancelled, stats.failed, stats.sent) == (1, 1, 0)
    assert {r.dedup_key: r.status for r in await rows(db)} == {f"k{anna}-0": S.CANCELLED, "broken": S.FAILED}


async def test_run_loop_wakes_and_stops(clock, server, db, make_sender) -> None:
    sender = make_sender(outbox_poll_seconds=30.0)
    task = asyncio.create_task(sender.run())
    people = await contacts(db, 2)
    await enqueue(db, people)
    sender.wake()
    assert await server._wait_until(lambda: len(server.outputs) == 2, 5.0)
    sender.stop()
    await asyncio.wait_for(task, 5.0)


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff(n, 2.0, 20.0) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 20.0]


async def test_a_commands_file_goes_out_in_quiet_hours_a_scheduled_one_waits(
    server, db, make_sender, tmp_path
) -> None:
    ((cid, chat),) = await contacts(db, 1)
    path = tmp_path / "a.csv"
    path.write_text("x")
    evening = dt.datetime(2026, 12, 1, 21, 0, tzinfo=RIGA)
    with time_machine.travel(evening, tick=True):
        async with db.session() as s:
            await OutboxRepo(s).add_many(
                [
                    NewMessage(
                        "scheduled",
                        cid,
                        chat,
                        KIND_DOCUMENT,
                        {"path": str(path), "filename": "s.csv"},
                        evening,
                    ),
                    NewMessage(
                        "asked",
                        cid,
                        chat,
                        KIND_FILE,
                        {"path": str(path), "filename": "a.csv", "caption": "Te"},
                        evening,
                    ),
                ]
            )
        stats = await make_sender().drain_once()
    assert stats.sent == 1
    (out,) = server.sent_to(chat)
    assert (out.method, out.document_name, out.text) == ("sendDocument", "a.csv", "Te")
