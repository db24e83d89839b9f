"""One leader per database: the instance that runs the scheduler and drains the outbox.

Any number of bot processes may answer updates on one PostgreSQL database, but scheduled jobs
must run once and the outbox's rate limits are the database's, not a process's. So exactly one
instance at a time — the one holding a PostgreSQL *session advisory lock* on a connection of
its own — runs them. The others poll the lock every ``LEADER_POLL_SECONDS`` (15 s): when the
leader dies, its connection closes, the server frees the lock, and a follower takes over
within one poll. The leader checks its connection on the same beat; if it is gone (the
database restarted, the backend was terminated) the lock is gone too, so it stops its
scheduler and sender at once and competes again like any follower.

Between a leader losing its connection and noticing it (≤ one poll) a new leader may already
be sending: the outbox stays exactly-once (claims are atomic, recovery touches only expired
leases), only the rate limit may briefly count twice.

SQLite: one process per database file is assumed (the file lives on one machine; the
embedded default is not for several instances), so that process is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from storage.db import create_engine, is_sqlite

log = logging.getLogger("resobot.leader")

# pg_try_advisory_lock(bigint): "resobot" in ASCII. Chat locks use the two-int4 form
# (bot/middlewares.py), which PostgreSQL keeps in a separate key space.
LEADER_LOCK_KEY = int.from_bytes(b"resobot", "big")
DB_TIMEOUT = 10.0  # one lock statement; a dead TCP connection must not hang the loop

Hook = Callable[[], Awaitable[None]]


class Leadership:
    """Campaigns for the leader lock and calls ``on_gain`` / ``on_lose`` as it is won and lost.

    ``is_leader``: None before the first attempt, then True or False (``/readyz`` reads it
    through ``Services.is_leader``, kept in step by ``report``)."""

    def __init__(
        self,
        url: str,
        *,
        on_gain: Hook,
        on_lose: Hook,
        poll_seconds: float = 15.0,
        key: int = LEADER_LOCK_KEY,
        report: Callable[[bool | None], None] | None = None,
    ) -> None:
        self.url = url
        self.on_gain, self.on_lose = on_gain, on_lose
        self.poll_seconds = poll_seconds
        self.key = key
        self.report = report
        self.is_leader: bool | None = None
        self._engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._unreachable = False  # the database is down: logged once per outage

    def _set(self, value: bool | None) -> None:
        self.is_leader = value
        if self.report is not None:
            self.report(value)

    async def start(self) -> None:
        """The first attempt now (a single instance starts its scheduler before polling
        begins, as it always did), then the campaign in the background."""
        if is_sqlite(self.url):
            self._set(True)
            await self.on_gain()
            return
        self._engine = create_engine(self.url, poolclass=NullPool)  # one connection, ours alone
        await self._step()
        self._task = asyncio.create_task(self._campaign(), name="leader-campaign")

    async def stop(self) -> None:
        """Stop campaigning; a leader stops its work first, then releases the lock."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.is_leader:
            try:
                await self.on_lose()
            finally:
                self._set(False)
        await self._drop()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _campaign(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_seconds)
            if self._stop.is_set():
                return
            await self._step()

    async def _step(self) -> None:
        if self.is_leader:
            if not await self._still_held():
                log.warning("leader: lost the database connection and with it the lock; stepping down")
                self._set(False)
                try:
                    await self.on_lose()
                except Exception:
                    log.exception("leader: stopping the scheduler and sender failed")
                await self._drop()
            return
        got = await self._try_lock()
        if got is None:
            if self.is_leader is None:
                self._set(False)
            return
        if not got:
            if self.is_leader is not False:
                log.info("leader: another instance leads; this one answers updates and stands by")
            self._set(False)
            return
        log.info("leader: this instance now runs the scheduler and the outbox sender")
        self._set(True)
        try:
            await self.on_gain()
        except Exception:  # e.g. the database went away during start-up planning
            log.exception("leader: starting the scheduler and sender failed; releasing the lock")
            self._set(False)
            with contextlib.suppress(Exception):
                await self.on_lose()
            await self._drop()  # closing the connection releases the lock

    async def _try_lock(self) -> bool | None:
        """True: the lock is ours; False: another instance has it; None: no database."""
        try:
            if self._conn is None:
                assert self._engine is not None
                self._conn = await asyncio.wait_for(self._engine.connect(), DB_TIMEOUT)
            result = await asyncio.wait_for(
                self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}), DB_TIMEOUT
            )
            got = bool(result.scalar())
            await self._conn.commit()  # a session lock outlives the transaction; no idle transaction
        except Exception as exc:
            if not self._unreachable:
                log.warning(
                    "leader: cannot reach the database for the lock (%s); retrying", type(exc).__name__
                )
            self._unreachable = True
            await self._drop()
            return None
        if self._unreachable:
            log.info("leader: the database is reachable again")
            self._unreachable = False
        return got

    async def _still_held(self) -> bool:
        """Our lock lives as long as our connection: is it alive?"""
        if self._conn is None:
            return False
        try:
            await asyncio.wait_for(self._conn.execute(text("SELECT 1")), DB_TIMEOUT)
            await self._conn.commit()
        except Exception:
            return False
        return True

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # the lock goes with the session
            await asyncio.wait_for(conn.close(), DB_TIMEOUT)
        with contextlib.suppress(Exception):
            await conn.invalidate()
