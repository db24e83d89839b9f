"""Exactly once across crashes: a REAL bot process (``python -m bot run``: polling, the
scheduler and the outbox sender) fans reminders out to the fake Bot API running in this test
process, is killed with SIGKILL several times mid fan-out and restarted; the fake server's own
record must show every planned reminder exactly once.

The sender's policy (bot/sender.py): a row is ``sent`` only after Telegram answered, and a row
left in ``sending`` by a crash is sent again. So a kill is harmless everywhere except inside the
round trip of one request. The fan-out is slowed to 8 messages/s (settings from the environment)
and each kill lands half a gap (60 ms) after the fake server answered the N-th message — between requests,
deterministically (asserted: at the kill, the database shows exactly N sent and none in flight).
The second test kills *inside* the round trip and shows the documented limit: that one message
arrives twice, no other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import update

from reporting_forms.catalog import Catalog
from reporting_forms.reminder_policy import load_policy
from services.reminder_planner import ReminderPlanner
from storage.db import Database
from storage.outbox import OutboxRepo
from storage.repositories import Repos
from storage.tables import Outbox, OutboxStatus
from tests.chat_harness import prepare_database
from tests.fakebotapi import FakeBotAPI

PROJECT = Path(__file__).resolve().parent.parent
RIGA = ZoneInfo("Europe/Riga")
RATE = 8  # messages/s: 125 ms between two requests, a request takes a few ms
PLAN_DAY = dt.date(2026, 12, 1)  # the yearly request: every contact gets one message
INSTITUTIONS = ("VPD", "IeVP", "TM", "LM", "TNA")
S = OutboxStatus


def quiet_hours_away_from_now() -> str:
    """Policy overrides whose quiet hours are far from the wall clock (the worker runs in real time)."""
    now = dt.datetime.now(RIGA)
    start = (now + dt.timedelta(hours=8)).replace(second=0, microsecond=0)
    end = start + dt.timedelta(minutes=30)
    send = start - dt.timedelta(hours=1)
    return json.dumps(
        {"quiet_hours": {"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}, "send_time": f"{send:%H:%M}"}
    )


async def fan_out(url: str, catalog: Catalog, contacts: int) -> list[int]:
    """Contacts in the reporting institutions, their 1 December reminders planned and due now."""
    await prepare_database(url, catalog)
    db = Database(url)
    chats = []
    async with db.session() as s:
        repos = Repos(s)
        for i in range(contacts):
            inst = await repos.people.institution(INSTITUTIONS[i % len(INSTITUTIONS)])
            chat = 91_000 + i
            await repos.people.add_contact(
                display_name=f"K{i}", institution_id=inst.id, telegram_user_id=chat
            )
            chats.append(chat)
    with time_machine.travel(dt.datetime.combine(PLAN_DAY, dt.time(8, 55), tzinfo=RIGA), tick=False):
        result = await ReminderPlanner.from_catalog(db, catalog, load_policy()).plan_reminders(PLAN_DAY)
    assert result.added == contacts
    async with db.session() as s:  # the planned fan-out is due now (the worker runs in real time)
        await s.exec(update(Outbox).values(send_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    await db.dispose()
    return chats


class Worker:
    """``python -m bot run`` with the test's environment; SIGKILL on demand."""

    def __init__(self, server: FakeBotAPI, url: str, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OUTBOX_", "REMINDER"))},
            "DATABASE_URL": url,
            "TELEGRAM_BOT_TOKEN": server.token,
            "TELEGRAM_API_BASE": server.base_url,
            "REMINDERS_ENABLED": "false",  # only the sender's fan-out of the planned rows
            "COMPILE_ENABLED": "false",
            "REMINDER_POLICY_OVERRIDES": quiet_hours_away_from_now(),
            "OUTBOX_GLOBAL_RATE": str(RATE),
            "OUTBOX_PER_CHAT_RATE": "1",
            "OUTBOX_POLL_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        log = (self.tmp / f"worker-{self.runs}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=self.tmp, env=self.env, stdout=log, stderr=log
        )

    async def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        assert await asyncio.wait_for(self.proc.wait(), 10) == -signal.SIGKILL

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: aiogram stops polling
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log")))


def delivered(server: FakeBotAPI) -> list[int]:
    return [o.chat_id for o in server.outputs if o.method == "sendMessage"]


async def wait_for(server: FakeBotAPI, worker: Worker, n: int, timeout: float = 60.0) -> None:
    """Until ``n`` messages arrived (the timeout covers a process start on a loaded machine)."""
    ok = await server._wait_until(lambda: len(delivered(server)) >= n, timeout)
    assert ok, f"only {len(delivered(server))} of {n} delivered\n{worker.logs()}"


async def states(url: str) -> Counter[str]:
    db = Database(url)
    try:
        async with db.session() as s:
            return Counter(await OutboxRepo(s).counts())
    finally:
        await db.dispose()


async def test_kill_9_mid_fan_out_then_restart_delivers_each_reminder_once(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    chats = await fan_out(sqlite_url, catalog, contacts=16)
    worker = Worker(server, sqlite_url, tmp_path)
    try:
        for n in (3, 7, 12):  # kill after the 3rd, the 7th and the 12th answered message
            await worker.start()
            await wait_for(server, worker, n)
            await asyncio.sleep(
                0.5 / RATE
            )  # the answer is in, "sent" committed; the next send is 1/RATE away
            await worker.kill()
            assert len(delivered(server)) == n, "the kill landed between two requests"
            at_kill = await states(sqlite_url)
            assert (at_kill[S.SENT], at_kill[S.SENDING]) == (n, 0), (at_kill, worker.logs())
        await worker.start()  # the last restart finishes the fan-out
        await wait_for(server, worker, len(chats))
        await asyncio.sleep(0.5)  # nothing more arrives
    finally:
        await worker.stop()
    counts = Counter(delivered(server))
    assert counts == Counter(chats), "every planned reminder arrived exactly once"
    assert (await states(sqlite_url)) == Counter({S.SENT: len(chats)})
    db = Database(sqlite_url)
    async with db.session() as s:
        rows = await OutboxRepo(s).log()
    await db.dispose()
    message_ids = {o.chat_id: o.message_id for o in server.outputs}
    assert {r.chat_id: r.telegram_message_id for r in rows} == message_ids
    assert {r.attempts for r in rows} == {1}, "no row was sent twice"
    assert not server.errors


async def test_a_kill_inside_the_round_trip_repeats_that_one_message(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    """The documented limit: the Bot API has no idempotency key, so a crash after Telegram
    accepted a message but before "sent" was committed sends that one message again."""
    chats = await fan_out(sqlite_url, catalog, contacts=4)
    worker = Worker(server, sqlite_url, tmp_path)
    worker.env["OUTBOX_GLOBAL_RATE"] = "1"  # the kill lands before a second request, even on a loaded machine
    server.delay("sendMessage", 3.0, after=True)  # processed at once, answered 3 s later
    try:
        await worker.start()
        await wait_for(server, worker, 1)
        await worker.kill()  # the bot is still waiting for the answer
        at_kill = await states(sqlite_url)
        assert (at_kill[S.SENT], at_kill[S.SENDING]) == (0, 1)
        server.delay("sendMessage", None)
        await worker.start()
        await wait_for(server, worker, len(chats) + 1)
        await asyncio.sleep(0.5)
    finally:
        await worker.stop()
    counts = Counter(delivered(server))
    first = delivered(server)[0]
    assert counts[first] == 2 and all(counts[c] == 1 for c in chats if c != first)
    assert (await states(sqlite_url)) == Counter({S.SENT: len(chats)})


async def in_flight_chats(url: str) -> set[int]:
    db = Database(url)
    try:
        async with db.session() as s:
            return {r.chat_id for r in await OutboxRepo(s).log() if r.status == S.SENDING}
    finally:
        await db.dispose()


async def test_kills_at_random_moments_lose_nothing_and_repeat_only_what_was_in_flight(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    """SIGKILL at arbitrary moments of the fan-out (seeded, not aligned to the requests): nothing
    is ever missing, and a message can arrive twice only if, at the kill, Telegram had it while
    the database still had its row in flight — the one ambiguity no Bot API client can resolve."""
    import random

    rng = random.Random(20261201)
    chats = await fan_out(sqlite_url, catalog, contacts=24)
    worker = Worker(server, sqlite_url, tmp_path)
    ambiguous: set[int] = set()
    try:
        for n in (2, 6, 11, 15, 19):
            await worker.start()
            await wait_for(server, worker, n)
            await asyncio.sleep(rng.uniform(0, 1.0 / RATE))  # anywhere between two requests, or in one
            await worker.kill()
            got = Counter(delivered(server))
            ambiguous |= {c for c in await in_flight_chats(sqlite_url) if got[c]}
        await worker.start()
        await wait_for(server, worker, len(chats))
        await asyncio.sleep(0.5)
    finally:
        await worker.stop()
    counts = Counter(delivered(server))
    assert set(counts) == set(chats), "nothing missing"
    repeated = {c for c, k in counts.items() if k > 1}
    assert all(counts[c] <= 2 for c in chats) and repeated <= ambiguous, (repeated, ambiguous)
    assert (await states(sqlite_url)) == Counter({S.SENT: len(chats)})
