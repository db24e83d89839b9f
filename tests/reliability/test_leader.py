"""Defect 2 of issue 11 (the pieces): one leader per PostgreSQL database, a follower takes over
when the leader's connection dies, and the per-user conversation lock holds across instances."""

from __future__ import annotations

import asyncio

from sqlalchemy import String, text

from bot.leader import Leadership
from bot.middlewares import CHAT_LOCK_CLASS, chat_lock_key, conversation_lock
from storage.db import Database, Sql
from storage.repositories import Repos


class Instance:
    """A Leadership with counting hooks, as one bot process has."""

    def __init__(self, url: str, poll: float = 0.2) -> None:
        self.gained = self.lost = 0
        self.leadership = Leadership(url, on_gain=self._gain, on_lose=self._lose, poll_seconds=poll)

    async def _gain(self) -> None:
        self.gained += 1

    async def _lose(self) -> None:
        self.lost += 1

    @property
    def leads(self) -> bool:
        return bool(self.leadership.is_leader)


async def until(predicate, timeout: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_one_leader_and_a_follower_takes_over_when_it_stops(pg_url: str) -> None:
    a, b = Instance(pg_url), Instance(pg_url)
    await a.leadership.start()
    await b.leadership.start()
    try:
        assert (a.leadership.is_leader, b.leadership.is_leader) == (True, False)
        await asyncio.sleep(0.6)  # several polls: the follower stays a follower
        assert (a.gained, b.gained) == (1, 0)
        await a.leadership.stop()
        assert a.lost == 1 and a.leadership.is_leader is False
        assert await until(lambda: b.leads), "the follower took over"
        assert b.gained == 1
    finally:
        await a.leadership.stop()
        await b.leadership.stop()


async def test_a_leader_whose_connection_is_killed_steps_down_and_someone_leads_again(pg_url: str) -> None:
    a, b = Instance(pg_url), Instance(pg_url)
    await a.leadership.start()
    await b.leadership.start()
    admin = Database(pg_url)
    try:
        assert a.leads and not b.leads
        async with admin.session() as s:  # what a database restart or an operator does to it
            await s.exec(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
                )
            )
        assert await until(lambda: a.lost == 1), "the old leader noticed and stopped its work"
        assert await until(lambda: a.leads != b.leads and (a.leads or b.leads)), "exactly one leads again"
        await asyncio.sleep(0.6)
        assert a.leads != b.leads
        assert a.gained + b.gained == 2 and a.gained - a.lost + b.gained - b.lost == 1
    finally:
        await a.leadership.stop()
        await b.leadership.stop()
        await admin.dispose()


async def test_the_conversation_lock_holds_across_instances(pg_url: str) -> None:
    """Two instances (two engines) get updates of one user: the second transaction waits until
    the first commits; another user's update is not held up."""
    one, two = Database(pg_url), Database(pg_url)
    first_in, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def update(db: Database, key: str, name: str, hold: bool = False) -> None:
        async with db.unit(lock=conversation_lock(db, key)):
            order.append(f"{name} in")
            if hold:
                first_in.set()
                await release.wait()
            order.append(f"{name} out")

    try:
        first = asyncio.create_task(update(one, "bot:1001:1001", "A", hold=True))
        await first_in.wait()
        second = asyncio.create_task(update(two, "bot:1001:1001", "B"))
        await update(two, "bot:2002:2002", "other")  # another user: not blocked by A
        done, _ = await asyncio.wait({second}, timeout=0.5)
        assert not done, "the same user's second update waits for the first transaction"
        release.set()
        await asyncio.gather(first, second)
        assert order == ["A in", "other in", "other out", "A out", "B in", "B out"]
    finally:
        await one.dispose()
        await two.dispose()


_STATE = Sql(
    "INSERT INTO conversation_state (key, state, data, updated_at) VALUES (:k, 'S', '{}', now())",
    {"k": String()},
)


async def test_the_duplicate_check_takes_the_conversation_lock_first(pg_url: str) -> None:
    """UnitOfWork has the lock taken by the unit's BEGIN: a second instance's update of the same
    user waits until the first commits, then its first statement (Repos.start_update) reads
    what the first wrote; a re-delivered update is still dropped."""
    one, two = Database(pg_url), Database(pg_url)
    key = "bot:1001:1001"
    first_in, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def update(db: Database, update_id: int, name: str, hold: bool = False) -> bool:
        lock = conversation_lock(db, key)
        assert lock == (CHAT_LOCK_CLASS, chat_lock_key(key))
        async with db.unit(lock=lock) as unit:
            start = await Repos(unit).start_update(update_id, 1001, key, bot_id=1)
            order.append(f"{name} in {start.state if start else 'duplicate'}")
            if hold:
                first_in.set()
                await release.wait()
                await _STATE.run(unit, k=key)
            return start is not None

    try:
        first = asyncio.create_task(update(one, 1, "A", hold=True))
        await first_in.wait()
        second = asyncio.create_task(update(two, 2, "B"))
        done, _ = await asyncio.wait({second}, timeout=0.5)
        assert not done, "the same user's second update waits for the first transaction"
        release.set()
        assert await asyncio.gather(first, second) == [True, True]
        assert not await update(two, 1, "A again")
        assert order == ["A in None", "B in S", "A again in duplicate"]
    finally:
        await one.dispose()
        await two.dispose()
