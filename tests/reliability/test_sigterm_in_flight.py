"""SIGTERM while an update is being handled: the update is finished, not dropped.

Long polling confirms an update to Telegram with the next ``getUpdates``, which aiogram sends
while the update's handler still runs. aiogram's ``start_polling`` does not wait for those
handlers when it stops, and ``asyncio.run`` cancels them: the update's unit of work rolled
back, Telegram never delivers it again, and the user's message was lost without a word.

A real ``python -m bot run``; the fake Bot API holds the answer to the contact's message
(``sendMessage``) for 2 s; SIGTERM lands while it waits. The stop must let the update finish:
the answer arrives, and the draft it began is in the database after the process exits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from reporting_forms.catalog import Catalog
from storage.db import Database
from tests.chat_harness import prepare_database
from tests.fakebotapi import FakeBotAPI
from tests.reliability.procs import BotProcess, add_contacts, drafts

USER = 880_001


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    """Both backends: SQLite holds one unit at a time (the sender waits behind the update);
    PostgreSQL (skipped when no server answers) does not."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


async def test_sigterm_while_an_update_is_handled_finishes_it(
    server: FakeBotAPI, url: str, catalog: Catalog, tmp_path: Path
) -> None:
    await prepare_database(url, catalog)
    await add_contacts(url, [USER])
    bot = BotProcess(server, url, tmp_path, "bot")
    await bot.start()
    try:
        await bot.started()
        user = server.user(USER)
        server.delay("sendMessage", 3.0)  # the answer waits 3 s before Telegram takes it
        sent = len(server.calls)
        update_id = user.send("/report 1.1.1")["update_id"]
        arrived = await server._wait_until(
            lambda: any(m == "sendMessage" for m, _ in server.calls[sent:]), 30
        )
        assert arrived, bot.logs()[-3000:]
        # Telegram has it as delivered: a later getUpdates carries the offset past it
        assert await server._wait_until(
            lambda: any(
                m == "getUpdates" and int(p.get("offset") or 0) > update_id for m, p in server.calls[sent:]
            ),
            10,
        ), bot.logs()[-3000:]
        assert await bot.term() == 0, bot.logs()[-3000:]
    finally:
        server.delay("sendMessage", None)
        await bot.term()
    (question,) = await user.replies(1, timeout=1)
    assert "1.1.1" in question.text, question.text
    rows = await drafts(url)
    (row,) = [r for key, r in rows.items() if f":{USER}:{USER}:" in key]
    data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
    assert row["state"] is not None and data, (row["state"], data)


async def _kept_updates(url: str) -> list[tuple[int, int]]:
    """(bot id, update id) of every update a stop kept (interrupted_update)."""
    db = Database(url)
    try:
        async with db.session() as s:
            rows = (await s.exec(text("SELECT bot_id, update_id FROM interrupted_update"))).all()
            return sorted((int(b), int(u)) for b, u in rows)
    finally:
        await db.dispose()


async def test_an_update_outlasting_the_grace_is_kept_and_handled_at_the_next_start(
    server: FakeBotAPI, url: str, catalog: Catalog, tmp_path: Path
) -> None:
    """STOP_GRACE_SECONDS bounds the wait (a stop must not hang on a stuck request). What it
    cuts off rolls back, and no later getUpdates brings it back: the stop keeps it in the
    database, named in the log, and the next start handles it before anything else of that
    user — the answer arrives and the draft is there — then forgets it."""
    await prepare_database(url, catalog)
    await add_contacts(url, [USER])
    bot = BotProcess(server, url, tmp_path, "bot", STOP_GRACE_SECONDS="0.5")
    await bot.start()
    try:
        await bot.started()
        server.delay("sendMessage", 30.0)
        sent = len(server.calls)
        user = server.user(USER)
        update_id = user.send("/report 1.1.1")["update_id"]
        assert await server._wait_until(
            lambda: any(m == "sendMessage" for m, _ in server.calls[sent:]), 30
        ), bot.logs()[-3000:]
        assert await bot.term(timeout=20) == 0, bot.logs()[-3000:]
    finally:
        server.delay("sendMessage", None)
        await bot.term()
    assert f"are kept and handled at the next start: {update_id}" in bot.logs(), bot.logs()[-3000:]
    rows = await drafts(url)
    assert not [key for key, row in rows.items() if f":{USER}:{USER}:" in key and row["state"]], rows
    assert [u for _, u in await _kept_updates(url)] == [update_id]

    again = BotProcess(server, url, tmp_path, "bot-again")
    await again.start()
    try:
        await again.started()
        (question,) = await user.replies(1, timeout=30)
        assert "1.1.1" in question.text, question.text
        for _ in range(100):  # the row goes once the update was handled
            if not await _kept_updates(url):
                break
            await asyncio.sleep(0.1)
        assert await again.term() == 0, again.logs()[-3000:]
    finally:
        await again.term()
    assert f"an earlier stop kept are handled first: {update_id}" in again.logs(), again.logs()[-3000:]
    rows = await drafts(url)
    (row,) = [r for key, r in rows.items() if f":{USER}:{USER}:" in key]
    data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
    assert row["state"] is not None and data["draft"]["measure_id"] == "1.1.1", (row["state"], data)
    assert await _kept_updates(url) == []
