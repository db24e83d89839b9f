# ruff: noqa: F811  (the sender tests' fixtures, imported by name)
"""Defect 3 of issue 11: a database blip right after a send (asyncpg's InterfaceError /
DBAPIError while writing "sent") left the row in ``sending`` — to be sent again on the next
start — and ``gather(return_exceptions=True)`` swallowed the error without a line."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import InterfaceError

import bot.sender as sender_module
from storage.outbox import OutboxRepo
from storage.tables import OutboxStatus
from tests.test_sender import clock, contacts, db, enqueue, make_sender, rows  # noqa: F401

S = OutboxStatus


def connection_lost() -> InterfaceError:
    return InterfaceError("UPDATE outbox SET status=...", {}, Exception("connection is closed"))


@pytest.fixture
def flaky_mark_sent(monkeypatch: pytest.MonkeyPatch):
    """``mark_sent`` fails the first ``n`` times as a dropped asyncpg connection does."""
    real = OutboxRepo.mark_sent
    calls = {"failures": 0}

    def install(n: int) -> dict:
        async def flaky(self, *args, **kwargs):
            if calls["failures"] < n:
                calls["failures"] += 1
                raise connection_lost()
            return await real(self, *args, **kwargs)

        monkeypatch.setattr(OutboxRepo, "mark_sent", flaky)
        monkeypatch.setattr(sender_module, "WRITE_BACKOFF", 0.01, raising=False)
        return calls

    return install


async def test_a_blip_while_writing_sent_is_retried_and_the_row_is_sent(
    clock,
    server,
    db,
    make_sender,
    flaky_mark_sent,
    caplog,
) -> None:
    calls = flaky_mark_sent(3)
    await enqueue(db, await contacts(db, 2))
    with caplog.at_level(logging.WARNING, logger="resobot.sender"):
        stats = await make_sender().drain_once()
    assert calls["failures"] == 3
    assert [r.status for r in await rows(db)] == [S.SENT, S.SENT], "nothing left in sending"
    assert stats.sent == 2 and len(server.outputs) == 2
    assert sum("writing a status change failed" in r.message for r in caplog.records) == 3


async def test_an_error_the_retries_cannot_cure_is_logged_not_swallowed(
    clock,
    server,
    db,
    make_sender,
    flaky_mark_sent,
    monkeypatch,
    caplog,
) -> None:
    flaky_mark_sent(10**6)
    monkeypatch.setattr(sender_module, "WRITE_TRIES", 3, raising=False)
    await enqueue(db, await contacts(db, 1))
    with caplog.at_level(logging.WARNING, logger="resobot.sender"):
        stats = await make_sender().drain_once()
    assert [r.status for r in await rows(db)] == [S.SENDING]  # its lease expires, then it is recovered
    assert any("a delivery failed unexpectedly" in r.message and r.exc_info for r in caplog.records)
    assert stats.errors and "InterfaceError" in stats.errors[0]
