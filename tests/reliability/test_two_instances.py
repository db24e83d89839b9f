"""Defect 2 of issue 11, end to end: two real bot processes on one PostgreSQL database with the
fake Bot API. A fan-out of reminders is sent while the instances are killed (SIGKILL) and
stopped (SIGTERM) at seeded random moments and restarted; users fill in forms before and after.

Before: each instance's start-up recovery requeued the other's in-flight rows and both drained
the outbox (duplicates). Now one leader sends, a follower takes over when it dies, and only a
claim whose lease expired is sent again. The fake's record must show every message, and a
message twice only where the Bot API leaves no choice: a SIGKILL inside its request's round
trip (Telegram had it, the database still said in flight) — the documented limit of
tests/test_exactly_once.py. SIGTERM never repeats anything."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

from storage.db import Database
from storage.outbox import OutboxRepo
from storage.tables import OutboxStatus
from tests.fakebotapi import FakeBotAPI
from tests.reliability.procs import BotProcess, add_contacts, drafts
from tests.test_exactly_once import delivered, fan_out, states

S = OutboxStatus
RATE = 10  # messages/s


async def in_flight(url: str) -> set[int]:
    db = Database(url)
    try:
        async with db.session() as s:
            return {r.chat_id for r in await OutboxRepo(s).log() if r.status == S.SENDING}
    finally:
        await db.dispose()


async def until(server: FakeBotAPI, predicate, timeout: float, what: str, procs: list[BotProcess]) -> None:
    ok = await server._wait_until(predicate, timeout)
    assert ok, f"{what}\n" + "\n".join(p.logs()[-4000:] for p in procs)


async def test_two_instances_killed_and_stopped_at_random_deliver_everything_once(
    server: FakeBotAPI, pg_url: str, catalog, tmp_path: Path
) -> None:
    rng = random.Random(1102)
    chats = await fan_out(pg_url, catalog, contacts=60)
    users = [800_001, 800_002, 800_003]
    await add_contacts(pg_url, users)
    a = BotProcess(server, pg_url, tmp_path, "a", OUTBOX_GLOBAL_RATE=str(RATE))
    b = BotProcess(server, pg_url, tmp_path, "b", OUTBOX_GLOBAL_RATE=str(RATE))
    procs = [a, b]
    ambiguous: set[int] = set()
    actions: list[str] = []
    await a.start()
    await b.start()
    try:
        people = [server.user(u, first_name=f"U{u}") for u in users]
        for person in people:  # a form started on whichever instance polls first
            person.send("/report 3.1.5")
            await person.replies(1, timeout=60)
            person.send(f"{person.id % 100},5")
            await person.replies(1, timeout=20)
        for n in (8, 20, 32, 44):
            await until(server, lambda n=n: len(delivered(server)) >= n, 60, f"{n} delivered", procs)
            await asyncio.sleep(rng.uniform(0, 1.0 / RATE))
            victim = rng.choice(procs)
            await victim.started()  # a stop during start-up is not what is tested here
            if rng.random() < 0.5:
                await victim.kill()
                got = Counter(delivered(server))
                ambiguous |= {c for c in await in_flight(pg_url) if got[c]}
                actions.append(f"kill -9 {victim.name} at {n}")
            else:
                assert await victim.term() == 0, victim.logs()
                actions.append(f"SIGTERM {victim.name} at {n}")
            await victim.start()
        await until(server, lambda: set(delivered(server)) >= set(chats), 60, "all delivered", procs)
        for person in people:  # the drafts survived every kill: the second answer follows the first
            person.send("3,25")
            (reply,) = await person.replies(1, timeout=60)
            assert "jautājums 3 no 3" in reply.text, (person.id, reply.text)
        await asyncio.sleep(1.0)  # nothing more arrives
    finally:
        for p in procs:
            await p.term()
    counts = Counter(c for c in delivered(server) if c in set(chats))  # the fan-out, not the forms
    assert set(counts) == set(chats), "nothing missing"
    repeated = {c for c, k in counts.items() if k > 1}
    assert repeated <= ambiguous and all(k <= 2 for k in counts.values()), (repeated, ambiguous, actions)
    assert (await states(pg_url)) == Counter({S.SENT: len(chats)})
    data = str(await drafts(pg_url))
    assert all(f"{u % 100}.5" in data and "3.25" in data for u in users), data
    assert not server.errors
