"""Defect 1 of issue 11: SIGTERM during a send run repeated messages. aiogram closed the bot's
HTTP session before the sender stopped, so requests Telegram had already accepted failed on
the client side, went back to pending and were sent again after the restart.

A real ``python -m bot run`` fans reminders out to the fake Bot API, which accepts each
message at once and answers it 0.6 s later, so several requests are in flight at every moment;
SIGTERM lands among them, the bot is restarted and finishes. The fake's own record must show
every message exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

from reporting_forms.catalog import Catalog
from storage.tables import OutboxStatus
from tests.fakebotapi import FakeBotAPI
from tests.test_exactly_once import Worker, delivered, fan_out, states, wait_for

S = OutboxStatus


def fast_worker(server: FakeBotAPI, url: str, tmp: Path, rate: int = 20) -> Worker:
    worker = Worker(server, url, tmp)
    worker.env.update(
        {
            "OUTBOX_GLOBAL_RATE": str(rate),
            "OUTBOX_REQUEST_TIMEOUT": "5",
            "OUTBOX_CLAIM_LEASE_SECONDS": "3",
            "COMPILE_ENABLED": "false",
        }
    )
    return worker


async def test_sigterm_mid_fan_out_then_restart_delivers_each_message_once(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    rng = random.Random(1101)
    chats = await fan_out(sqlite_url, catalog, contacts=30)
    worker = fast_worker(server, sqlite_url, tmp_path)
    server.delay("sendMessage", 0.6, after=True)  # accepted at once, answered 0.6 s later
    try:
        for n in (4, 13):
            await worker.start()
            await wait_for(server, worker, n, timeout=40)
            await asyncio.sleep(rng.uniform(0, 0.3))
            await worker.stop()  # SIGTERM, with requests in flight
            assert worker.proc is not None and worker.proc.returncode == 0, worker.logs()
            at_stop = await states(sqlite_url)
            assert at_stop[S.SENDING] == 0, ("a clean stop leaves nothing in flight", at_stop)
            assert at_stop[S.SENT] == len(delivered(server)), (at_stop, len(delivered(server)))
        server.delay("sendMessage", None)
        await worker.start()
        await wait_for(server, worker, len(chats), timeout=40)
        await asyncio.sleep(0.5)  # nothing more arrives
    finally:
        await worker.stop()
    counts = Counter(delivered(server))
    assert counts == Counter(chats), {c: k for c, k in counts.items() if k != 1}
    assert (await states(sqlite_url)) == Counter({S.SENT: len(chats)})
