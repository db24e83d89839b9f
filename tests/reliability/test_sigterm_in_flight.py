"""SIGTERM while an update is being handled: the update is finished, not dropped.

Long polling confirms an update to Telegram with the next ``getUpdates``, which aiogram sends
while the update's handler still runs. aiogram's ``start_polling`` does not wait for those
handlers when it stops, and ``asyncio.run`` cancels them: the update's unit of work rolled
back, Telegram never delivers it again, and the user's message was lost without a word.

A real ``python -m bot run``; the fake Bot API holds the answer to the contact's message
(``sendMessage``) for 2 s; SIGTERM lands while it waits. The stop must let the update finish:
the answer arrives, and the draft it began is in the database after the process exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reporting_forms.catalog import Catalog
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


async def test_an_update_outlasting_the_grace_is_cancelled_and_named_in_the_log(
    server: FakeBotAPI, url: str, catalog: Catalog, tmp_path: Path
) -> None:
    """STOP_GRACE_SECONDS bounds the wait (a stop must not hang on a stuck request); what it
    cuts off is logged by its update id, as no later getUpdates will bring it back."""
    await prepare_database(url, catalog)
    await add_contacts(url, [USER])
    bot = BotProcess(server, url, tmp_path, "bot", STOP_GRACE_SECONDS="0.5")
    await bot.start()
    try:
        await bot.started()
        server.delay("sendMessage", 30.0)
        sent = len(server.calls)
        update_id = server.user(USER).send("/report 1.1.1")["update_id"]
        assert await server._wait_until(
            lambda: any(m == "sendMessage" for m, _ in server.calls[sent:]), 30
        ), bot.logs()[-3000:]
        assert await bot.term(timeout=20) == 0, bot.logs()[-3000:]
    finally:
        server.delay("sendMessage", None)
        await bot.term()
    assert f"still being handled after 0.5 s were cancelled (not saved): {update_id}" in bot.logs()
    rows = await drafts(url)
    assert not [key for key, row in rows.items() if f":{USER}:{USER}:" in key and row["state"]], rows
